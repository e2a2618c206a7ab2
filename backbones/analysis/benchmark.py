"""Throughput, latency and peak memory of the ConvNeXt backbone, side by side with timm.

Not a test: it measures. Ours and the compared models run in one process and their timed
repeats are interleaved in rounds (ours, timm; ours, timm; ...), so load from other processes
hits both alike. Medians and spreads of images/s and latency over the repeats; the ratio
``ours/timm`` is the median of the per-round throughput ratios (robust on a shared machine).

The command line is ``tools/analysis/benchmark.py`` (its ``--help``; examples in its docstring).

Peak memory: on GPU ``torch.cuda.max_memory_allocated`` over one step. On CPU torch keeps no
allocator statistics, so each model is run again in a fresh subprocess: one warm-up step, then
the RSS high-water mark is reset (``/proc/self/clear_refs``) and the figure is the rise of the
high-water mark (``VmHWM``) during one more step over the RSS just before it: the activations,
gradients and temporaries of the step, not the weights or the optimizer state.
"""
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import torch

from backbones.models import ConvNeXt, set_fast_inference
from .complexity import build_model, load_config
from .synthetic import synthetic_batch

MODES = ('infer', 'infer-det', 'infer-seg', 'train', 'train-model')
#: Default input size (H, W) and batch of each mode.
MODE_DEFAULTS = {
    'infer': ((224, 224), 32),
    'infer-det': ((800, 1333), 1),
    'infer-seg': ((512, 2048), 1),
    'train': ((224, 224), 16),
    'train-model': ((512, 512), 1),
}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
ARCHS = ('atto', 'femto', 'pico', 'nano', 'tiny', 'small', 'base', 'large', 'xlarge', 'huge')


def machine_info(device: Optional[str] = None) -> dict:
    """CPU model, cores, GPU and library versions, for collecting records (the benchmark's and
    tools/gpu/gpu_check.sh's report).

    Args:
        device: The device measured (``'cpu'``, ``'cuda'``...); None: CUDA when torch sees a
            GPU, else the CPU. With a CUDA device, its name, compute capability, memory (GiB)
            and cuDNN's version are recorded too.
    """
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(cpu_model=cpu, logical_cores=os.cpu_count(),
                usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                else os.cpu_count(),
                gpu=None, python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, torch_threads=torch.get_num_threads())
    if device.startswith('cuda'):
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability='%d.%d' % (props.major, props.minor),
                    memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version())
    for name in ('timm', 'mmengine', 'mmpretrain'):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    if hasattr(os, 'getloadavg'):
        info['load_avg_1_5_15'] = [round(v, 2) for v in os.getloadavg()]
    return info


def build_ours(args, fast: bool) -> torch.nn.Module:
    return ConvNeXt(args.arch, out_indices=(3, ), use_grn=args.v2, with_cp=args.with_cp,
                    fast_inference=fast)


def build_timm(args) -> torch.nn.Module:
    import timm
    name = f'convnextv2_{args.arch}' if args.v2 else f'convnext_{args.arch}'
    # Without classifier and pooling: stem, stages and the final norm (like our norm3).
    return timm.create_model(name, pretrained=False, num_classes=0, global_pool='')


def build_mmpretrain(args) -> torch.nn.Module:
    from mmpretrain.models import ConvNeXt as MMPConvNeXt
    return MMPConvNeXt(arch=args.arch, out_indices=(3, ), use_grn=args.v2,
                       layer_scale_init_value=0. if args.v2 else 1e-6, gap_before_final_norm=False)


def build_full_model(config: str) -> torch.nn.Module:
    """A detector/segmentor from an MMEngine config, initialised (SyncBN as BN, as on one
    process in tools/train.py)."""
    model = build_model(load_config(config))
    model.init_weights()
    return model


def make_step(args, model: torch.nn.Module, dtype: torch.dtype, channels_last: bool,
              compile_: bool) -> Callable[[], None]:
    """Move ``model`` to the device and settings; return one timed iteration."""
    device = torch.device(args.device)
    model = model.to(device)
    train = args.mode in ('train', 'train-model')
    model.train(train)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    amp = dtype != torch.float32
    if args.mode == 'train-model':
        data = synthetic_batch(model, args.batch, args.input_size)
        if channels_last:
            data['inputs'] = data['inputs'].contiguous(memory_format=torch.channels_last)
    else:
        x = torch.randn(args.batch, 3, *args.input_size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
    fn = torch.compile(model) if compile_ else model
    if not train:
        def step():
            with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=amp):
                fn(x)
        return step
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def step():
        with torch.autocast(device.type, dtype, enabled=amp):
            if args.mode == 'train-model':
                losses = fn(**data, mode='loss')
                loss = sum(v.sum() if torch.is_tensor(v) else sum(t.sum() for t in v)
                           for k, v in losses.items() if 'loss' in k)
            else:
                loss = sum(o.float().mean() for o in fn(x))
        optim.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
    return step


def variants(args) -> List[dict]:
    """The models of this run: ours first, then the plain path and the compared models."""
    ours = dict(name='ours', dtype=args.dtype, channels_last=args.channels_last,
                compile=args.compile, fast=args.fast)
    if args.compare_settings == 'same':
        base = dict(ours, fast=False)
    else:
        base = dict(dtype='fp32', channels_last=False, compile=False, fast=False)
    out = [ours]
    if args.also_plain:
        out.append(dict(base, name='ours-plain'))
    for impl in args.compare:
        out.append(dict(base, name=impl))
    return out


def build_variant(args, v: dict) -> torch.nn.Module:
    if args.mode == 'train-model':
        model = build_full_model(args.config)
        if v['fast']:
            set_fast_inference(model, True)
        return model
    if v['name'].startswith('ours'):
        return build_ours(args, v['fast'])
    return build_timm(args) if v['name'] == 'timm' else build_mmpretrain(args)


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def summarize(times: List[float], batch: int) -> dict:
    ips = [batch / t for t in times]
    lat = [t * 1e3 for t in times]
    return dict(
        images_per_s=dict(median=statistics.median(ips), min=min(ips), max=max(ips),
                          stdev=statistics.stdev(ips) if len(ips) > 1 else 0.),
        latency_ms=dict(median=statistics.median(lat), min=min(lat), max=max(lat)),
        times_s=times)


def probe_memory(args, v: dict, script: str) -> Optional[float]:
    """Peak memory (MiB) of one model's steps, in a fresh subprocess on CPU (see the module
    docstring): ``script`` (the benchmark tool) run again with ``--memory-probe``."""
    cmd = [sys.executable, script, '--memory-probe', json.dumps(v)]
    skip = {'--compare', '--out', '--also-plain', '--repeats', '--warmup'}
    argv = sys.argv[1:]
    i = 0
    while i < len(argv):
        a = argv[i]
        takes_value = a in ('--compare', '--out', '--repeats', '--warmup')
        if a not in skip:
            cmd.append(a)
        i += 2 if takes_value else 1
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        print(f'[memory] probe of {v["name"]} failed:\n{proc.stderr[-2000:]}', file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])['peak_memory_mib']


def _status_mib(key: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def run_probe(args) -> None:
    v = json.loads(args.memory_probe)
    model = build_variant(args, v)
    step = make_step(args, model, DTYPES[v['dtype']], v['channels_last'], v['compile'])
    step()  # warm-up: library set-up, optimizer state
    before = _status_mib('VmRSS')
    try:  # reset the RSS high-water mark (Linux >= 4.0), so only the measured step counts
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        method = 'VmHWM reset after a warm-up step'
    except OSError:
        method = 'ru_maxrss (not reset: includes the warm-up step)'
    step()
    peak = _status_mib('VmHWM')
    print(json.dumps(dict(peak_memory_mib=max(0., peak - before), rss_before_mib=before,
                          method=method)))


def run(args, script: str) -> dict:
    """Run the benchmark of parsed ``args`` (see ``tools/analysis/benchmark.py``), print the
    table, write the JSON record and return it. ``script`` is the tool itself, run again in a
    fresh process for each CPU memory probe."""
    todo = variants(args)
    if 'mmpretrain' in args.compare:
        try:
            import mmpretrain  # noqa: F401
        except ImportError:
            print('note: mmpretrain is not installed; skipping its ConvNeXt')
            todo = [v for v in todo if v['name'] != 'mmpretrain']
    settings = {k: v for k, v in vars(args).items() if k != 'memory_probe'}
    settings['input_size'] = list(args.input_size)
    record = dict(machine=machine_info(args.device), settings=settings, results={})
    steps: Dict[str, Callable[[], None]] = {}
    for v in todo:
        torch.manual_seed(0)
        model = build_variant(args, v)
        steps[v['name']] = make_step(args, model, DTYPES[v['dtype']], v['channels_last'],
                                     v['compile'])
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            steps[v['name']]()
        sync(args.device)
        print(f'{v["name"]}: warm-up {time.perf_counter() - t0:.1f} s', flush=True)
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = {v['name']: [] for v in todo}
    for _ in range(args.repeats):  # interleaved: every model sees the same load
        for v in todo:
            sync(args.device)
            t0 = time.perf_counter()
            steps[v['name']]()
            sync(args.device)
            times[v['name']].append(time.perf_counter() - t0)
    for v in todo:
        res = dict(settings=v, **summarize(times[v['name']], args.batch))
        if args.no_memory:
            res['peak_memory_mib'] = None
        elif args.device.startswith('cuda'):
            # One model at a time for a per-model figure.
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            steps[v['name']]()
            torch.cuda.synchronize()
            res['peak_memory_mib'] = torch.cuda.max_memory_allocated() / 2**20
            res['memory_method'] = 'torch.cuda.max_memory_allocated over one step'
        else:
            res['peak_memory_mib'] = probe_memory(args, v, script)
            res['memory_method'] = ('fresh subprocess: VmHWM rise over VmRSS during one step '
                                    'after a warm-up step')
        record['results'][v['name']] = res
    # Throughput ratio per interleaved round (both models saw the same load), then the median:
    # robust to load bursts that a ratio of two separate medians is not.
    ours = record['results']['ours']['images_per_s']['median']
    record['ratios'] = {
        f'ours/{name}': statistics.median(t / o for t, o in zip(times[name], times['ours']))
        for name in times if name != 'ours'}
    record['ratios_of_medians'] = {f'ours/{name}': ours / r['images_per_s']['median']
                                   for name, r in record['results'].items() if name != 'ours'}
    if hasattr(os, 'getloadavg'):
        record['machine']['load_avg_1_5_15_end'] = [round(x, 2) for x in os.getloadavg()]

    size = 'x'.join(map(str, args.input_size))
    load = record['machine'].get('load_avg_1_5_15')
    print(f'\n{args.mode} {args.arch}{" V2" if args.v2 else ""} {size} batch {args.batch}, '
          f'{args.device}, threads {torch.get_num_threads()}, load {load}')
    print(f'{"model":<12} {"settings":<38} {"img/s (median, min-max)":<26} {"latency ms":>11} '
          f'{"peak MiB":>9}')
    for name, r in record['results'].items():
        s = r['settings']
        desc = (f'{s["dtype"]}{" cl" if s["channels_last"] else ""}'
                f'{" compile" if s["compile"] else ""}{" fast" if s["fast"] else ""}'
                f'{" cp" if args.with_cp and name.startswith("ours") else ""}')
        ips = r['images_per_s']
        mem = r['peak_memory_mib']
        print(f'{name:<12} {desc:<38} {ips["median"]:8.2f} ({ips["min"]:.2f}-{ips["max"]:.2f})'
              f'{"":<6} {r["latency_ms"]["median"]:11.1f} '
              f'{"-" if mem is None else format(mem, ".0f"):>9}')
    for k, ratio in record['ratios'].items():
        print(f'{k}: {ratio:.3f} (median of per-round ratios; ratio of medians '
              f'{record["ratios_of_medians"][k]:.3f})')

    out = args.out or osp.join(
        'work_dirs', 'benchmark',
        f'{args.mode}_{args.arch}_{size}_b{args.batch}_{time.strftime("%Y%m%d_%H%M%S")}.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(record, f, indent=2)
    print(f'record: {out}')
    return record

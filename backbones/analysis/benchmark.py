"""Throughput, latency and peak memory of the ConvNeXt backbone, side by side with timm.

Not a test: it measures. Ours and the compared models run in one process and their timed
repeats are interleaved in rounds (ours, timm; ours, timm; ...), so load from other processes
hits both alike. Medians and spreads of images/s and latency over the repeats; the ratio
``ours/timm`` is the median of the per-round throughput ratios (robust on a shared machine).

The command line is ``tools/analysis/benchmark.py`` (its ``--help``; examples in its docstring).

Roofline: each round also times one large GEMM (``torch.mm`` of two ``n x n`` matrices, the
same threads) in fp32, bf16 and any other dtype a model runs in, as the machine's attainable
matmul rate for that dtype. A model's roofline fraction is its MAC rate (images/s x forward
MACs per image, x3 for a training step: the backward pass costs about two forwards) over the
GEMM rate of its dtype in the same round; the median over rounds is reported. MACs are
``mmengine.analysis.FlopAnalyzer``'s count (the paper's FLOPs), so element-wise work (norms,
GELU, depthwise conv's share is small) is the part a fraction below 1 is spent on.

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

from backbones.models import ConvNeXt, set_fast_inference, set_fast_training
from backbones.models.convert import convert_dense_model_state
from .complexity import build_model, count_flops, load_config, model_complexity, task_of
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
#: Side of the square GEMM that measures the matmul peak: large enough for the BLAS/oneDNN
#: kernels to run at their best rate (2048: 8.6 GMAC, a fraction of a second on 2 CPU cores).
GEMM_SIDE = {'cpu': 2048, 'cuda': 8192}
#: Forward-pass equivalents of one step: a backward pass costs about two forwards.
PASSES = {'infer': 1, 'infer-det': 1, 'infer-seg': 1, 'train': 3, 'train-model': 3}
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


def build_full_model(config: str, drop_path: bool = True) -> torch.nn.Module:
    """A detector/segmentor from an MMEngine config, initialised (SyncBN as BN, as on one
    process in tools/train.py). The backbone's pretrained file is not read: timing needs no
    trained weights, and upstream configs point at URLs. ``drop_path=False`` turns stochastic
    depth off (two implementations draw its random rows differently)."""
    cfg = load_config(config)
    cfg.model.backbone.pop('init_cfg', None)
    if not drop_path and 'drop_path_rate' in cfg.model.backbone:
        cfg.model.backbone.drop_path_rate = 0.
    model = build_model(cfg)
    model.init_weights()
    return model


def copy_upstream_weights(ours: torch.nn.Module, upstream: torch.nn.Module) -> None:
    """Load an upstream detector's/segmentor's weights into ours, strictly (every key must
    match), through :func:`backbones.models.convert.convert_dense_model_state`."""
    ours.load_state_dict(convert_dense_model_state(upstream.state_dict()))


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
    if compile_ and getattr(args, 'freeze', False):
        # Inductor folds the weights in as constants: oneDNN prepacked bf16/fp32 weights,
        # conv/linear fused with their pointwise neighbours. Inference only.
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
    if not train:
        def step():
            with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=amp):
                return fn(x)
        step.inputs = x
        return step
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def step():
        if args.mode == 'train-model':
            torch.manual_seed(0)  # the same proposals and RoI samples in every model and step
        with torch.autocast(device.type, dtype, enabled=amp):
            if args.mode == 'train-model':
                losses = fn(**data, mode='loss')
                terms = {k: v.sum() if torch.is_tensor(v) else sum(t.sum() for t in v)
                         for k, v in losses.items() if 'loss' in k}
                loss = sum(terms.values())
                if not hasattr(step, 'losses'):  # the first step's, before any update
                    step.losses = {k: float(v) for k, v in terms.items()}
            else:
                loss = sum(o.float().mean() for o in fn(x))
        optim.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
    return step


def fidelity(args, step: Callable, reference: torch.nn.Module, num_classes: int = 1000) -> dict:
    """How far one inference step's output is from the plain fp32 path on the same weights.

    The last feature map is compared directly (relative L2 error) and as a classifier sees it:
    global average pooling, then a fixed seeded linear head of ``num_classes`` classes; the
    top-1 class of every image of the batch must agree.

    Args:
        args: The benchmark's arguments.
        step: The inference step (returns the model's outputs; its ``inputs`` are the batch).
        reference: The same model (same weights) in plain eager fp32.
    """
    with torch.inference_mode():
        want = reference.to(args.device).eval()(step.inputs.float())[-1].float()
        got = step()[-1].float()
    gen = torch.Generator().manual_seed(0)
    head = torch.randn(num_classes, want.shape[1], generator=gen).to(want.device)
    top1 = [(torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1) @ head.t()).argmax(1)
            for y in (got, want)]
    return dict(top1_agreement=(top1[0] == top1[1]).float().mean().item(),
                rel_l2_error=((got - want).norm() / want.norm()).item(),
                max_abs_error=(got - want).abs().max().item(), images=int(want.shape[0]))


def make_gemm_step(dtype: torch.dtype, device: str) -> Callable[[], None]:
    """One timed ``n x n`` GEMM in ``dtype`` (n from :data:`GEMM_SIDE`), the matmul peak probe."""
    n = GEMM_SIDE['cuda' if device.startswith('cuda') else 'cpu']
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(n, n, device=device, dtype=dtype)

    def step():
        torch.mm(a, b, out=out)
    step.macs = n**3
    return step


def macs_per_image(args) -> int:
    """Forward MACs of one image of the measured model (the same for ours and the peers)."""
    if args.mode == 'train-model':
        cfg = load_config(args.config)
        return model_complexity(build_full_model(args.config), task_of(cfg),
                                args.input_size).flops
    model = build_ours(args, fast=False).eval()
    return count_flops(model, torch.zeros(1, 3, *args.input_size))


def variants(args) -> List[dict]:
    """The models of this run: ours first, then the plain path and the compared models."""
    ours = dict(name='ours', dtype=args.dtype, channels_last=args.channels_last,
                compile=args.compile, fast=args.fast, freeze=bool(getattr(args, 'freeze', False)))
    if args.compare_settings == 'same':
        base = dict(ours, fast=False)
    else:
        base = dict(dtype='fp32', channels_last=False, compile=False, fast=False, freeze=False)
    out = [ours]
    if args.also_plain:
        out.append(dict(base, name='ours-plain'))
    for impl in args.compare:
        out.append(dict(base, name=impl))
    if getattr(args, 'compare_config', None):
        out.append(dict(base, name='upstream'))
    return out


def build_variant(args, v: dict) -> torch.nn.Module:
    model = _build_variant(args, v)
    if v['name'] == 'ours-plain':  # the plain path in training as well as in inference
        set_fast_training(model, False)
    return model


def _build_variant(args, v: dict) -> torch.nn.Module:
    if args.mode == 'train-model':
        # Side by side: no stochastic depth in either, so both compute the same numbers.
        paired = bool(args.compare_config)
        if v['name'] == 'upstream':
            return build_full_model(args.compare_config, drop_path=False)
        model = build_full_model(args.config, drop_path=not paired)
        if paired:
            # The weights of the upstream variant: built from the same seed as run() builds it.
            with torch.random.fork_rng():
                torch.manual_seed(0)
                copy_upstream_weights(model, build_full_model(args.compare_config,
                                                              drop_path=False))
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


def roofline(args, todo: List[dict], times: Dict[str, List[float]],
             gemms: Dict[str, Callable[[], None]]) -> dict:
    """Per model: MAC rate and its fraction of the same dtype's GEMM rate, per round, median.

    Args:
        args: The benchmark's arguments (mode, batch, input size, config).
        todo: The models' settings (name, dtype...).
        times: Seconds per step of every model and GEMM (``'gemm-<dtype>'``), per round.
        gemms: The GEMM steps (their ``macs``).
    """
    macs = macs_per_image(args)
    work = macs * PASSES[args.mode] * args.batch  # MACs of one step
    gemm = {}
    for name, step in gemms.items():
        rates = [step.macs / t / 1e9 for t in times[name]]
        gemm[name[len('gemm-'):]] = dict(gmac_per_s=dict(median=statistics.median(rates),
                                                         max=max(rates)), times_s=times[name])
    models = {}
    for v in todo:
        peak_times = times[f'gemm-{v["dtype"]}']
        rates = [work / t / 1e9 for t in times[v['name']]]
        fractions = [r / (gemms[f'gemm-{v["dtype"]}'].macs / g / 1e9)
                     for r, g in zip(rates, peak_times)]
        models[v['name']] = dict(gmac_per_s=statistics.median(rates),
                                 fraction=statistics.median(fractions), dtype=v['dtype'])
    return dict(macs_per_image=macs, passes=PASSES[args.mode],
                gemm_side=round(next(iter(gemms.values())).macs ** (1 / 3)), gemm=gemm,
                models=models,
                method='model MAC/s (images/s x forward MACs x passes) over the same round\'s '
                'GEMM MAC/s in the model\'s dtype; median over rounds',
                macs_counted=('the detector/segmentor in test mode as the paper counts it '
                              '(1000 proposals): not the work of a training step'
                              if args.mode == 'train-model' else 'the backbone'))


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
    if args.mode.startswith('infer'):
        for v in todo:
            if v['name'].startswith('ours'):
                torch.manual_seed(0)  # the same weights as the measured model
                record.setdefault('fidelity', {})[v['name']] = fidelity(
                    args, steps[v['name']], build_ours(args, fast=False))
    gemm_dtypes = sorted({'fp32', 'bf16'} | {v['dtype'] for v in todo}, key=list(DTYPES).index)
    gemms = {f'gemm-{d}': make_gemm_step(DTYPES[d], args.device) for d in gemm_dtypes}
    for step in gemms.values():
        step()
    sync(args.device)
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = {name: [] for name in [v['name'] for v in todo] + list(gemms)}
    every = {**steps, **gemms}
    for _ in range(args.repeats):  # interleaved: every model and GEMM sees the same load
        for name, step in every.items():
            sync(args.device)
            t0 = time.perf_counter()
            step()
            sync(args.device)
            times[name].append(time.perf_counter() - t0)
    record['roofline'] = roofline(args, todo, times, gemms)
    if args.mode == 'train-model':  # same weights, inputs and seeds: the same losses
        record['losses'] = {name: getattr(step, 'losses', None) for name, step in steps.items()}
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
        for name in record['results'] if name != 'ours'}
    record['ratios_of_medians'] = {f'ours/{name}': ours / r['images_per_s']['median']
                                   for name, r in record['results'].items() if name != 'ours'}
    if hasattr(os, 'getloadavg'):
        record['machine']['load_avg_1_5_15_end'] = [round(x, 2) for x in os.getloadavg()]

    size = 'x'.join(map(str, args.input_size))
    load = record['machine'].get('load_avg_1_5_15')
    print(f'\n{args.mode} {args.arch}{" V2" if args.v2 else ""} {size} batch {args.batch}, '
          f'{args.device}, threads {torch.get_num_threads()}, load {load}')
    roof = record['roofline']
    print('matmul peak (GEMM %d^3, median of rounds): %s' % (
        roof['gemm_side'], ', '.join(f'{d} {g["gmac_per_s"]["median"]:.1f} GMAC/s'
                                     for d, g in roof['gemm'].items())))
    print(f'forward MACs per image: {roof["macs_per_image"] / 1e9:.3f} G, x{roof["passes"]} '
          'per step')
    print(f'{"model":<12} {"settings":<38} {"img/s (median, min-max)":<26} {"latency ms":>11} '
          f'{"peak MiB":>9} {"GMAC/s":>8} {"roofline":>9}')
    for name, r in record['results'].items():
        s = r['settings']
        desc = (f'{s["dtype"]}{" cl" if s["channels_last"] else ""}'
                f'{" compile" if s["compile"] else ""}{" freeze" if s.get("freeze") else ""}'
                f'{" fast" if s["fast"] else ""}'
                f'{" cp" if args.with_cp and name.startswith("ours") else ""}')
        ips = r['images_per_s']
        mem = r['peak_memory_mib']
        print(f'{name:<12} {desc:<38} {ips["median"]:8.2f} ({ips["min"]:.2f}-{ips["max"]:.2f})'
              f'{"":<6} {r["latency_ms"]["median"]:11.1f} '
              f'{"-" if mem is None else format(mem, ".0f"):>9} '
              f'{roof["models"][name]["gmac_per_s"]:8.1f} '
              f'{roof["models"][name]["fraction"]:8.1%} of {s["dtype"]}')
    for name, fid in record.get('fidelity', {}).items():
        print(f'{name} vs plain fp32: top-1 agreement {fid["top1_agreement"]:.1%} of '
              f'{fid["images"]} images (fixed random 1000-class head), relative L2 error '
              f'{fid["rel_l2_error"]:.2e}')
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

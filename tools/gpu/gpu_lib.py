"""The logic behind ``tools/gpu/gpu_check.sh`` (its Python steps: ``gpu_check.py``) and
``tools/gpu/prepare_bundle.py``, which import it from this folder; not part of the package.

The lent GPU machine runs Python 3.12 with its own torch 2.11, timm and nvcc, reaches no network
and receives at most 64 MiB of files per run. So the bundle carried there holds the wheels it
lacks (installed with ``--no-index --no-deps``) and mmcv's source archive (built there against
its torch). This module says what goes in the bundle and checks that it is complete, writes the
synthetic COCO data and the 50-iteration training config of the check, and turns what the check
measured into one JSON record and a short table.

Nothing here needs a GPU, so the suite tests all of it on CPU. The machine's record (GPU,
CUDA, torch, Python) is ``backbones.analysis.benchmark.machine_info``, the benchmark's own.
"""
import hashlib
import json
import os
import os.path as osp
import re
import statistics
import zipfile
from typing import Iterable, List, Optional, Sequence, Tuple

from mmdet.datasets import CocoDataset

from backbones.analysis.paper import load_paper
from backbones.datasets.shapes import make_coco_split

#: Bundle limit: what one run may carry to the GPU machine (working tree included).
CARRY_LIMIT_MIB = 64
#: The target interpreter of the bundle's wheels.
TARGET_PYTHON = '3.12'
TARGET_PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64')
#: Distributions the GPU machine lacks, at the versions of the set-up's environment (pinned
#: ones from requirements/runtime.txt; the others are their dependencies, pinned by the
#: environment that prepares the bundle). setuptools < 81: mmcv's setup.py imports
#: pkg_resources; numpy < 2.5 as pinned (the machine has 2.5).
BUNDLE_DISTS = ('mmengine', 'mmdet', 'mmsegmentation', 'timm', 'pycocotools', 'addict', 'yapf',
                'platformdirs', 'termcolor', 'terminaltables', 'prettytable', 'wcwidth', 'ftfy',
                'shapely', 'setuptools', 'numpy')
#: mmcv's own runtime requirements (its source archive has no wheel metadata to read).
MMCV_REQUIRES = ('addict', 'mmengine', 'numpy', 'packaging', 'pillow', 'pyyaml', 'yapf',
                 'opencv-python')
#: What the GPU machine already has (its package list in the device notes, read 2026-11-17),
#: by normalised name; what the bundle's wheels require must be here or in the bundle.
GPU_MACHINE_DISTS = frozenset('''
absl-py accelerate aiohttp annotated-doc anyio attrs build certifi charset-normalizer click
cloudpickle cmake colorama contourpy cuda-bindings cuda-pathfinder cuda-toolkit cycler cython
einops filelock fonttools fsspec h11 h5py hf-xet httpcore httpx huggingface-hub idna imageio
iniconfig jinja2 joblib kiwisolver lazy-loader markdown markdown-it-py markupsafe matplotlib
mdurl ml-dtypes mpmath msgpack networkx ninja numpy nvidia-cublas nvidia-cuda-cupti
nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-nccl-cu13 opencv-python-headless
packaging pandas pillow pip pluggy protobuf psutil pygments pyparsing pytest pytest-timeout
python-dateutil pyyaml regex requests rich safetensors scikit-image scikit-learn scipy
setuptools six sympy tabulate threadpoolctl tifffile timm tokenizers torch torchvision tqdm
triton typing-extensions urllib3 wheel wrapt zipp
'''.split())
#: Requirement names that another installed distribution satisfies (same import name).
ALIASES = {'opencv-python': 'opencv-python-headless'}


def normalize(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def wheel_requirements(path: str, python: str = TARGET_PYTHON) -> List[str]:
    """Names a wheel requires on Linux x86_64 under ``python`` (extras and markers that do
    not apply left out)."""
    from packaging.requirements import Requirement
    env = dict(python_version=python, python_full_version=python + '.0', sys_platform='linux',
               platform_system='Linux', platform_machine='x86_64', os_name='posix',
               implementation_name='cpython', platform_python_implementation='CPython',
               extra='')
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.endswith('.dist-info/METADATA'))
        lines = zf.read(meta).decode().splitlines()
    names = []
    for line in lines:
        if not line.startswith('Requires-Dist:'):
            continue
        req = Requirement(line.split(':', 1)[1].strip())
        if req.marker is None or req.marker.evaluate(env):
            names.append(normalize(req.name))
    return names


def wheel_name(path: str) -> str:
    return normalize(osp.basename(path).split('-')[0])


def missing_requirements(wheels: Sequence[str],
                         available: Iterable[str] = GPU_MACHINE_DISTS) -> List[Tuple[str, str]]:
    """``(who, requirement)`` for every requirement of the bundle (its wheels and mmcv) that
    neither the bundle nor the GPU machine provides."""
    have = {wheel_name(w) for w in wheels} | {'mmcv'} | {normalize(a) for a in available}
    have |= {k for k, v in ALIASES.items() if v in have}
    needs = [(wheel_name(w), r) for w in wheels for r in wheel_requirements(w)]
    needs += [('mmcv', normalize(r)) for r in MMCV_REQUIRES]
    return sorted({(who, r) for who, r in needs if r not in have})


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def write_manifest(bundle: str, extra: Optional[dict] = None) -> dict:
    """Record every file of the bundle (size, sha256) and the total in ``manifest.json``."""
    files = []
    for dirpath, _, names in os.walk(bundle):
        for name in sorted(names):
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, bundle)
            if rel != 'manifest.json':
                files.append(dict(path=rel, bytes=osp.getsize(path), sha256=sha256(path)))
    total = sum(f['bytes'] for f in files)
    manifest = dict(files=sorted(files, key=lambda f: f['path']), total_bytes=total,
                    total_mib=round(total / 2**20, 2), limit_mib=CARRY_LIMIT_MIB,
                    target_python=TARGET_PYTHON, **(extra or {}))
    with open(osp.join(bundle, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    return manifest


def verify_bundle(bundle: str) -> List[str]:
    """Problems of a prepared bundle (empty when it is complete and intact)."""
    path = osp.join(bundle, 'manifest.json')
    if not osp.isfile(path):
        return [f'{path}: no manifest (prepare the bundle with `make gpu-bundle`)']
    with open(path) as f:
        manifest = json.load(f)
    problems, intact = [], []
    for entry in manifest['files']:
        file = osp.join(bundle, entry['path'])
        if not osp.isfile(file):
            problems.append(f'{entry["path"]}: missing')
        elif osp.getsize(file) != entry['bytes'] or sha256(file) != entry['sha256']:
            problems.append(f'{entry["path"]}: differs from the manifest')
        else:
            intact.append(file)
    if manifest['total_bytes'] > CARRY_LIMIT_MIB * 2**20:
        problems.append(f'{manifest["total_mib"]} MiB: over the {CARRY_LIMIT_MIB} MiB carry limit')
    if not osp.isfile(osp.join(bundle, 'mmcv-2.1.0.tar.gz')):
        problems.append('mmcv-2.1.0.tar.gz: missing (mmcv is built from it on the GPU machine)')
    wheels = [f for f in intact if f.endswith('.whl')]  # a damaged one is reported above
    names = {wheel_name(e['path']) for e in manifest['files'] if e['path'].endswith('.whl')}
    problems += [f'wheels/: no {d} wheel' for d in BUNDLE_DISTS if normalize(d) not in names]
    problems += [f'{who} needs {req}: neither in the bundle nor on the GPU machine'
                 for who, req in missing_requirements(wheels) if req not in names]
    return problems


# --- the 50-iteration AMP training on synthetic COCO-sized data ------------------------------

COCO_IMAGE_SIZE = 640  # COCO's typical long side; the config's pipeline resizes to 480..800


def write_synthetic_coco(out_dir: str, num_images: int, size: int = COCO_IMAGE_SIZE,
                         seed: int = 0) -> dict:
    """Shapes scenes in COCO's layout under COCO's 80 category names (the shapes land on the
    first three), so the paper's config trains on them with its 80-class heads unchanged.

    Returns:
        ``dict(images=..., annotations=..., ann_file=..., img_dir=...)``.
    """
    coco = make_coco_split(out_dir, 'train', num_images, seed=seed, size=size)
    coco['categories'] = [dict(id=i + 1, name=name, supercategory='object')
                          for i, name in enumerate(CocoDataset.METAINFO['classes'])]
    ann_file = osp.join(out_dir, 'annotations', 'instances_train.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return dict(images=len(coco['images']), annotations=len(coco['annotations']),
                ann_file=ann_file, img_dir=osp.join(out_dir, 'train'))


def train_config_text(base_config: str, data_root: str, iters: int = 50,
                      num_workers: int = 4) -> str:
    """A config that trains ``base_config`` (the paper's recipe, AMP included) for ``iters``
    iterations on the synthetic data: no validation, no pretrained weights, no checkpoint,
    every iteration logged (time, data_time, memory)."""
    return f'''# Written by tools/gpu/gpu_lib.py: {iters} iterations of {osp.basename(base_config)}
_base_ = {osp.abspath(base_config)!r}
model = dict(backbone=dict(init_cfg=None))
train_dataloader = dict(
    num_workers={num_workers},
    persistent_workers=True,
    dataset=dict(data_root={osp.abspath(data_root) + '/'!r},
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/')))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters})
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
param_scheduler = [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
                        end={iters})]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval={iters * 10}, by_epoch=False,
                    save_last=False))
log_processor = dict(by_epoch=False, window_size=1)
'''


def summarize_training(work_dir: str, skip: int = 10) -> dict:
    """Iteration time and peak memory from MMEngine's ``scalars.json`` of a run.

    Args:
        work_dir: The run's work dir (the newest ``*/vis_data/scalars.json`` under it is read).
        skip: First iterations left out of the timing (cuDNN and allocator warm-up).

    Returns:
        ``iters``, ``median_iter_s`` / ``mean_iter_s`` (after ``skip``), ``median_data_s``,
        ``peak_memory_mib`` (the largest ``memory`` logged: torch.cuda.max_memory_allocated),
        ``last_loss``.
    """
    found = []
    for dirpath, _, names in os.walk(work_dir):
        if 'scalars.json' in names and osp.basename(dirpath) == 'vis_data':
            found.append(osp.join(dirpath, 'scalars.json'))
    if not found:
        raise FileNotFoundError(f'{work_dir}: no */vis_data/scalars.json (did training run?)')
    rows = []
    with open(max(found, key=osp.getmtime)) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if 'time' in row and 'iter' in row:
                    rows.append(row)
    if not rows:
        raise ValueError(f'{work_dir}: no training iterations logged')
    timed = [r for r in rows if r['iter'] > skip] or rows
    memory = [r['memory'] for r in rows if 'memory' in r]
    return dict(iters=max(r['iter'] for r in rows), timed_iters=len(timed),
                median_iter_s=statistics.median(r['time'] for r in timed),
                mean_iter_s=statistics.mean(r['time'] for r in timed),
                median_data_s=statistics.median(r.get('data_time', 0.) for r in timed),
                peak_memory_mib=max(memory) if memory else None,
                last_loss=rows[-1].get('loss'))


# --- the report --------------------------------------------------------------------------------

def read_stages(path: str) -> List[dict]:
    """Stage lines ``name<TAB>status<TAB>seconds<TAB>note`` written by tools/gpu/gpu_check.sh."""
    stages = []
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip('\n').split('\t')
                if len(parts) >= 3:
                    stages.append(dict(name=parts[0], status=parts[1], seconds=float(parts[2]),
                                       note=parts[3] if len(parts) > 3 else ''))
    return stages


def read_junit(path: str) -> Optional[dict]:
    """Counts and failing test ids from pytest's JUnit XML."""
    if not osp.isfile(path):
        return None
    import xml.etree.ElementTree as ET
    cases = ET.parse(path).getroot().iter('testcase')
    out = dict(passed=0, failed=0, skipped=0, failures=[])
    for case in cases:
        test_id = f'{case.get("classname")}::{case.get("name")}'
        if case.find('failure') is not None or case.find('error') is not None:
            out['failed'] += 1
            node = case.find('failure') if case.find('failure') is not None else case.find('error')
            out['failures'].append(dict(test=test_id, message=(node.get('message') or '')[:300]))
        elif case.find('skipped') is not None:
            out['skipped'] += 1
        else:
            out['passed'] += 1
    return out


def _load_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def benchmark_summary(record: Optional[dict]) -> Optional[dict]:
    """Images/s of each model of a benchmark.py record, its ratios and the paper's figures."""
    if not record:
        return None
    arch = record['settings']['arch']
    paper = load_paper()['backbones'].get(arch, {}).get('img_s_224')
    models = {name: dict(images_per_s=round(r['images_per_s']['median'], 1),
                         peak_memory_mib=r.get('peak_memory_mib'), settings=r['settings'])
              for name, r in record['results'].items()}
    return dict(gpu=record['machine'].get('gpu'), batch=record['settings']['batch'],
                input_size=record['settings']['input_size'], models=models,
                arch=arch, ratios={k: round(v, 3) for k, v in record['ratios'].items()},
                paper_img_s=paper)


def build_report(out_dir: str, machine: Optional[dict] = None) -> dict:
    """Collect what tools/gpu/gpu_check.sh left in ``out_dir`` into one record."""
    stages = read_stages(osp.join(out_dir, 'stages.tsv'))
    return dict(machine=machine or {}, stages=stages,
                failed=[s['name'] for s in stages if s['status'] == 'failed'],
                total_s=round(sum(s['seconds'] for s in stages), 1),
                gpu_tests=read_junit(osp.join(out_dir, 'gpu_tests.xml')),
                training=_load_json(osp.join(out_dir, 'train_summary.json')),
                benchmark=benchmark_summary(_load_json(osp.join(out_dir, 'benchmark.json'))))


def format_table(report: dict) -> str:
    """The short Markdown table of a report."""
    m = report.get('machine', {})
    outcome = 'failed: ' + ', '.join(report['failed']) if report['failed'] else 'no stage failed'
    lines = [f'GPU check on {m.get("gpu") or "no GPU"} (torch {m.get("torch", "?")}, '
             f'CUDA {m.get("cuda", "?")}, Python {m.get("python", "?")}): '
             f'{report["total_s"]:.0f} s, {outcome}',
             '', '| stage | status | seconds | note |', '|---|---|---|---|']
    lines += [f'| {s["name"]} | {s["status"]} | {s["seconds"]:.0f} | {s["note"]} |'
              for s in report['stages']]
    tests = report.get('gpu_tests')
    if tests:
        lines += ['', f'gpu tests: {tests["passed"]} passed, {tests["failed"]} failed, '
                  f'{tests["skipped"]} skipped']
        lines += [f'- FAILED {f["test"]}: {f["message"]}' for f in tests['failures']]
    train = report.get('training')
    if train:
        lines += ['', f'Cascade Mask R-CNN ConvNeXt-T, AMP, {train["iters"]} iterations of '
                  f'batch 2: {train["median_iter_s"]:.3f} s/iter (median of the last '
                  f'{train["timed_iters"]}), peak memory {train["peak_memory_mib"]} MiB']
    bench = report.get('benchmark')
    if bench:
        paper = bench['paper_img_s'] or {}
        gpus = sorted(paper)
        lines += ['', f'| ConvNeXt-{bench["arch"]} inference {bench["input_size"][0]}, batch '
                  f'{bench["batch"]} | img/s |'
                  + ''.join(f' vs paper {g} ({paper[g]}) |' for g in gpus),
                  '|---|---|' + '---|' * len(gpus)]
        for name, r in bench['models'].items():
            s = r['settings']
            desc = f'{name} ({s["dtype"]}{", channels_last" if s["channels_last"] else ""}' \
                   f'{", fast path" if s["fast"] else ""})'
            ips = r['images_per_s']
            ratios = ''.join(f' {ips / paper[g]:.2f}x |' for g in gpus)
            lines.append(f'| {desc} | {ips} |{ratios}')
    return '\n'.join(lines) + '\n'

"""GPU readiness that a CPU machine can check: the set-up's choices (CPU or CUDA ops, which
architectures and compiler, pinned or reused torch) as real processes of tools/setup_env.sh
--plan, mmcv's ops check, the carry bundle for the GPU machine, tools/gpu/gpu_check.sh --dry-run,
its report, and the `gpu` tests' skip where there is no GPU."""
import json
import os
import os.path as osp
import re
import shutil
import stat
import subprocess
import sys

import pytest
import torch
from conftest import REPO, load_tool, run_tool

from backbones.analysis.benchmark import machine_info

gpu_lib = load_tool('gpu', 'gpu_lib.py')  # the library of tools/gpu/, not part of the package
SETUP = osp.join(REPO, 'tools', 'setup_env.sh')
BUILD_MMCV = osp.join(REPO, 'tools', 'build_mmcv.sh')
# What the suite's own environment was made with, so `--plan` recomputes the same key.
SETUP_VARS = ('CONVNEXT_TORCH', 'PYTHON', 'CONVNEXT_ENV_ROOT', 'FORCE_CUDA',
              'TORCH_CUDA_ARCH_LIST', 'CONVNEXT_CUDA_TOOLKIT', 'CUDA_HOME')


def plan(tmp_path, path_dirs=(), **env):
    """``tools/setup_env.sh --plan`` as key -> value, with ``env`` on top of a clean slate and
    ``path_dirs`` first on PATH."""
    full = {k: v for k, v in os.environ.items() if k not in SETUP_VARS}
    full['CONVNEXT_ENV_ROOT'] = str(tmp_path / 'envs')
    full['PATH'] = os.pathsep.join([*map(str, path_dirs), full['PATH']])
    full.update(env)
    proc = subprocess.run(['bash', SETUP, '--plan'], env=full, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split('=', 1) for line in proc.stdout.splitlines())


def fake_tool(folder, name, script):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text('#!/bin/sh\n' + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder


def fake_nvcc(folder, release, headers=('cusparse.h', 'cublas_v2.h', 'cusolverDn.h')):
    """An nvcc that reports ``release`` and, like the real one, its toolkit root on --dryrun;
    its toolkit holds ``headers`` (a full toolkit has the math libraries' headers)."""
    (folder.parent / 'include').mkdir(parents=True, exist_ok=True)
    for header in headers:
        (folder.parent / 'include' / header).write_text('')
    return fake_tool(folder, 'nvcc', f'''case "$*" in
  *--version*) echo "Cuda compilation tools, release {release}, V{release}.1" ;;
  *--dryrun*) echo '#$ TOP={folder}/..' >&2 ;;
esac
''')


def test_plan_on_a_cpu_machine_keeps_cpu_ops(tmp_path):
    # nvidia-smi as on a machine with the driver tools but no GPU (or none at all, as in CI).
    no_gpu = fake_tool(tmp_path / 'bin', 'nvidia-smi', 'echo "No devices were found"; exit 6\n')
    default = plan(tmp_path, [no_gpu])
    assert default['mmcv_ops'] == 'cpu (no NVIDIA GPU)'
    assert default['torch'].startswith('pinned: torch==')
    assert 'cuda_arch_list' not in default and default['built'] == 'no'
    assert plan(tmp_path, FORCE_CUDA='0')['key'] == default['key']
    assert plan(tmp_path)['key'] == default['key']


def test_plan_cuda_keys_differ_by_ops_and_architectures(tmp_path):
    cpu = plan(tmp_path)
    h100 = plan(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='9.0')
    both = plan(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='8.0 9.0')
    default = plan(tmp_path, FORCE_CUDA='1')
    assert h100['mmcv_ops'] == 'cuda (FORCE_CUDA=1)'
    assert h100['cuda_arch_list'] == '9.0 (TORCH_CUDA_ARCH_LIST)'
    assert both['cuda_arch_list'] == '8.0;9.0 (TORCH_CUDA_ARCH_LIST)'
    assert default['cuda_arch_list'] == '8.0;9.0 (default)'  # A100 and H100/H200
    assert len({cpu['key'], h100['key'], both['key']}) == 3
    assert default['key'] == both['key']  # same build, same environment


def test_plan_detects_a_gpu_through_nvidia_smi(tmp_path):
    bin_dir = fake_tool(tmp_path / 'bin', 'nvidia-smi', '''case "$*" in
  -L) echo "GPU 0: NVIDIA H200 (UUID: GPU-0)" ;;
  *compute_cap*) echo "9.0" ;;
esac
''')
    found = plan(tmp_path, [bin_dir])
    assert found['mmcv_ops'] == 'cuda (nvidia-smi lists a GPU)'
    assert found['cuda_arch_list'] == '9.0 (detected-gpu)'
    assert plan(tmp_path, [bin_dir], FORCE_CUDA='0')['mmcv_ops'] == 'cpu (FORCE_CUDA=0)'


def test_plan_reuses_an_interpreters_torch(tmp_path):
    pinned = plan(tmp_path)
    system = plan(tmp_path, CONVNEXT_TORCH='system', PYTHON=sys.executable)
    torch_dir = osp.dirname(osp.dirname(osp.realpath(torch.__file__)))
    assert system['torch'] == f'system: torch {torch.__version__} from {torch_dir}'
    assert system['key'] != pinned['key']


@pytest.mark.skipif(torch.version.cuda is None, reason='the compiler follows a CUDA torch')
def test_plan_chooses_the_compiler_by_torchs_cuda_version(tmp_path):
    want = torch.version.cuda
    major = int(want.split('.')[0])
    common = dict(CONVNEXT_TORCH='system', PYTHON=sys.executable, FORCE_CUDA='1')
    match = fake_nvcc(tmp_path / 'match' / 'bin', f'{major}.9')
    assert plan(tmp_path, [match], **common)['cuda_toolkit'] == \
        f'nvcc {tmp_path / "match"} {major}.9'
    other = fake_nvcc(tmp_path / 'other' / 'bin', f'{major - 1}.4')
    assert plan(tmp_path, [other], **common)['cuda_toolkit'] == f'pypi - {want}'
    assert plan(tmp_path, [match], CONVNEXT_CUDA_TOOLKIT='pypi',
                **common)['cuda_toolkit'] == f'pypi - {want}'
    # CUDA_HOME is tried before PATH.
    assert plan(tmp_path, [other], CUDA_HOME=str(tmp_path / 'match'),
                **common)['cuda_toolkit'] == f'nvcc {tmp_path / "match"} {major}.9'
    # A toolkit of the compiler alone (like one laid out from NVIDIA's compiler wheels) lacks
    # the math libraries' headers that torch's CUDA headers include: the PyPI layout has them.
    bare = fake_nvcc(tmp_path / 'bare' / 'bin', f'{major}.9', headers=('cublas_v2.h', ))
    assert plan(tmp_path, [bare], **common)['cuda_toolkit'] == f'pypi - {want}'


def test_plan_rejects_unknown_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SETUP_VARS}
    # An interpreter that cannot import torch (site-packages off).
    no_torch = fake_tool(tmp_path / 'bin', 'python3', f'exec {sys.executable} -S "$@"\n')
    for extra, message in [(dict(CONVNEXT_TORCH='conda'), 'must be pinned or system'),
                           (dict(FORCE_CUDA='yes'), 'FORCE_CUDA must be 1, 0 or unset'),
                           (dict(CONVNEXT_TORCH='system', PYTHON=str(no_torch / 'python3')),
                            'CONVNEXT_TORCH=system: no usable torch in')]:
        proc = subprocess.run(['bash', SETUP, '--plan'], env=dict(env, **extra),
                              capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stderr


def test_mmcv_check_tells_cpu_from_cuda_builds():
    from mmcv.ops import get_compiling_cuda_version
    built = 'cpu' if get_compiling_cuda_version() == 'not available' else 'cuda'
    other = 'cuda' if built == 'cpu' else 'cpu'
    ok = subprocess.run(['bash', BUILD_MMCV, 'check', sys.executable, built],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(['bash', BUILD_MMCV, 'check', sys.executable, other],
                           capture_output=True, text=True)
    assert wrong.returncode != 0
    assert re.search(r'mmcv (has CUDA .* ops|ops built for CUDA not available)', wrong.stderr)


def test_gpu_tests_are_skipped_with_their_reason_without_cuda():
    proc = run_tool([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-m', 'gpu',
                     '-rs', 'tests/test_gpu.py'], check=False, CUDA_VISIBLE_DEVICES='')
    assert proc.returncode == 0, proc.stdout[-3000:]
    collected = int(re.search(r'collected (\d+) items', proc.stdout).group(1))
    assert collected >= 12
    assert re.search(rf'\b{collected} skipped\b', proc.stdout)
    assert not re.search(r'\d+ (passed|failed|error)', proc.stdout)
    reasons = re.findall(r'^SKIPPED \[(\d+)\] .*?: (.*)$', proc.stdout, re.M)
    assert sum(int(n) for n, _ in reasons) == collected
    assert all(r.startswith('needs a CUDA GPU: torch ') for _, r in reasons)


def write_scalars(run_dir, times):
    vis = run_dir / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    with open(vis / 'scalars.json', 'w') as f:
        for i, t in enumerate(times, 1):
            f.write(json.dumps(dict(lr=1e-4, data_time=0.01, loss=3.0 - i / 100, time=t,
                                    iter=i, memory=1000 + i, step=i)) + '\n')


def test_training_summary_leaves_out_the_warm_up(tmp_path):
    write_scalars(tmp_path, [5.0] * 10 + [0.4, 0.5, 0.6] * 10)
    s = gpu_lib.summarize_training(str(tmp_path))
    assert s['iters'] == 40 and s['timed_iters'] == 30
    assert s['median_iter_s'] == 0.5 and s['peak_memory_mib'] == 1040
    with pytest.raises(FileNotFoundError, match='no \\*/vis_data/scalars.json'):
        gpu_lib.summarize_training(str(tmp_path / 'nothing'))


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    """The real bundle: wheels for CPython 3.12 from PyPI (pip's cache) and mmcv's source."""
    out = tmp_path_factory.mktemp('gpu') / 'bundle'
    proc = run_tool(['tools/gpu/prepare_bundle.py', '--out', str(out)], timeout=900)
    return out, proc.stdout


@pytest.mark.slow
def test_bundle_is_complete_and_under_the_carry_limit(bundle):
    out, stdout = bundle
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['total_bytes'] < gpu_lib.CARRY_LIMIT_MIB * 2**20
    assert f'{manifest["total_mib"]} MiB' in stdout
    paths = [f['path'] for f in manifest['files']]
    assert 'mmcv-2.1.0.tar.gz' in paths
    wheels = [p for p in paths if p.startswith('wheels/')]
    assert {gpu_lib.wheel_name(w) for w in wheels} == {
        gpu_lib.normalize(d) for d in gpu_lib.BUNDLE_DISTS}
    # Compiled ones for CPython 3.12 (abi3 or cp312), the rest pure Python.
    assert all(re.search(r'-(cp312-cp312|cp3\d+-abi3|py3-none|py2\.py3-none)-', w)
               for w in wheels), wheels
    assert gpu_lib.verify_bundle(str(out)) == []


@pytest.mark.slow
def test_bundle_check_finds_gaps_and_damage(bundle, tmp_path):
    out, _ = bundle
    copy = tmp_path / 'bundle'
    shutil.copytree(out, copy)
    wheels = sorted(str(p) for p in (copy / 'wheels').glob('*.whl'))
    without = [w for w in wheels if gpu_lib.wheel_name(w) != 'wcwidth']
    missing = gpu_lib.missing_requirements(without)
    assert ('prettytable', 'wcwidth') in missing and ('ftfy', 'wcwidth') in missing
    # mmengine asks for opencv-python; the machine's opencv-python-headless provides cv2.
    assert not [m for m in missing if m[1] == 'opencv-python']
    assert ('mmengine', 'opencv-python') in gpu_lib.missing_requirements(
        wheels, available=gpu_lib.GPU_MACHINE_DISTS - {'opencv-python-headless'})
    (copy / 'wheels' / osp.basename(without[0])).write_bytes(b'not a wheel')
    os.remove(copy / 'mmcv-2.1.0.tar.gz')
    problems = gpu_lib.verify_bundle(str(copy))
    assert f'wheels/{osp.basename(without[0])}: differs from the manifest' in problems
    assert any(p.startswith('mmcv-2.1.0.tar.gz: missing') for p in problems)


@pytest.mark.slow
def test_gpu_check_dry_run_and_its_report(bundle, tmp_path):
    out, _ = bundle
    report_dir = tmp_path / 'out'
    proc = run_tool(['tools/gpu/gpu_check.sh', '--dry-run', '--bundle', str(out), '--out',
                     str(report_dir)], timeout=900, PYTHON=sys.executable)
    assert 'DRY RUN' in proc.stdout and 'all stages ok' in proc.stdout
    report = json.loads((report_dir / 'gpu_check.json').read_text())
    stages = {s['name']: s for s in report['stages']}
    assert list(stages) == ['install', 'mmcv', 'benchmark', 'gpu-tests', 'train']
    assert all(s['status'] == 'dry-run' for s in stages.values()), stages
    assert re.match(r'\d+ wheels install for CPython 3\.12', stages['install']['note'])
    assert report['failed'] == [] and report['machine']['torch'] == torch.__version__
    log = (report_dir / 'gpu_check.log').read_text()
    assert 'bundle ' + str(out) + ': complete' in log
    assert 'test_amp_training_step[cascade_mask_rcnn]' in log  # the gpu tests were collected
    assert '"optim_wrapper": "AmpOptimWrapper"' in log  # the training config loads
    assert (report_dir / 'gpu_check.md').read_text().startswith('GPU check on no GPU')


def test_report_of_a_benchmark_record(tmp_path):
    run_tool(['tools/analysis/benchmark.py', '--arch', 'tiny', '--batch', '1', '--input-size',
              '32', '32', '--threads', '1', '--warmup', '0', '--repeats', '1', '--compare',
              'timm', '--no-memory', '--out', str(tmp_path / 'benchmark.json')])
    (tmp_path / 'stages.tsv').write_text('install\tok\t12\t15 wheels\n'
                                         'mmcv\tfailed\t300\texit 124 timed out\n')
    write_scalars(tmp_path / 'run', [0.3] * 20)
    (tmp_path / 'train_summary.json').write_text(
        json.dumps(gpu_lib.summarize_training(str(tmp_path / 'run'))))
    report = gpu_lib.build_report(str(tmp_path), dict(gpu='NVIDIA H200', torch='2.11.0'))
    assert report['failed'] == ['mmcv'] and report['total_s'] == 312
    assert set(report['benchmark']['models']) == {'ours', 'timm'}
    assert report['benchmark']['paper_img_s'] == {'V100': 774.7, 'A100': 1943.5}
    table = gpu_lib.format_table(report)
    assert 'failed: mmcv' in table and '| mmcv | failed | 300 | exit 124 timed out |' in table
    ours = report['benchmark']['models']['ours']['images_per_s']
    assert f'| ours (fp32) | {ours} | {ours / 1943.5:.2f}x | {ours / 774.7:.2f}x |' in table
    assert '0.300 s/iter' in table


def test_report_machine_record_comes_from_the_benchmark(tmp_path):
    """The report's machine is the benchmark's record, with what its table names."""
    info = machine_info()
    assert info['torch'] == torch.__version__ and info['cuda'] == torch.version.cuda
    assert info['python'] and 'gpu' in info and info['cpu_model']
    table = gpu_lib.format_table(gpu_lib.build_report(str(tmp_path), info))
    assert f'(torch {torch.__version__}, CUDA {torch.version.cuda}, Python' in table


def test_old_gpu_check_path_forwards_to_tools_gpu():
    proc = run_tool(['tools/gpu_check.sh', '--no-such-option'], check=False)
    assert proc.returncode == 2
    assert osp.join('tools', 'gpu', 'gpu_check.sh') + ' [--dry-run]' in proc.stderr

import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(REPO, 'tests', 'data')

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs one pytest-xdist worker per core: each computes on one thread (and so do
    # the tools it starts), since two-thread workers would oversubscribe the cores.
    import torch
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)


def tool_env(**extra):
    """Environment for running the tools as a user would, from the repo root."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO, TEST_DATA, env.get('PYTHONPATH', '')])
    env.setdefault('OMP_NUM_THREADS', '2')
    env.update(extra)
    return env


def free_port():
    """A TCP port free on this machine now (for a torchrun rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_tool(args, timeout=600, check=True, **env):
    """Run ``python tools/...`` (or a shell script) in a real subprocess; return it."""
    cmd = list(args)
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    proc = subprocess.run(cmd, cwd=REPO, env=tool_env(**env), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited {proc.returncode}\n'
                             f'--- stdout ---\n{proc.stdout[-4000:]}\n'
                             f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


def load_tool(*parts):
    """Import a script under tools/ as a module (``load_tool('analysis', 'reproduce.py')``),
    to call its ``main(argv)`` in this process."""
    import importlib.util
    path = osp.join(REPO, 'tools', *parts)
    spec = importlib.util.spec_from_file_location(osp.splitext(parts[-1])[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cuda_skip_reason():
    """Why the ``gpu`` tests cannot run here, or None when torch sees a CUDA device."""
    import torch
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f'needs a CUDA GPU: torch {torch.__version__} is a CPU-only build'
    return (f'needs a CUDA GPU: torch {torch.__version__} (CUDA {torch.version.cuda}) sees '
            'none (torch.cuda.is_available() is False); tools/gpu/gpu_check.sh runs these on '
            'one')


def pytest_collection_modifyitems(config, items):
    # The one documented skip of the suite: `gpu` tests on a machine without CUDA (CI).
    gpu_items = [item for item in items if item.get_closest_marker('gpu')]
    reason = cuda_skip_reason() if gpu_items else None
    for item in gpu_items if reason else ():
        item.add_marker(pytest.mark.skip(reason=reason))


def pytest_report_header(config):
    reason = cuda_skip_reason()
    # Build our C++ depthwise-gradient kernel (or find it cached) once, here: not inside a
    # test process that another test kills on purpose while it would hold the build lock.
    from backbones.models.dwconv import _extension
    built = _extension() is not None
    return [f'gpu tests: {"run" if reason is None else "skipped, " + reason}',
            f'depthwise weight-gradient kernel: {"built" if built else "NOT built (see warning)"}']


class MakesAFile:
    """Unpickling this runs ``open(path, 'w')``: the marker file proves code execution."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def toy_config():
    return osp.join(TEST_DATA, 'configs', 'toy_classifier.py')

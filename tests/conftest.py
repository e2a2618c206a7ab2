import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(REPO, 'tests', 'data')


def tool_env(**extra):
    """Environment for running the tools as a user would, from the repo root."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO, TEST_DATA, env.get('PYTHONPATH', '')])
    env.setdefault('OMP_NUM_THREADS', '2')
    env.update(extra)
    return env


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


class MakesAFile:
    """Unpickling this runs ``open(path, 'w')``: the marker file proves code execution."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def toy_config():
    return osp.join(TEST_DATA, 'configs', 'toy_classifier.py')

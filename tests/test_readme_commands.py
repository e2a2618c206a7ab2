"""Every command line in the README's code blocks, run the way a user types it.

The lines are parsed from README.md on every run (whatever it says today), and each is run from
the clone's root in ``bash``, with the environment's Python first on PATH and no PYTHONPATH: a
tool that only works with the test suite's PYTHONPATH fails here. A line is either

* run as written (``AS_WRITTEN``),
* run as written with a few arguments appended that make it tiny (``TINY``: its real run is
  long; the appended ones override the line's own, e.g. a smaller batch; ``{tmp}`` is the
  test's temporary folder),
* run as ``<program> --help`` (``HELP``: it names placeholders such as CONFIG, or needs data
  sets or checkpoints a test machine does not have), or
* deliberately not run (``NOT_RUN``, each with the reason).

A new README command in none of these lists fails :func:`test_every_readme_command_is_listed`.
"""
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
from typing import Dict, List

import pytest
from conftest import REPO

README = osp.join(REPO, 'README.md')

#: Fence languages whose every non-comment line is a command.
SHELL_LANGUAGES = ('bash', 'sh', 'shell', 'console', 'zsh')
#: In a fence without a language, a line is a command when it starts like one (the README also
#: has plain fences with folder trees).
_ENV_PREFIX = r'(?:[A-Z_][A-Z0-9_]*=\S*\s+)*'  # VAR=value words before the program
COMMAND_START = re.compile(
    rf'^{_ENV_PREFIX}(?:(?:python3?|make|bash|sh|source|pip|pytest)\s|(?:tools|\.)/\S)')

AS_WRITTEN: Dict[str, str] = {
    'python tools/download.py --list --task detection': 'prints the zoo, fetches nothing',
}

TINY = {
    # Full speed benchmark of ConvNeXt-T at batch 32 (a minute on 2 cores): batch 1 at 32 px,
    # its record written to the test's folder ({tmp}) instead of the clone's work_dirs/.
    'python tools/analysis/benchmark.py --arch tiny --batch 32 --fast --compare timm':
        '--batch 1 --input-size 32 32 --warmup 0 --repeats 1 --no-memory --threads 1 '
        '--out {tmp}/benchmark.json',
    # Every paper row, FLOPs at 1280x800 included (over 10 minutes): one backbone's params.
    'python tools/analysis/paper_check.py': '--only backbone/tiny --skip-flops',
}

HELP = {
    'python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp] [--cfg-options k=v '
    '...]': 'synopsis',
    'python tools/test.py CONFIG CHECKPOINT [--out preds.pkl] [--show-dir vis] [--tta]':
        'synopsis',
    'python tools/test.py configs/segmentation/upernet_convnext_t_ade20k.py CKPT --tta':
        'ADE20K and a trained checkpoint',
    'python tools/train.py configs/detection/cascade_convnext_t_coco.py': 'COCO, 36 epochs',
    'python tools/test.py configs/detection/cascade_convnext_t_coco.py zoo://cascade_convnext_t':
        'COCO and the released detector (internet)',
    'python tools/image_demo.py IMAGE CONFIG CHECKPOINT --out-file out.png': 'synopsis',
    'python tools/test.py configs/classification/convnext_t_in1k.py '
    'zoo://convnext_tiny_1k_224_ema': 'ImageNet and the released checkpoint (internet)',
    'python tools/train.py configs/detection/mask_rcnn_convnext_t_coco.py --allow-new-keys '
    '--cfg-options model.backbone.init_cfg.checkpoint=work_dirs/convnext_t_in1k/epoch_300.pth '
    'model.backbone.init_cfg.use_ema=True': 'COCO and an ImageNet pre-training',
    'python tools/analysis/get_flops.py CONFIG [--shape H W] [--json]': 'synopsis',
    'python tools/analysis/matrix.py WORK_DIR... --out-md t.md --out-csv t.csv --out-png t.png':
        'synopsis (needs finished work dirs)',
    # tests/test_reproduce.py runs it end to end on the shapes data with a served zoo.
    'python tools/analysis/reproduce.py --task det --models cascade_convnext_t '
    'mask_rcnn_convnext_t --gpus 8': 'COCO, the released weights and 8 GPUs',
    'python tools/analysis/reproduce.py --task seg --gpus 8': 'ADE20K, released weights, 8 GPUs',
}

NOT_RUN = {
    # The demo trains eleven models (about 14 min); tests/test_demo.py runs its --reduced path.
    'make demo': 'long training',
    # The internet (tests/test_hub.py fetches through a local server instead).
    'python tools/download.py convnext_tiny_1k_224 cascade_convnext_t': 'downloads 0.5 GB',
    # This test suite itself.
    'make test': 'the test suite',
    # Several processes or machines, GPUs or Slurm (the 2-process CPU path of dist_train.sh is
    # run by tests/test_entry_points.py and tests/test_reliability.py).
    'tools/dist_train.sh CONFIG 8': '8 GPUs',
    'tools/dist_test.sh CONFIG CHECKPOINT 8 [test.py args]': '8 GPUs',
    'NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8':
        'two machines',
    'NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8':
        'two machines',
    'GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR': 'Slurm',
    'tools/dist_train.sh configs/detection/cascade_convnext_t_coco.py 8': '8 GPUs, COCO',
    'tools/dist_test.sh configs/detection/cascade_convnext_t_coco.py '
    'work_dirs/cascade_convnext_t_coco/epoch_36.pth 8': '8 GPUs, COCO',
    'tools/dist_train.sh configs/segmentation/upernet_convnext_t_ade20k.py 8': '8 GPUs, ADE20K',
    'tools/dist_train.sh configs/classification/convnext_t_in1k.py 8': '8 GPUs, ImageNet',
}


def readme_commands(path: str = README) -> List[str]:
    """The command lines of the fenced code blocks of ``path``, continuation lines joined,
    comments dropped, words separated by one space."""
    commands = []
    fence, language, pending = None, '', ''
    with open(path, encoding='utf-8') as f:
        for raw in f:
            line = raw.strip()
            opener = re.match(r'^(`{3,}|~{3,})\s*([\w+-]*)', line)
            if fence is None:
                if opener:
                    fence, language = opener.group(1), opener.group(2).lower()
                continue
            if line.startswith(fence) and not line[len(fence):].strip():
                fence, pending = None, ''
                continue
            if line.endswith('\\'):
                pending += line[:-1] + ' '
                continue
            line, pending = pending + line, ''
            # Only command lines are parsed: prose in a plain fence (a folder tree) may hold
            # an apostrophe that is not a shell quote.
            if not (language in SHELL_LANGUAGES or (not language and COMMAND_START.match(line))):
                continue
            words = shlex.split(line, comments=True)
            if words:
                commands.append(' '.join(words))
    return commands


def _user_env() -> Dict[str, str]:
    """The user's shell after activating the environment: its Python first, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return env


def _runs() -> Dict[str, str]:
    """``{id: bash command}`` for every README line that is run (``--help`` once per program)."""
    runs = {}
    for command in readme_commands():
        if command in AS_WRITTEN:
            runs[command] = command
        elif command in TINY:
            runs[command] = f'{command} {TINY[command]}'
        elif command in HELP:
            words = command.split()
            program = next(i for i, w in enumerate(words) if w.endswith('.py'))
            help_cmd = ' '.join(words[:program + 1] + ['--help'])
            runs[help_cmd] = help_cmd
    return runs


def test_readme_is_parsed():
    commands = readme_commands()
    # The two commands of the first block and a line continued with a backslash.
    assert commands[:2] == ['make demo', 'make test']
    assert any(c.startswith('python tools/train.py configs/detection/mask_rcnn_convnext_t_coco.py'
                            ' --allow-new-keys --cfg-options model.') for c in commands)
    # Folder trees in plain fences are not commands; trailing comments are dropped.
    assert not any(c.startswith(('data/', 'backbones/')) for c in commands)
    assert not any('#' in c for c in commands)


def test_every_readme_command_is_listed():
    lists = (AS_WRITTEN, TINY, HELP, NOT_RUN)
    unlisted = [c for c in readme_commands() if not any(c in listed for listed in lists)]
    assert not unlisted, (
        'README command(s) that this test neither runs nor lists as not run; add each to '
        'AS_WRITTEN, TINY, HELP or NOT_RUN in tests/test_readme_commands.py:\n  '
        + '\n  '.join(unlisted))
    twice = [c for c in readme_commands() if sum(c in listed for listed in lists) > 1]
    assert not twice, twice


def test_readme_commands_name_existing_files():
    # Cheap drift check for the lines that are not run as written: every tool and config.
    named = {w for c in readme_commands() for w in c.split()
             if w.startswith(('tools/', 'configs/'))}
    missing = sorted(w for w in named if not osp.exists(osp.join(REPO, w)))
    assert not missing, missing


def test_python_on_path_is_the_environments():
    found = shutil.which('python', path=_user_env()['PATH'])
    assert found and osp.dirname(found) == osp.dirname(sys.executable), found


@pytest.mark.slow
@pytest.mark.parametrize('command',
                         [pytest.param(cmd, id=cmd[:60]) for cmd in sorted(_runs().values())])
def test_readme_command_runs(command, tmp_path):
    command = command.replace('{tmp}', str(tmp_path))
    proc = subprocess.run(['bash', '-c', command], cwd=REPO, env=_user_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (f'{command!r} exited {proc.returncode}\n--- stdout ---\n'
                                  f'{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}')
    if command.endswith('--help'):
        assert proc.stdout.startswith('usage:'), proc.stdout[:500]

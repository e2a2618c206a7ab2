"""tools/train.py, tools/test.py and tools/dist_train.sh run the real Runner in real processes."""
import glob
import json
import os
import os.path as osp
import re
import sys

import pytest
import torch
from conftest import REPO, TEST_DATA, free_port, run_tool

import backbones  # noqa: F401  (the allow-list for reading checkpoints here)


def _checkpoints(work_dir):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth')))


@pytest.mark.slow
def test_train_then_resume_with_weights_only(tmp_path, toy_config):
    work = str(tmp_path / 'run')
    run_tool(['tools/train.py', toy_config, '--work-dir', work])
    assert _checkpoints(work) == ['epoch_1.pth', 'epoch_2.pth']

    # The checkpoint asks the unpickler for nothing beyond torch's own defaults (no numpy, no
    # HistoryBuffer, no getattr): plain torch.load(weights_only=True) reads it, no import needed.
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()  # as in a process that did not import backbones
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
            osp.join(work, 'epoch_2.pth'))
    finally:
        torch.serialization.add_safe_globals(allowed)
    assert unsafe == []

    proc = run_tool(['tools/train.py', toy_config, '--work-dir', work, '--resume',
                     '--cfg-options', 'train_cfg.max_epochs=3'])
    log = proc.stdout + proc.stderr
    assert re.search(r'resumed epoch: 2, iter: 8', log), log[-3000:]
    assert 'Epoch(train)   [3]' in log or 'Epoch(train) [3]' in log
    assert _checkpoints(work) == ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']
    ckpt = torch.load(osp.join(work, 'epoch_3.pth'), weights_only=True)
    assert ckpt['meta']['epoch'] == 3
    # The resumed message hub kept the whole loss history (saved again as plain lists).
    hub = ckpt['message_hub']['log_scalars']['train/loss']
    assert len(hub['log_history']) == len(hub['count_history']) == 3 * 4


@pytest.mark.slow
def test_test_tool_reports_metric_and_dumps(tmp_path, toy_config):
    work = str(tmp_path / 'run')
    run_tool(['tools/train.py', toy_config, '--work-dir', work,
              '--cfg-options', 'train_cfg.max_epochs=1'])
    out = str(tmp_path / 'preds.pkl')
    proc = run_tool(['tools/test.py', toy_config, osp.join(work, 'epoch_1.pth'),
                     '--work-dir', work, '--out', out])
    assert re.search(r'accuracy: [0-9.]+', proc.stdout + proc.stderr)
    assert osp.getsize(out) > 0


@pytest.mark.slow
def test_dist_train_two_processes_gloo(tmp_path, toy_config):
    work = str(tmp_path / 'dist')
    proc = run_tool(['bash', 'tools/dist_train.sh', toy_config, '2', '--work-dir', work],
                    PORT=str(29500 + os.getpid() % 1000))
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log
    assert 'Distributed training: True' in log
    # 16 samples, batch 4 per process: 2 iterations per epoch only when 2 ranks split the data.
    assert 'Epoch(train) [1][2/2]' in log and '[1][4/4]' not in log, log[-3000:]
    assert _checkpoints(work) == ['epoch_1.pth', 'epoch_2.pth']
    # The ranks end with os._exit after the run (exit_distributed_rank): the log file must
    # still hold the run's last line.
    with open(glob.glob(osp.join(work, '2*', '2*.log'))[0]) as f:
        assert f.read().rstrip().endswith('Skipped images: 0')


@pytest.mark.slow
def test_ddp_depthwise_grads_match_bucket_views():
    # Two real gloo ranks: DDP must not warn about (and copy) the depthwise weights' grads,
    # and the averaged grads must equal one process's on the whole batch. The control (a bare
    # channels-last depthwise conv) shows the warning is seen here when the layout is wrong.
    proc = run_tool([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                     '--master_port', str(free_port()), osp.join(TEST_DATA, 'ddp_grads.py')],
                    OMP_NUM_THREADS='1')
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    ours, control = result['convnext_atto'], result['control']
    assert not ours['warned'] and ours['grad_strides_differ'] == [], ours
    assert ours['params'] > 100 and ours['max_rel_grad_diff'] < 1e-5, ours
    assert control['grad_strides_differ'] == ['dw.weight'] and control['warned'], control


def test_depthwise_grads_take_the_parameters_strides():
    from backbones.models import ConvNeXt, ModernizedResNet
    for model in (ConvNeXt('atto', out_indices=(0, 1, 2, 3)),
                  ModernizedResNet('kernel_size', out_indices=(0, 1, 2, 3))):
        x = torch.randn(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
        sum(o.square().mean() for o in model.train()(x)).backward()
        depthwise = [n for n, p in model.named_parameters() if p.dim() == 4 and p.shape[1] == 1]
        assert depthwise
        for name, p in model.named_parameters():
            assert p.grad.stride() == p.stride(), name


def test_exit_distributed_rank_is_a_no_op_without_a_group():
    from backbones.engine import exit_distributed_rank, finish_distributed
    finish_distributed()  # no group: nothing to tear down
    exit_distributed_rank()  # so this must return (an os._exit here would end pytest)


def test_cfg_options_typo_is_refused(tmp_path, toy_config):
    proc = run_tool(['tools/train.py', toy_config, '--work-dir', str(tmp_path),
                     '--cfg-options', 'train_cfg.max_epoch=3'], check=False)
    assert proc.returncode != 0
    assert "train_cfg has no key 'max_epoch'" in proc.stderr
    assert 'Did you mean: max_epochs' in proc.stderr
    assert not glob.glob(str(tmp_path / '*.pth'))


def test_tools_run_from_any_directory(tmp_path):
    # The tools put the clone on sys.path themselves: no install needed to run them.
    proc = run_tool(['tools/train.py', '--help'])
    assert '--resume' in proc.stdout and '--launcher' in proc.stdout
    assert osp.isfile(osp.join(REPO, 'tools', 'dist_test.sh'))

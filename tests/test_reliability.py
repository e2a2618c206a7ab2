"""Real faults in real training processes: SIGKILL + resume, a kill during a checkpoint save,
truncated checkpoints, NaN loss, a failing checkpoint write, a rank dying in a 2-process gloo
run, malicious pickles.

Every run is ``tools/train.py`` (or ``tools/dist_train.sh``) in a subprocess on the toy config
(tests/data/configs/toy_classifier.py), with a few test-only modules written to ``tmp_path``.
"""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import REPO, TEST_DATA, MakesAFile, run_tool, tool_env
from mmengine.config import Config
from mmengine.hooks import Hook

import backbones  # noqa: F401  (allow-list for reading the checkpoints here)
from backbones.checkpoint.io import TEMP_NAME
from backbones.engine import CorruptCheckpointError, UnsafeCheckpointError, find_resume_checkpoint

TOY = osp.join(TEST_DATA, 'configs', 'toy_classifier.py')

# Test-only parts: a toy model with dropout (so the random state matters), a loss that turns
# NaN at a chosen call, and hooks that slow a run down or inject a fault at a chosen point.
MODULES = '''
import os, resource, signal, time
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, MODELS
from toy_modules import ToyClassifier


@MODELS.register_module()
class DropoutToy(ToyClassifier):
    def __init__(self, width=8, nan_at=0):
        super().__init__(width)
        self.drop = torch.nn.Dropout(0.5)
        self.nan_at, self.calls = nan_at, 0

    def forward(self, inputs, label=None, mode='tensor', **meta):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        logits = self.fc(self.drop(self.conv(x).relu().mean((2, 3))))
        if mode == 'loss':
            self.calls += 1
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(label))
            return dict(loss=loss * float('nan') if self.calls == self.nan_at else loss)
        if mode == 'predict':
            return [dict(pred=p, label=t) for p, t in zip(logits.argmax(1), label)]
        return logits


@HOOKS.register_module()
class SlowHook(Hook):
    def __init__(self, seconds):
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        time.sleep(self.seconds)


class KillWhenPickled:
    """SIGKILLs this process when pickled: from inside torch.save, mid-way through a save."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """Kills the run while it writes the checkpoint of iteration `at_iter`."""

    def __init__(self, at_iter):
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta']['iter'] == self.at_iter:
            checkpoint['kill'] = KillWhenPickled()


@HOOKS.register_module()
class FaultHook(Hook):
    """At the end of training iteration `at_iter` (1-based) on rank `rank`: `kill` SIGKILLs
    this process, `fsize` caps file sizes at 1 KiB (a real EFBIG for the next big write)."""
    priority = 'LOW'  # after the logger, before CheckpointHook (VERY_LOW)

    def __init__(self, at_iter, fault, rank=0, marker=None):
        self.at_iter, self.fault, self.rank, self.marker = at_iter, fault, rank, marker

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 != self.at_iter or runner.rank != self.rank:
            return
        if self.marker:
            with open(self.marker, 'w') as f:
                f.write(str(time.time()))
        if self.fault == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.fault == 'fsize':
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
'''


def _write_config(folder, name, body):
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'rel_modules.py'), 'w') as f:
        f.write(MODULES)
    path = osp.join(folder, name)
    with open(path, 'w') as f:
        f.write(f"_base_ = [{TOY!r}]\n"
                "custom_imports = dict(imports=['backbones', 'toy_modules', 'rel_modules'], "
                "allow_failed_imports=False)\n" + textwrap.dedent(body))
    return path


def _env(folder):
    return dict(PYTHONPATH=os.pathsep.join([folder, REPO, TEST_DATA]), OMP_NUM_THREADS='1')


# 3 epochs x 4 iterations, a checkpoint every 3 iterations (3 and 6 and 9 are mid-epoch),
# validation after every epoch (it draws from the RNGs too), dropout in the model.
RESUME_CFG = '''
model = dict(type='DropoutToy', width=8)
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3,
                                     max_keep_ckpts=-1))
custom_hooks = [dict(type='SlowHook', seconds={sleep})]
'''


def _scalars(work_dir):
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    train = {r['iter']: r['loss'] for r in rows if 'loss' in r}
    val = [r['accuracy'] for r in rows if 'accuracy' in r]
    return train, val


def _assert_same_final_state(ckpt_a, ckpt_b):
    a = torch.load(ckpt_a, weights_only=True)
    b = torch.load(ckpt_b, weights_only=True)
    assert a['meta']['iter'] == b['meta']['iter'] == 12
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    for sa, sb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), key


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('uninterrupted'))
    cfg = _write_config(folder, 'resume_cfg.py', RESUME_CFG.format(sleep=0.0))
    work = osp.join(folder, 'work')
    run_tool(['tools/train.py', cfg, '--work-dir', work], **_env(folder))
    return work


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_exact(tmp_path, uninterrupted):
    folder = str(tmp_path)
    # Slow iterations (0.4 s) so the kill lands mid-epoch, after a mid-epoch checkpoint.
    cfg = _write_config(folder, 'resume_cfg.py', RESUME_CFG.format(sleep=0.4))
    work = osp.join(folder, 'work')
    proc = subprocess.Popen([sys.executable, 'tools/train.py', cfg, '--work-dir', work],
                            cwd=REPO, env=tool_env(**_env(folder)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            logs = glob.glob(osp.join(work, '*', '*.log'))
            if logs and 'Epoch(train) [2][3/4]' in open(logs[0]).read():
                break
            assert proc.poll() is None, 'the run ended before it could be killed'
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # a real, unannounced kill of the training process
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = sorted(osp.basename(p) for p in glob.glob(osp.join(work, 'iter_*.pth')))
    assert 'iter_6.pth' in saved and 'iter_12.pth' not in saved, saved
    killed_train, _ = _scalars(work)
    assert max(killed_train) < 12

    proc = run_tool(['tools/train.py', cfg, '--work-dir', work, '--resume',
                     '--cfg-options', 'custom_hooks.0.seconds=0'], **_env(folder))
    log = proc.stdout + proc.stderr
    latest = max(int(s[5:-4]) for s in saved)
    assert f'resumed epoch: {latest // 4}, iter: {latest}' in log, log[-3000:]
    if latest % 4:
        assert f'at batch {latest % 4 + 1} of 4' in log  # mid-epoch: the sampler skipped ahead

    _assert_same_final_state(osp.join(uninterrupted, 'iter_12.pth'), osp.join(work, 'iter_12.pth'))
    ref_train, ref_val = _scalars(uninterrupted)
    got_train, got_val = _scalars(work)
    # Every iteration logged after the resume has exactly the uninterrupted run's loss.
    resumed = {i: v for i, v in got_train.items() if i > latest}
    assert sorted(resumed) == list(range(latest + 1, 13))
    assert resumed == {i: ref_train[i] for i in resumed}
    assert got_val[-1] == ref_val[-1]


@pytest.mark.slow
def test_temporary_file_of_a_save_killed_midway_is_removed_on_resume(tmp_path):
    folder = str(tmp_path)
    cfg = _write_config(folder, 'save_kill_cfg.py', '''
        model = dict(type='DropoutToy', width=8)
        train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
        default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3,
                                             max_keep_ckpts=-1))
        custom_hooks = [dict(type='KillDuringSaveHook', at_iter=6)]
    ''')
    work = osp.join(folder, 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work], check=False, **_env(folder))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    # The kill left the writer's hidden temporary file; iter_6.pth itself was never written.
    temps = [osp.basename(p) for p in glob.glob(osp.join(work, '.iter_6.pth.*.tmp'))]
    assert len(temps) == 1 and TEMP_NAME.match(temps[0]), os.listdir(work)
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == ['iter_3.pth']
    with open(osp.join(work, '.notes.tmp'), 'w') as f:  # someone else's file: stays
        f.write('not ours')

    proc = run_tool(['tools/train.py', cfg, '--work-dir', work, '--resume',
                     '--cfg-options', 'custom_hooks.0.at_iter=0'], **_env(folder))
    said = (f'Removed 1 stale temporary checkpoint file(s) (0.0 MiB) left in {work} by '
            f'interrupted saves: {temps[0]}')
    assert said in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    newest_log = sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]
    assert said in open(newest_log).read()  # in the run's log file too
    assert 'resumed epoch: 0, iter: 3' in proc.stdout + proc.stderr
    assert not glob.glob(osp.join(work, '*.tmp*')) and not glob.glob(osp.join(work, '.iter*'))
    assert osp.isfile(osp.join(work, '.notes.tmp'))
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == \
        ['iter_3.pth', 'iter_6.pth', 'iter_8.pth']


@pytest.mark.slow
def test_truncated_latest_checkpoint_is_reported_and_previous_used(tmp_path, uninterrupted):
    work = str(tmp_path / 'work')
    os.makedirs(work)
    folder = osp.dirname(uninterrupted)
    for name in ('iter_6.pth', 'iter_9.pth'):
        with open(osp.join(uninterrupted, name), 'rb') as f:
            data = f.read()
        with open(osp.join(work, name), 'wb') as f:
            # A real truncation of the newest one (a half-finished copy, a dying disk).
            f.write(data[:len(data) // 2] if name == 'iter_9.pth' else data)
        time.sleep(0.01)  # distinct modification times
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'iter_9.pth'))

    with pytest.raises(CorruptCheckpointError, match='iter_9.pth'):
        backbones.engine.check_checkpoint_intact(osp.join(work, 'iter_9.pth'))
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_6.pth')

    proc = run_tool(['tools/train.py', osp.join(folder, 'resume_cfg.py'), '--work-dir', work,
                     '--resume'], **_env(folder))
    log = proc.stdout + proc.stderr
    assert f"Not resuming from {work}/iter_9.pth: checkpoint file '{work}/iter_9.pth' is " \
           'truncated or damaged' in log, log[-3000:]
    assert 'resumed epoch: 1, iter: 6' in log
    _assert_same_final_state(osp.join(uninterrupted, 'iter_12.pth'), osp.join(work, 'iter_12.pth'))


def test_no_intact_checkpoint_is_an_error(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'PK\x03\x04 not really a checkpoint')
    with pytest.raises(CorruptCheckpointError, match='no intact checkpoint to resume from'):
        find_resume_checkpoint(str(tmp_path))
    assert find_resume_checkpoint(str(tmp_path / 'empty')) is None


@pytest.mark.slow
def test_nan_loss_stops_at_that_iteration_and_keeps_last_checkpoint(tmp_path):
    folder = str(tmp_path)
    cfg = _write_config(folder, 'nan_cfg.py', '''
        model = dict(type='DropoutToy', width=8, nan_at=6)
        train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
    ''')
    work = osp.join(folder, 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work], check=False, **_env(folder))
    assert proc.returncode != 0
    assert 'NonFiniteLossError: loss is nan at iteration 6 (epoch 2); last finite loss ' \
        in proc.stderr, proc.stderr[-3000:]
    assert ' at iteration 5. Training stopped before this step was applied; the last ' \
           f'checkpoint {work}/epoch_1.pth is kept.' in proc.stderr
    assert sorted(os.listdir(work)).count('epoch_2.pth') == 0
    kept = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert all(torch.isfinite(v).all() for v in kept['state_dict'].values())


@pytest.mark.slow
def test_failed_checkpoint_write_stops_run_and_keeps_previous(tmp_path):
    folder = str(tmp_path)
    # After iteration 8 (end of epoch 2) the process may only write files up to 1 KiB: the
    # epoch-2 checkpoint write fails with a real EFBIG from the kernel.
    cfg = _write_config(folder, 'disk_cfg.py', '''
        train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
        custom_hooks = [dict(type='FaultHook', at_iter=8, fault='fsize')]
    ''')
    work = osp.join(folder, 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work], check=False, **_env(folder))
    assert proc.returncode != 0
    assert f"OSError: [Errno 27] could not save checkpoint '{work}/epoch_2.pth': File too " \
           'large; the previous checkpoint files are untouched' in proc.stderr, \
           proc.stderr[-3000:]
    assert sorted(p for p in os.listdir(work) if 'pth' in p) == ['epoch_1.pth']  # no temp file
    assert torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)['meta']['epoch'] == 1
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('epoch_1.pth')


@pytest.mark.slow
def test_killed_rank_ends_the_whole_gloo_job(tmp_path):
    folder = str(tmp_path)
    marker = osp.join(folder, 'killed_at')
    cfg = _write_config(folder, 'dist_cfg.py', f'''
        train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=50)
        custom_hooks = [dict(type='FaultHook', at_iter=3, fault='kill', rank=1,
                             marker={marker!r})]
    ''')
    start = time.time()
    proc = run_tool(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir',
                     osp.join(folder, 'work')], check=False, timeout=400,
                    PORT=str(29600 + os.getpid() % 1000), **_env(folder))
    end = time.time()
    assert proc.returncode != 0
    assert osp.isfile(marker), proc.stderr[-3000:]
    with open(marker) as f:
        killed_at = float(f.read())
    # Rank 1 died by SIGKILL inside iteration 3; rank 0 must not wait on its collectives.
    assert 'Signal 9 (SIGKILL)' in proc.stderr or 'exitcode  : -9' in proc.stderr, \
        proc.stderr[-3000:]
    print(f'job ended {end - killed_at:.1f} s after rank 1 was killed')
    assert end - killed_at < 60, f'the job took {end - killed_at:.0f} s to stop'
    assert start < killed_at


def test_nan_loss_skip_opt_in_drops_only_that_step(tmp_path):
    """The opt-in: a NaN step is dropped (weights unchanged by it), training goes on."""
    sys.path.insert(0, TEST_DATA)
    sys.path.insert(0, str(tmp_path))
    _write_config(str(tmp_path), 'unused.py', '')
    import rel_modules  # noqa: F401
    from mmengine.runner import Runner
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict(dict(
        model=dict(type='DropoutToy', width=8, nan_at=3), work_dir=str(tmp_path / 'work'),
        train_cfg=dict(max_epochs=1), val_dataloader=None, val_cfg=None, val_evaluator=None,
        default_hooks=dict(checkpoint=None), experiment_name=f'nan_skip_{os.getpid()}',
        custom_hooks=[dict(type='NonFiniteLossHook', on_nonfinite='skip')]))
    cfg.pop('custom_imports')
    runner = Runner.from_cfg(cfg)
    seen = []

    class Snapshot(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            seen.append([p.detach().clone() for p in runner.model.parameters()])

    runner.register_hook(Snapshot())
    runner.train()
    assert len(seen) == 4
    assert all(torch.equal(a, b) for a, b in zip(seen[1], seen[2]))  # step 3 dropped
    assert not all(torch.equal(a, b) for a, b in zip(seen[2], seen[3]))  # step 4 applied
    log = open(osp.join(runner.log_dir, osp.basename(runner.log_dir) + '.log')).read()
    assert 'Non-finite loss (nan) at iteration 3 (epoch 1): skipping this step (1/100 skips ' \
           'allowed); last finite loss ' in log


def test_iter_based_resume_with_infinite_sampler_is_exact(tmp_path):
    """The dense configs' loop: IterBasedTrainLoop + InfiniteSampler, resumed at iteration 3
    of 10 (no data is loaded for the skipped batches), ends with the same weights."""
    sys.path.insert(0, TEST_DATA)
    sys.path.insert(0, str(tmp_path))
    _write_config(str(tmp_path), 'unused.py', '')
    import rel_modules  # noqa: F401
    from mmengine.runner import Runner

    from backbones.engine import use_resumable_loops

    def run(name, **extra):
        cfg = Config.fromfile(TOY)
        cfg.pop('custom_imports')
        cfg.merge_from_dict(dict(
            model=dict(type='DropoutToy', width=8), work_dir=str(tmp_path / name),
            train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=10,
                           val_interval=4),
            train_dataloader=dict(sampler=dict(type='InfiniteSampler', shuffle=True)),
            param_scheduler=[dict(type='CosineAnnealingLR', T_max=10, by_epoch=False)],
            default_hooks=dict(checkpoint=dict(by_epoch=False, interval=3, max_keep_ckpts=-1)),
            experiment_name=f'{name}_{os.getpid()}', **extra))
        use_resumable_loops(cfg)
        runner = Runner.from_cfg(cfg)
        runner.train()
        return torch.load(osp.join(str(tmp_path / name), 'iter_10.pth'), weights_only=True)

    full = run('full')
    resumed = run('resumed', resume=True, load_from=str(tmp_path / 'full' / 'iter_3.pth'))
    for key, value in full['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    log = glob.glob(str(tmp_path / 'resumed' / '*' / '*.log'))[0]
    assert 'the sampler skips 3 batches without loading them' in open(log).read()


def test_checkpoint_of_another_model_is_refused_for_load_from_and_resume(tmp_path):
    sys.path.insert(0, TEST_DATA)
    import toy_modules  # noqa: F401
    from mmengine.runner import Runner

    from backbones.engine import add_reliability_hooks
    other = str(tmp_path / 'other_model.pth')
    torch.save({'state_dict': toy_modules.ToyClassifier(width=16).state_dict()}, other)
    for i, resume in enumerate((False, True)):
        cfg = Config.fromfile(TOY)
        cfg.pop('custom_imports')
        cfg.merge_from_dict(dict(work_dir=str(tmp_path / f'w{i}'), load_from=other,
                                 resume=resume, experiment_name=f'other_{i}_{os.getpid()}'))
        add_reliability_hooks(cfg)
        runner = Runner.from_cfg(cfg)
        with pytest.raises(ValueError) as info:
            runner.train()
        msg = str(info.value)
        assert f"checkpoint '{other}' was made for another model: 1 of the 4 tensors of " \
               'ToyClassifier match it' in msg, msg
        assert 'conv.weight: (16, 3, 3, 3) in the file, (8, 3, 3, 3) in the model' in msg
        assert not glob.glob(str(tmp_path / f'w{i}' / '*.pth'))


def test_malicious_init_cfg_checkpoint_is_refused(tmp_path):
    from mmdet.registry import MODELS
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil_backbone.pth'
    torch.save({'state_dict': {}, 'meta': MakesAFile(str(marker))}, evil)
    model = MODELS.build(dict(type='ConvNeXt', arch='atto',
                              init_cfg=dict(type='Pretrained', checkpoint=str(evil))))
    with pytest.raises(UnsafeCheckpointError, match='evil_backbone.pth'):
        model.init_weights()
    assert not marker.exists()

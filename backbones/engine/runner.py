"""A Runner whose ``auto_scale_lr`` counts gradient accumulation.

MMEngine scales the lr by ``world_size * batch_size / base_batch_size``; with
``optim_wrapper.accumulative_counts = k`` every optimizer step sees ``k`` times that many
images, so the recipe's "lr 4e-3 at batch 4096" would come out ``k`` times too small.
"""
from mmengine.logging import print_log
from mmengine.runner import Runner

from backbones.registry import register_runner


def effective_batch_size(cfg, world_size: int) -> int:
    """Images per optimizer step: processes x per-process batch x accumulation steps.

    Args:
        cfg: The full config (``train_dataloader.batch_size``, optional
            ``optim_wrapper.accumulative_counts``).
        world_size: Number of processes.

    Returns:
        The effective batch size.
    """
    batch = cfg['train_dataloader']['batch_size']
    accumulation = cfg.get('optim_wrapper', {}).get('accumulative_counts', 1)
    if accumulation < 1:
        raise ValueError(f'optim_wrapper.accumulative_counts must be >= 1, got {accumulation}')
    return world_size * batch * accumulation


@register_runner()
class EffectiveBatchRunner(Runner):
    """MMEngine's :class:`~mmengine.runner.Runner`, scaling the lr by the effective batch.

    With ``auto_scale_lr = dict(enable=True, base_batch_size=B)`` every parameter group's lr is
    multiplied by :func:`effective_batch_size` / ``B`` before the schedulers are built.
    """

    def scale_lr(self, optim_wrapper, auto_scale_lr=None) -> None:
        if auto_scale_lr is None or not auto_scale_lr.get('enable', False):
            return
        if 'base_batch_size' not in auto_scale_lr:
            raise KeyError('auto_scale_lr needs base_batch_size (the batch the config\'s lr is '
                           'for)')
        batch = effective_batch_size(self.cfg, self.world_size)
        ratio = batch / auto_scale_lr['base_batch_size']
        wrappers = (optim_wrapper.values() if hasattr(optim_wrapper, 'optim_wrappers') else
                    [optim_wrapper])
        for wrapper in wrappers:
            for group in wrapper.param_groups:
                group['lr'] = group['lr'] * ratio
        print_log(f'lr scaled by {ratio:.6g}: effective batch {batch} (processes x batch x '
                  f'accumulation) vs the config\'s base {auto_scale_lr["base_batch_size"]}',
                  logger='current')

"""Model EMA with timm's ModelEmaV3, evaluated beside the raw weights at every validation."""
import logging
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from timm.utils import ModelEmaV3

from backbones.registry import register_hook

#: Checkpoint key of the EMA weights (timm's name; backbones.convert_checkpoint knows it).
EMA_KEY = 'state_dict_ema'


@register_hook()
class ModelEMAHook(Hook):
    """Keep an exponential moving average of the model (timm's ``ModelEmaV3``), save it in
    every checkpoint under ``state_dict_ema`` and, after each validation of the raw weights,
    validate the EMA weights too: their metrics are logged as ``ema/<metric>`` and added to the
    metrics other hooks see (``save_best='ema/accuracy/top1'`` works).

    Args:
        decay: EMA decay per optimizer step (0.9999 in the ImageNet recipe).
        warmup: timm's decay warm-up (``1 - (1 + step) ** -2/3``, capped at ``decay``), for
            runs too short for a fixed 0.9999.
        evaluate: Validate the EMA weights after the raw ones.
    """
    priority = 'NORMAL'  # after RuntimeInfoHook, before LoggerHook and CheckpointHook

    def __init__(self, decay: float = 0.9999, warmup: bool = False, evaluate: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f'ModelEMAHook: decay must be in [0, 1), got {decay}')
        self.decay = decay
        self.warmup = warmup
        self.evaluate = evaluate
        self.ema: Optional[ModelEmaV3] = None
        self._loaded: Optional[Dict[str, torch.Tensor]] = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _ensure_ema(self, runner) -> None:
        # Built lazily: before_run comes before weight init and resume.
        if self.ema is not None:
            return
        self.ema = ModelEmaV3(self._model(runner), decay=self.decay, use_warmup=self.warmup)
        if self._loaded is not None:
            self.ema.module.load_state_dict(self._loaded)
            self._loaded = None

    def before_train(self, runner) -> None:
        self._ensure_ema(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # With gradient accumulation, follow the optimizer steps only.
        wrapper = runner.optim_wrapper
        if hasattr(wrapper, 'should_update') and not wrapper.should_update():
            return
        self._ensure_ema(runner)
        self.ema.update(self._model(runner), step=runner.iter)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.ema is not None:
            checkpoint[EMA_KEY] = {
                k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()
            }

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if EMA_KEY in checkpoint:
            if self.ema is not None:
                self.ema.module.load_state_dict(checkpoint[EMA_KEY])
            else:
                self._loaded = checkpoint[EMA_KEY]
        else:
            print_log(f'ModelEMAHook: the checkpoint has no {EMA_KEY!r}; the EMA starts from '
                      'the loaded weights', logger='current', level=logging.WARNING)

    @torch.no_grad()
    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if not self.evaluate or self.ema is None or metrics is None:
            return
        loop = runner.val_loop
        model = self.ema.module
        model.eval()
        for data_batch in loop.dataloader:
            outputs = model.val_step(data_batch)
            loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
        ema_metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        for key, value in ema_metrics.items():
            metrics[f'ema/{key}'] = value
            runner.message_hub.update_scalar(f'val/ema/{key}', value)

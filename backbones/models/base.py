"""The backbone contract: what every backbone of this package guarantees to the code around it
(the classifier, MMDetection's necks, MMSegmentation's heads, the layer-decay constructor).

Adding a backbone means one file with a subclass of :class:`Backbone` (its presets beside it in
:mod:`backbones.models.presets`) and an entry in the contract test's list of registered
backbones (``tests/test_backbone_contract.py``), which checks every point below.
"""
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from .convert import convert_and_detect
from .layers import freeze_modules, set_fast_inference, standard_layout
from .loading import init_weights_from_cfg, trunc_normal_init

DECAY_TYPES = ('layer_wise', 'stage_wise')


def resolve_arch(arch: Union[str, dict], presets: dict, required: Sequence[str]) -> dict:
    """Return the settings of a preset name, or check a user-given dict.

    Args:
        arch: A preset name or a dict of settings.
        presets: The valid preset names and their settings.
        required: Keys a user-given dict must have.

    Returns:
        A new dict of settings.

    Raises:
        ValueError: ``arch`` is an unknown name, or a dict that misses a required key.
    """
    if isinstance(arch, str):
        if arch not in presets:
            raise ValueError(f'unknown arch {arch!r}; valid names: {", ".join(presets)} '
                             f'(or a dict with keys {", ".join(required)})')
        return dict(presets[arch])
    if isinstance(arch, dict):
        missing = [k for k in required if k not in arch]
        if missing:
            raise ValueError(f'arch dict {arch} lacks the key(s) {", ".join(missing)}; '
                             f'it needs {", ".join(required)}')
        return dict(arch)
    raise ValueError(f'arch must be a preset name ({", ".join(presets)}) or a dict with keys '
                     f'{", ".join(required)}, got {type(arch).__name__}')


def normalize_indices(indices: Union[int, Sequence[int]], length: int, what: str) -> Tuple[int]:
    """Turn an int or a sequence of (possibly negative) indices into a sorted tuple.

    Args:
        indices: One index or a sequence of indices; negative ones count from the end.
        length: Number of valid positions.
        what: Name used in the error message.

    Returns:
        The sorted, de-duplicated non-negative indices.

    Raises:
        ValueError: An index is out of range, or there is none.
    """
    if isinstance(indices, int):
        indices = (indices, )
    result = set()
    for index in indices:
        if not -length <= index < length:
            raise ValueError(f'{what} {index} is out of range for {length} positions')
        result.add(index % length)
    if not result:
        raise ValueError(f'{what}: at least one index is needed')
    return tuple(sorted(result))


def drop_path_rates(depths: Sequence[int], max_rate: float) -> List[List[float]]:
    """Stochastic-depth rates rising linearly from 0 to ``max_rate`` over all blocks (the
    official rule), split by stage.

    Args:
        depths: Blocks per stage.
        max_rate: Rate of the last block.

    Returns:
        One list of rates per stage.
    """
    # An explicit CPU device keeps this working under a `torch.device('meta')` context.
    rates = torch.linspace(0, max_rate, sum(depths), device='cpu').tolist()
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[s:s + d] for s, d in zip(starts, depths)]


class Backbone(BaseModule):
    """Base class of the toolkit's backbones, and the contract they keep.

    * ``arch``: a preset name of the class's ``ARCHS`` or a dict with its ``ARCH_KEYS``
      (:func:`resolve_arch`; an unknown name is an error listing the valid ones).
    * A backbone is a stem and ``num_stages`` stages; ``dims[i]`` is the channel count of
      stage ``i``'s output and ``num_features == dims[-1]`` the width a classifier pools.
    * ``out_indices``: the stages :meth:`forward` returns, negative ones counting from the end
      (:func:`normalize_indices`).
    * ``drop_path_rate``: stochastic depth rising linearly from 0 over all blocks
      (:func:`drop_path_rates`).
    * ``frozen_stages = k``: the stem and stages ``0..k`` (with their output norms) have
      ``requires_grad=False`` and stay in eval mode through :meth:`train`; -1 freezes nothing.
    * :meth:`init_weights`: the class's default init, then ``init_cfg``; a ``Pretrained`` entry
      loads a checkpoint of any format :meth:`convert_checkpoint` reads, loudly
      (:func:`backbones.models.loading.load_pretrained`).
    * :meth:`forward_features`: the raw output of every stage (a list of ``num_stages`` maps).
    * :meth:`forward`: the maps of the ``out_indices`` stages, each through its output norm
      ``norm{i}`` when the model has one, as a tuple.
    * Every map either method returns is contiguous NCHW, in training and eval, whatever the
      input's layout; ``channels_last_inside`` says whether the model computes channels-last inside.
    * :meth:`get_layer_id`: the parameter's layer id for layer-wise lr decay.
    * ``final_norm``: whether a classifier on this backbone puts a LayerNorm after pooling.

    Subclasses build their modules, set ``dims``, and implement :meth:`stage_outputs`,
    :meth:`stage_modules` and :meth:`get_layer_id`; they call :meth:`_freeze_stages` at the end
    of ``__init__``.

    Args:
        out_indices: See above.
        frozen_stages: See above.
        num_stages: Number of stages (to check the two above).
        init_cfg: MMEngine init config.
    """

    ARCHS: Dict[str, dict] = {}
    ARCH_KEYS: Tuple[str, ...] = ()
    #: Compute channels-last inside (free permutes around the blocks' LayerNorm and linears).
    channels_last_inside: bool = True
    #: A classifier on this backbone puts a LayerNorm after global pooling.
    final_norm: bool = True
    #: Applied to every submodule before ``init_cfg``.
    default_init: Callable[[nn.Module], None] = staticmethod(trunc_normal_init)

    def __init__(self,
                 out_indices: Union[int, Sequence[int]],
                 frozen_stages: int,
                 num_stages: int,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_stages = num_stages
        self.out_indices = normalize_indices(out_indices, num_stages, 'out_indices entry')
        if not -1 <= frozen_stages < num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages - 1}], got '
                             f'{frozen_stages}')
        self.frozen_stages = frozen_stages
        self.dims: Tuple[int, ...] = ()

    @classmethod
    def resolve_arch(cls, arch: Union[str, dict]) -> dict:
        """The settings of ``arch`` (see :func:`resolve_arch`)."""
        return resolve_arch(arch, cls.ARCHS, cls.ARCH_KEYS)

    @property
    def num_features(self) -> int:
        """Channels of the last stage: what a classifier pools."""
        return self.dims[-1]

    @property
    def out_channels(self) -> List[int]:
        """Channels of the maps :meth:`forward` returns, one per entry of ``out_indices``."""
        return [self.dims[i] for i in self.out_indices]

    def output_norm(self, stage: int) -> Optional[nn.Module]:
        """The output norm ``norm{stage}``, or None when the model has none for it."""
        return getattr(self, f'norm{stage}', None)

    # --- what subclasses implement ---------------------------------------------------------

    def stage_outputs(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Yield the raw output of stage 0, 1, ... in turn (lazily: the caller may stop).

        Args:
            x: Images, already in the layout the model computes in.
        """
        raise NotImplementedError

    def stage_modules(self, stage: int) -> List[nn.Module]:
        """The modules that belong to ``stage`` (stage 0 includes the stem), for freezing."""
        raise NotImplementedError

    def get_layer_id(self,
                     param_name: str,
                     num_layers: int,
                     decay_type: str = 'layer_wise') -> int:
        """Layer id of a parameter for layer-wise lr decay.

        Args:
            param_name: Parameter name relative to this backbone.
            num_layers: ``N`` of the decay schedule; ids run from 0 to ``N + 1``.
            decay_type: ``'layer_wise'`` or ``'stage_wise'``.

        Returns:
            An id in ``[0, num_layers + 1]``.
        """
        raise NotImplementedError

    def convert_checkpoint(self, checkpoint, **kwargs) -> Tuple[Dict[str, torch.Tensor], str]:
        """This backbone's state dict, and the format name, of a loaded checkpoint.

        Args:
            checkpoint: A loaded checkpoint or state dict.
            **kwargs: ``prefix``, ``use_ema``, ``keep_final_norm`` (see
                :func:`backbones.models.convert.convert_and_detect`).
        """
        return convert_and_detect(checkpoint, **kwargs)

    # --- the contract, implemented once ----------------------------------------------------

    def _prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last_inside:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Run every stage and return their raw outputs (before any output norm).

        Args:
            x: Images, ``(N, C_in, H, W)``.

        Returns:
            ``num_stages`` contiguous ``(N, dims[i], H_i, W_i)`` maps.
        """
        return list(standard_layout(self.stage_outputs(self._prepare_input(x))))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the (normalised) outputs of the stages in ``out_indices``.

        Args:
            x: Images, ``(N, C_in, H, W)``.

        Returns:
            One contiguous ``(N, dims[i], H_i, W_i)`` map per entry of ``out_indices``, in
            stage order.
        """
        outs = []
        for i, feature in enumerate(self.stage_outputs(self._prepare_input(x))):
            if i in self.out_indices:
                norm = self.output_norm(i)
                outs.append(norm(feature) if norm is not None else feature)
            if i == self.out_indices[-1]:
                break
        return standard_layout(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            norm = self.output_norm(i)
            freeze_modules(self.stage_modules(i) + ([norm] if norm is not None else []))

    def train(self, mode: bool = True) -> 'Backbone':
        """Set train/eval mode, keeping frozen stages in eval mode.

        Args:
            mode: Training mode (True) or evaluation mode (False).

        Returns:
            This module.
        """
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """The class's default init, then ``init_cfg`` (a ``Pretrained`` entry converted by
        :meth:`convert_checkpoint` and checked)."""
        init_weights_from_cfg(self, self.default_init)

    def set_fast_inference(self, enabled: bool = True) -> 'Backbone':
        """Switch the eval-mode fast path of every ConvNeXt block inside on or off.

        Args:
            enabled: True for the fast path, False for the plain path.

        Returns:
            This module.
        """
        return set_fast_inference(self, enabled)

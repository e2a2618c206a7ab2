"""Architecture presets of ConvNeXt and isotropic ConvNeXt (the paper's figures for them are in
``backbones/data/paper.json``, read by :mod:`backbones.analysis`).

Kept apart from the model code so that the model files hold only model logic (see STYLE.md).
"""
from typing import Dict, Tuple

#: Dense (four-stage) ConvNeXt presets: blocks per stage and channels per stage.
#: atto/femto/pico/nano are the ConvNeXt V2 sizes (timm originals); huge is V2 only.
CONVNEXT_ARCHS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    'atto': dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)),
    'femto': dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384)),
    'pico': dict(depths=(2, 2, 6, 2), dims=(64, 128, 256, 512)),
    'nano': dict(depths=(2, 2, 8, 2), dims=(80, 160, 320, 640)),
    'tiny': dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)),
    'small': dict(depths=(3, 3, 27, 3), dims=(96, 192, 384, 768)),
    'base': dict(depths=(3, 3, 27, 3), dims=(128, 256, 512, 1024)),
    'large': dict(depths=(3, 3, 27, 3), dims=(192, 384, 768, 1536)),
    'xlarge': dict(depths=(3, 3, 27, 3), dims=(256, 512, 1024, 2048)),
    'huge': dict(depths=(3, 3, 27, 3), dims=(352, 704, 1408, 2816)),
}

#: Isotropic ConvNeXt presets (16x16 patchify stem, one resolution throughout). The official
#: models were trained without layer scale for S and B and with layer scale 1e-6 for L
#: (official TRAINING.md: ``--layer_scale_init_value 0`` for S/B, the 1e-6 default for L).
ISOTROPIC_ARCHS: Dict[str, dict] = {
    'small': dict(depth=18, dim=384, layer_scale_init_value=None),
    'base': dict(depth=18, dim=768, layer_scale_init_value=None),
    'large': dict(depth=36, dim=1024, layer_scale_init_value=1e-6),
}

"""The stages of ``make demo``: one ordered table, the single source of what the demo trains.

The demo runs these (:mod:`.runner`), its matrix lists them in this order, and the tests and the
README's demo table are checked against it. Adding a row to the demo means adding a
:class:`Stage` here (and its config).
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

DET_DATA, SEG_DATA, CLS_DATA = 'det', 'seg', 'cls'


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training run of the demo.

    Args:
        key: Work-dir name under the demo's work dir.
        label: Row name in the matrix (backbone and task).
        config: The config it trains.
        data: Which shapes layout it reads: ``'cls'``, ``'det'`` (COCO) or ``'seg'`` (ADE).
        length: Training length: epochs for ``cls``, iterations otherwise.
        reduced: The length in ``--reduced`` runs (the test suite's).
        init_from: Key of the stage whose final checkpoint initialises the backbone
            (a pre-training stage), or None to train from scratch.
        minutes: Rough single-thread duration on the 2-core machine, for scheduling the
            longest ready stage first.
    """

    key: str
    label: str
    config: str
    data: str
    length: int
    reduced: int = 2
    init_from: Optional[str] = None
    minutes: float = 1.0


_DET, _CASCADE, _SEG = ('configs/detection/mask_rcnn_{}_shapes.py',
                        'configs/detection/cascade_{}_shapes.py',
                        'configs/segmentation/upernet_{}_shapes.py')
_PRE = 'pretrain_convnext_atto'

#: The demo, in the matrix's row order: ConvNeXt-atto pre-trained on crops of the shapes scenes
#: and fine-tuned; one ConvNeXt row from scratch (detection) to show the gain; a classic ResNet
#: and a Swin of similar cost under the same recipe, from scratch. All on the easy scenes
#: (``make_shapes.py --easy``; README). UperNet needs its 400 iterations (200 gave 40 mIoU,
#: 400 gave 51), so the detectors train 250 instead of 300 to keep the demo under 15 minutes.
STAGES: Tuple[Stage, ...] = (
    Stage(_PRE, 'Classifier, ConvNeXt-atto (pre-training on crops of the scenes)',
          'configs/classification/convnext_atto_shapes.py', CLS_DATA, length=8, reduced=1,
          minutes=2.8),
    Stage('mask_rcnn_convnext_atto_pretrained', 'Mask R-CNN, ConvNeXt-atto, pre-trained',
          _DET.format('convnext_atto'), DET_DATA, length=250, init_from=_PRE, minutes=3.0),
    Stage('mask_rcnn_convnext_atto_scratch', 'Mask R-CNN, ConvNeXt-atto, from scratch',
          _DET.format('convnext_atto'), DET_DATA, length=250, minutes=2.9),
    Stage('mask_rcnn_resnet_scratch', 'Mask R-CNN, ResNet-18 (half width), from scratch',
          _DET.format('resnet'), DET_DATA, length=250, minutes=2.7),
    Stage('mask_rcnn_swin_scratch', 'Mask R-CNN, Swin (embed 32), from scratch',
          _DET.format('swin'), DET_DATA, length=250, minutes=3.4),
    Stage('cascade_convnext_atto_pretrained', 'Cascade Mask R-CNN, ConvNeXt-atto, pre-trained',
          _CASCADE.format('convnext_atto'), DET_DATA, length=250, init_from=_PRE,
          minutes=4.1),
    Stage('upernet_convnext_atto_pretrained', 'UperNet, ConvNeXt-atto, pre-trained',
          _SEG.format('convnext_atto'), SEG_DATA, length=400, init_from=_PRE, minutes=2.5),
    Stage('upernet_resnet_scratch', 'UperNet, ResNet-18 (half width), from scratch',
          _SEG.format('resnet'), SEG_DATA, length=400, minutes=2.1),
    Stage('upernet_swin_scratch', 'UperNet, Swin (embed 32), from scratch', _SEG.format('swin'),
          SEG_DATA, length=400, minutes=3.1),
)

#: The matrix's last row: the mIoU of calling every pixel background (the UperNet rows' floor).
TRIVIAL_SEG_LABEL = 'UperNet task, trivial baseline: every pixel background'
#: Classes of the segmentation demo's label maps (background included).
SEG_NUM_CLASSES = 4


def stage_table(stages: Tuple[Stage, ...] = STAGES) -> Dict[str, Stage]:
    """The stages by key, checked: unique keys and labels, known data layouts, and every
    ``init_from`` naming an earlier stage."""
    table: Dict[str, Stage] = {}
    labels: List[str] = []
    for stage in stages:
        if stage.key in table or stage.label in labels:
            raise ValueError(f'demo stage {stage.key!r}: key or label used twice')
        if stage.data not in (DET_DATA, SEG_DATA, CLS_DATA):
            raise ValueError(f'demo stage {stage.key!r}: unknown data layout {stage.data!r}')
        if stage.init_from is not None and stage.init_from not in table:
            raise ValueError(f'demo stage {stage.key!r}: init_from {stage.init_from!r} is not '
                             'an earlier stage')
        table[stage.key] = stage
        labels.append(stage.label)
    return table

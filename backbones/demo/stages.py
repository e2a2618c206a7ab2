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


STAGES: Tuple[Stage, ...] = (
    Stage('pretrain_convnext_atto', 'ConvNeXt-atto classifier (shapes pre-training)',
          'configs/classification/convnext_atto_shapes.py', CLS_DATA, length=8, reduced=1,
          minutes=1.8),
    Stage('cascade_convnext_atto_pretrained', 'Cascade Mask R-CNN, ConvNeXt-atto, pre-trained',
          'configs/detection/cascade_convnext_atto_shapes.py', DET_DATA, length=300,
          init_from='pretrain_convnext_atto', minutes=7.3),
    Stage('upernet_convnext_atto_pretrained', 'UperNet, ConvNeXt-atto, pre-trained',
          'configs/segmentation/upernet_convnext_atto_shapes.py', SEG_DATA, length=400,
          init_from='pretrain_convnext_atto', minutes=2.6),
    Stage('mask_rcnn_convnext_atto_pretrained', 'Mask R-CNN, ConvNeXt-atto, pre-trained',
          'configs/detection/mask_rcnn_convnext_atto_shapes.py', DET_DATA, length=300,
          init_from='pretrain_convnext_atto', minutes=3.5),
    Stage('mask_rcnn_convnext_atto_scratch', 'Mask R-CNN, ConvNeXt-atto, from scratch',
          'configs/detection/mask_rcnn_convnext_atto_shapes.py', DET_DATA, length=300,
          minutes=3.6),
)


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

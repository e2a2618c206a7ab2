"""The stages of ``make demo``: one ordered table, the single source of what the demo trains.

The demo runs these (:mod:`.runner`), its matrix lists them in this order, and the tests and the
README's demo table are checked against it. Adding a row to the demo means adding a
:class:`Stage` here (and its config).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

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
        seed: MMEngine's ``randomness.seed`` of the run (see :func:`seeded`).
    """

    key: str
    label: str
    config: str
    data: str
    length: int
    reduced: int = 2
    init_from: Optional[str] = None
    minutes: float = 1.0
    seed: int = 0


_DET, _CASCADE, _SEG, _CLS = ('configs/detection/mask_rcnn_{}_shapes.py',
                              'configs/detection/cascade_{}_shapes.py',
                              'configs/segmentation/upernet_{}_shapes.py',
                              'configs/classification/{}_shapes.py')
#: The demo's backbones: (config name, row name, pre-training key).
_BACKBONES = (('convnext_atto', 'ConvNeXt-atto', 'pretrain_convnext_atto'),
              ('resnet', 'ResNet-18 (half width)', 'pretrain_resnet'),
              ('swin', 'Swin (embed 32)', 'pretrain_swin'))
_CLS_MINUTES = dict(convnext_atto=2.4, resnet=1.5, swin=2.4)
_DET_MINUTES = dict(convnext_atto=2.5, resnet=2.5, swin=2.5)
_SEG_MINUTES = dict(convnext_atto=2.7, resnet=2.2, swin=2.8)
#: Training lengths: classifier epochs, detector and UperNet iterations. UperNet needs its 400
#: iterations (200 gave 40 mIoU, 400 gave 51); the classifiers train 6 of their config's 8
#: epochs and the detectors 200 of 300 iterations to keep ``make demo`` under 15 minutes.
CLS_EPOCHS, DET_ITERS, SEG_ITERS = 6, 200, 400

#: The demo, in the matrix's row order: each backbone pre-trained by the classification
#: sub-tool on crops of the shapes scenes (one recipe for the three), then Mask R-CNN and
#: UperNet fine-tuned from its checkpoint; Cascade Mask R-CNN on ConvNeXt; one ConvNeXt row from
#: scratch to show what the pre-training adds. All on the easy scenes (``make_shapes.py --easy``).
STAGES: Tuple[Stage, ...] = (
    *(Stage(pre, f'Classifier, {name} (pre-training on crops of the scenes)', _CLS.format(arch),
            CLS_DATA, length=CLS_EPOCHS, reduced=1, minutes=_CLS_MINUTES[arch])
      for arch, name, pre in _BACKBONES),
    *(Stage(f'mask_rcnn_{arch}_pretrained', f'Mask R-CNN, {name}, pre-trained',
            _DET.format(arch), DET_DATA, length=DET_ITERS, init_from=pre,
            minutes=_DET_MINUTES[arch])
      for arch, name, pre in _BACKBONES),
    Stage('mask_rcnn_convnext_atto_scratch', 'Mask R-CNN, ConvNeXt-atto, from scratch',
          _DET.format('convnext_atto'), DET_DATA, length=DET_ITERS, minutes=2.5),
    Stage('cascade_convnext_atto_pretrained', 'Cascade Mask R-CNN, ConvNeXt-atto, pre-trained',
          _CASCADE.format('convnext_atto'), DET_DATA, length=DET_ITERS,
          init_from='pretrain_convnext_atto', minutes=3.5),
    *(Stage(f'upernet_{arch}_pretrained', f'UperNet, {name}, pre-trained', _SEG.format(arch),
            SEG_DATA, length=SEG_ITERS, init_from=pre, minutes=_SEG_MINUTES[arch])
      for arch, name, pre in _BACKBONES),
)

#: The matrix's last row: the mIoU of calling every pixel background (the UperNet rows' floor).
TRIVIAL_SEG_LABEL = 'UperNet task, trivial baseline: every pixel background'
#: Classes of the segmentation demo's label maps (background included).
SEG_NUM_CLASSES = 4


def seeded(stages: Sequence[Stage], seed: int) -> Tuple[Stage, ...]:
    """The stages of one seed's replicate: seed 0 is ``stages`` themselves (work dirs
    ``WORK/<key>``); seed ``s`` > 0 trains the same chain under ``WORK/seed<s>/<key>``, each
    fine-tuning starting from that seed's own pre-training."""
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if seed == 0:
        return tuple(stages)
    prefix = f'seed{seed}/'
    return tuple(dataclasses.replace(
        s, key=prefix + s.key, seed=seed,
        init_from=None if s.init_from is None else prefix + s.init_from) for s in stages)


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

"""Draw a model's predictions on one image.

    python tools/image_demo.py IMAGE CONFIG CHECKPOINT --out-file OUT.png [--score-thr 0.3] \
        [--device cpu] [--cfg-options k=v ...]

The task is chosen by the config's ``default_scope``: ``mmdet`` (boxes and masks) is handled
here; another task adds its own function to ``DEMOS``.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import backbones  # noqa: E402,F401  (registers our modules, safe checkpoint I/O)
from backbones.engine import revert_sync_bn_if_single  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw predictions on one image')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-file', required=True, help='where to write the drawn image')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw only predictions scoring at least this')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
                        help='device to run on')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    return parser.parse_args(argv)


def detection_demo(cfg: Config, args: argparse.Namespace) -> None:
    """Run an MMDetection model on ``args.image`` and draw boxes, masks and labels.

    Args:
        cfg: The loaded config (SyncBN already replaced by BN).
        args: Parsed command-line arguments.
    """
    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    model = init_detector(cfg, args.checkpoint, device=args.device)
    result = inference_detector(model, args.image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    image = mmcv.imconvert(mmcv.imread(args.image), 'bgr', 'rgb')
    visualizer.add_datasample('result', image, data_sample=result, draw_gt=False, show=False,
                              out_file=args.out_file, pred_score_thr=args.score_thr)
    kept = int((result.pred_instances.scores >= args.score_thr).sum())
    print(f'{kept} instances scoring >= {args.score_thr} drawn into {args.out_file}')


def segmentation_demo(cfg: Config, args: argparse.Namespace) -> None:
    """Run an MMSegmentation model on ``args.image`` and draw the colour-coded class map.

    Args:
        cfg: The loaded config (SyncBN already replaced by BN).
        args: Parsed command-line arguments (``--score-thr`` does not apply).
    """
    import mmcv
    from mmseg.apis import inference_model, init_model
    from mmseg.registry import VISUALIZERS

    model = init_model(cfg, args.checkpoint, device=args.device)
    result = inference_model(model, args.image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    # Class names and palette come from the checkpoint (init_model reads its dataset_meta).
    visualizer.dataset_meta = model.dataset_meta
    image = mmcv.imread(args.image, channel_order='rgb')
    visualizer.add_datasample('result', image, data_sample=result, draw_gt=False, show=False,
                              with_labels=True, out_file=args.out_file)
    labels = result.pred_sem_seg.data.unique().tolist()
    names = [model.dataset_meta['classes'][i] for i in labels
             if i < len(model.dataset_meta['classes'])]
    print(f'classes {", ".join(names)} drawn into {args.out_file}')


# default_scope -> demo function.
DEMOS = {'mmdet': detection_demo, 'mmseg': segmentation_demo}


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'image not found: {args.image!r}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    revert_sync_bn_if_single(cfg, distributed=False)  # one image, one process
    scope = cfg.get('default_scope')
    if scope not in DEMOS:
        raise NotImplementedError(
            f'{args.config}: no image demo for default_scope {scope!r} yet '
            f'(available: {", ".join(sorted(DEMOS))}); add a function to DEMOS in '
            f'tools/image_demo.py')
    out_dir = osp.dirname(osp.abspath(args.out_file))
    os.makedirs(out_dir, exist_ok=True)
    DEMOS[scope](cfg, args)


if __name__ == '__main__':
    main()

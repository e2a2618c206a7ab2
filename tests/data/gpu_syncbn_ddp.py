"""One DDP training step of UperNet ConvNeXt-T with NCCL, run by tests/test_gpu.py under
``torchrun --nproc_per_node 1``: SyncBN must stay SyncBN (tools/train.py's rule on a GPU run
with a launcher) and step under AMP. Writes what it saw as JSON to argv[1]."""
import json
import math
import os
import os.path as osp
import sys

import torch
import torch.distributed as dist

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config  # noqa: E402
from mmengine.model import MMDistributedDataParallel  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402

import backbones  # noqa: E402,F401
from backbones.analysis.synthetic import synthetic_batch  # noqa: E402
from backbones.engine import prepare_distributed  # noqa: E402


def main(out):
    cfg = Config.fromfile(osp.join(REPO, 'configs/segmentation/upernet_convnext_t_ade20k.py'))
    cfg.model.backbone.init_cfg = None
    assert prepare_distributed(cfg, 'pytorch')
    torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    dist.init_process_group('nccl')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
        model = model.cuda().train()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    ddp = MMDistributedDataParallel(model, device_ids=[torch.cuda.current_device()],
                                    broadcast_buffers=False)
    syncbn = [m for m in model.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    plain_bn = [m for m in model.modules() if type(m) is torch.nn.BatchNorm2d]
    before = syncbn[0].running_mean.clone() if syncbn else None
    log_vars = ddp.train_step(synthetic_batch(model, 2, (512, 512), preprocess=False),
                              optim_wrapper)
    loss = float(log_vars['loss'])
    result = dict(backend=dist.get_backend(), world_size=dist.get_world_size(),
                  wrapper=type(ddp).__name__, syncbn_modules=len(syncbn),
                  bn_modules=len(plain_bn), loss=loss, loss_finite=math.isfinite(loss),
                  running_mean_moved=bool(syncbn) and not torch.equal(
                      syncbn[0].running_mean, before))
    with open(out, 'w') as f:
        json.dump(result, f)
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])

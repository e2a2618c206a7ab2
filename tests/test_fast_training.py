"""The training path of the ConvNeXt blocks (our depthwise weight-gradient kernel, layer scale
folded into pwconv2, matmul + bias add): the loss and every gradient equal the plain path's."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from test_fast_path import CASES, randomize_

from backbones.models import ConvNeXt, set_fast_training
from backbones.models.dwconv import _applies, _extension, depthwise_conv


def loss_and_grads(model, x, fast, seed=1):
    set_fast_training(model, fast)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # DropPath draws the same rows in both paths
    outputs = model(x)
    g = torch.Generator().manual_seed(2)
    # A random projection: the outputs are layer-normed, so a plain sum has no gradient.
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outputs)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


TRAIN_CASES = CASES + [
    ('atto, stochastic depth + checkpointing',
     lambda: ConvNeXt('atto', drop_path_rate=0.3, with_cp=True), 64),
]


@pytest.mark.parametrize('name,build,size', TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_training_path_matches_plain_path(name, build, size):
    torch.manual_seed(0)
    model = randomize_(build()).train()
    x = torch.randn(2, 3, size, size)
    loss_fast, fast = loss_and_grads(model, x, True)
    loss_plain, plain = loss_and_grads(model, x, False)
    assert abs(loss_fast - loss_plain) <= 1e-5 * max(1., abs(loss_plain)), name
    assert set(fast) == set(plain)
    for key in plain:
        err = (fast[key] - plain[key]).abs().max() / plain[key].abs().max().clamp_min(1e-12)
        assert err < 1e-4, f'{name}: {key} differs by {err:.2e} (relative)'


def test_the_kernel_is_built_and_used():
    assert _extension() is not None, 'the depthwise weight-gradient kernel did not build'
    conv = nn.Conv2d(40, 40, 7, padding=3, groups=40)
    x = torch.randn(2, 40, 8, 8).contiguous(memory_format=torch.channels_last)
    assert _applies(conv, x)
    # Where it does not apply, the plain conv runs (same module, same output).
    assert not _applies(conv, x.contiguous())  # NCHW input
    assert not _applies(nn.Conv2d(40, 40, 7, stride=2, padding=3, groups=40), x)
    with torch.autocast('cpu', torch.bfloat16):
        assert not _applies(conv, x)
    with torch.no_grad():
        assert not _applies(conv, x)


@pytest.mark.parametrize('k,channels,side', [(7, 96, 14), (7, 40, 9), (7, 8, 3), (3, 17, 5),
                                             (5, 32, 6), (9, 16, 12), (11, 48, 11)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_depthwise_grads_match_pytorch(k, channels, side, dtype):
    # Channel counts off the 16-wide blocks, maps narrower than the kernel, every kernel size
    # compiled; fp64 (the scalar path) must match to double rounding.
    torch.manual_seed(k + channels)
    conv = nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels).to(dtype)
    x = torch.randn(3, channels, side, side + 1, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(3, channels, side, side + 1, dtype=dtype)
    ours = depthwise_conv(conv, x)
    ours.backward(g)
    got = [x.grad, conv.weight.grad, conv.bias.grad]
    x.grad = conv.weight.grad = conv.bias.grad = None
    ref = F.conv2d(x, conv.weight, conv.bias, padding=k // 2, groups=channels)
    ref.backward(g)
    want = [x.grad, conv.weight.grad, conv.bias.grad]
    assert torch.equal(ours, ref)  # PyTorch's own forward
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for name, a, b in zip(('input', 'weight', 'bias'), got, want):
        err = (a - b).abs().max() / b.abs().max()
        assert err < tol, f'{name} grad differs by {err:.2e}'
    assert got[1].stride() == conv.weight.stride()

"""The eval-mode fast path of the ConvNeXt blocks: same numbers as the plain path, training
untouched, and a backbone that torch.compile captures in one graph."""
import pytest
import torch

from backbones.models.convnext import ConvNeXt
from backbones.models.isotropic import ConvNeXtIsotropic
from backbones.models.layers import ConvNeXtBlock, set_fast_inference


def randomize_(model, seed=0):
    """Non-trivial weights: layer scale, GRN gamma/beta and norms all away from their init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return model


CASES = [
    ('atto V2 (GRN)', lambda: ConvNeXt('atto', use_grn=True), 64),
    ('nano V2 (GRN)', lambda: ConvNeXt('nano', use_grn=True, out_indices=(1, 3)), 64),
    ('femto V1 (layer scale)', lambda: ConvNeXt('femto'), 96),
    ('tiny V1', lambda: ConvNeXt('tiny'), 64),
    ('custom, no layer scale', lambda: ConvNeXt(dict(depths=(1, 1, 2, 1), dims=(16, 32, 48, 64)),
                                                layer_scale_init_value=None), 64),
    ('isotropic small', lambda: ConvNeXtIsotropic(dict(depth=4, dim=96,
                                                       layer_scale_init_value=1e-6)), 64),
]


@pytest.mark.parametrize('name,build,size', CASES, ids=[c[0] for c in CASES])
def test_fast_path_matches_plain_path(name, build, size):
    torch.manual_seed(0)
    model = randomize_(build()).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        plain = model(x)
        model.set_fast_inference(True)
        fast = model(x)
    assert all(isinstance(b, ConvNeXtBlock) and b.fast_inference
               for b in model.modules() if isinstance(b, ConvNeXtBlock))
    assert len(plain) == len(fast)
    for a, b in zip(plain, fast):
        assert a.shape == b.shape
        assert b.is_contiguous()  # channels-last inside, standard NCHW out
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_fast_path_uses_fused_kernels_on_cpu():
    """The fast path really takes the fused oneDNN kernels (no separate bias or GELU passes)."""
    model = ConvNeXt('atto', fast_inference=True).eval()
    with torch.no_grad(), torch.profiler.profile() as prof:
        model(torch.randn(1, 3, 32, 32))
    names = {e.key for e in prof.key_averages()}
    assert 'mkldnn::_linear_pointwise' in names
    assert 'aten::addmm' not in names and 'aten::gelu' not in names


def test_fast_path_constructor_option_and_autograd():
    """`fast_inference=True` at build time; with grad enabled the fast path falls back to
    differentiable ops (frozen-stage style use) and still matches."""
    torch.manual_seed(0)
    plain = randomize_(ConvNeXt('atto', use_grn=True)).eval()
    fast = ConvNeXt('atto', use_grn=True, fast_inference=True).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    out_plain = plain(x)[-1]
    out_fast = fast(x)[-1]
    torch.testing.assert_close(out_fast, out_plain, atol=1e-4, rtol=1e-4)
    g_plain, = torch.autograd.grad(out_plain.sum(), x)
    g_fast, = torch.autograd.grad(out_fast.sum(), x)
    torch.testing.assert_close(g_fast, g_plain, atol=1e-4, rtol=1e-3)


def test_training_is_unchanged_by_the_flag():
    torch.manual_seed(0)
    plain = randomize_(ConvNeXt('atto', drop_path_rate=0.3))
    fast = ConvNeXt('atto', drop_path_rate=0.3, fast_inference=True)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    outs = []
    for model in (plain, fast):
        torch.manual_seed(1)  # the same DropPath masks
        outs.append(model.train()(x))
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    # The flag survives train()/eval() and can be switched off again.
    assert set_fast_inference(fast, False) is fast and not fast.stages[0][0].fast_inference


def test_fast_path_under_bf16_autocast_stays_close():
    torch.manual_seed(0)
    model = randomize_(ConvNeXt('atto')).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[-1]
        model.set_fast_inference(True)
        with torch.autocast('cpu', torch.bfloat16):
            out = model(x)[-1]
    assert out.shape == ref.shape and torch.isfinite(out).all()
    # bf16 keeps ~3 significant digits; the outputs are layer-normalised (unit scale).
    assert (out.float() - ref).abs().mean() < 0.05


@pytest.mark.parametrize('fast', [False, True], ids=['plain', 'fast'])
def test_compile_without_graph_breaks_in_eval(fast):
    torch.manual_seed(0)
    model = ConvNeXt('atto', use_grn=True, fast_inference=fast).eval()
    x = torch.randn(1, 3, 64, 64)
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1

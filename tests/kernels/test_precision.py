"""GPU speed-ups, checked on the CPU (issue 6): the batched all-layer deconvnet gives the layer-by-layer
numbers; autocast (bf16/fp16) stays within a stated error of float32; channels_last mining gives the
same top patches. GPU timings come from benchmarks/bench_deconvnet.py and bench_mining.py on a GPU."""
from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

import cnnviz_widgets as cv
from conftest import assert_zero_counts_close
from cnnviz_widgets.probe.hooks import hook_count


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@pytest.fixture(scope="module")
def pictures(photos):
    return [img for _, img in photos[:2]]


def test_batched_backward_equals_layer_by_layer(alex_probe, pictures):
    x = alex_probe.preprocess(pictures)
    one_by_one = alex_probe.deconvnet(x)
    together = alex_probe.deconvnet(x, batched=True)
    assert list(together) == list(one_by_one)
    for name in one_by_one:
        assert together[name].shape == x.shape and together[name].dtype == torch.float32
        assert relative(together[name], one_by_one[name]) < 1e-5, name
    for sel in ({"channel": 7}, {"unit": (7, 2, 3)}):
        a = alex_probe.deconvnet(x, layers=["c2", "c5"], **sel)
        b = alex_probe.deconvnet(x, layers=["c2", "c5"], batched=True, **sel)
        assert all(relative(b[n], a[n]) < 1e-5 for n in a), sel
    assert hook_count(alex_probe.model) == 0


def test_batched_backward_on_a_branching_network_with_batch_norm(pictures):
    """Copies of the input never mix: batch-norm in eval mode and skip connections keep them apart."""
    probe = cv.Probe(torchvision.models.resnet18(weights=None).eval(), input_size=64)
    x = probe.preprocess(pictures)
    layers = [probe.layer_names[i] for i in (0, len(probe.layer_names) // 2, -1)]
    a = probe.deconvnet(x, layers=layers)
    b = probe.deconvnet(x, layers=layers, batched=True)
    assert all(relative(b[n], a[n]) < 1e-5 for n in layers)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_autocast_stays_close_to_float32(alex_probe, pictures, dtype):
    x = alex_probe.preprocess(pictures)
    full = alex_probe.deconvnet(x)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch warns (not fails) when a device lacks the dtype
            low = alex_probe.deconvnet(x, autocast=dtype)
    except (RuntimeError, UserWarning) as exc:
        pytest.skip(f"torch.autocast({alex_probe.device.type}, {dtype}) is not available here: {exc}")
    errors = {n: (relative(low[n], full[n]), cosine(low[n], full[n])) for n in full}
    print(f"\n{dtype} deconvnet vs float32 (relative error, cosine): "
          + ", ".join(f"{n} {e:.3f}/{c:.3f}" for n, (e, c) in errors.items()))
    assert all(low[n].dtype == torch.float32 and torch.isfinite(low[n]).all() for n in low)
    # stated bounds: reduced precision moves a few max-pool switches, so deep layers differ most
    assert all(e < 0.3 and c > 0.95 for e, c in errors.values()), errors


def test_a_bad_autocast_value_says_what_works(alex_probe, pictures):
    x = alex_probe.preprocess(pictures[:1])
    with pytest.raises(cv.CnnvizError, match=r"autocast='int8' is not a reduced precision: use 'bf16', 'fp16' or None"):
        alex_probe.deconvnet(x, autocast="int8")
    with pytest.raises(cv.CnnvizError, match="autocast=torch.float64"):
        cv.mine(alex_probe, pictures, top_layers=["c3"], progress=False, autocast=torch.float64)


def test_mining_in_channels_last_and_autocast(alex_probe, photos):
    pictures = [img for _, img in photos]
    plain = cv.mine(alex_probe, pictures, top_layers=None, k=4, progress=False)
    nhwc = cv.mine(alex_probe, pictures, top_layers=None, k=4, progress=False, channels_last=True)
    bf16 = cv.mine(alex_probe, pictures, top_layers=None, k=4, progress=False, autocast="bf16")
    for name, top in plain.top.items():
        assert torch.allclose(nhwc.top[name].values, top.values, rtol=1e-5, atol=1e-5), name
        assert torch.equal(nhwc.top[name].image_index, top.image_index) and torch.equal(nhwc.top[name].yx, top.yx)
        assert relative(bf16.top[name].values, top.values) < 0.02, name
        assert bf16.top[name].values.dtype == torch.float32
    assert_zero_counts_close(nhwc.sparsity, plain.sparsity)
    assert max(abs(bf16.sparsity[n] - plain.sparsity[n]) for n in plain.sparsity) < 2e-3
    assert hook_count(alex_probe.model) == 0
    assert next(alex_probe.model.parameters()).is_contiguous()  # the model itself stays as it was

"""The oneDNN linear path: same predictions as PyTorch's own, never used for training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helo.models import fast_linear
from helo.models.fast_linear import Linear, linear
from helo.models.helo import HeLo, HeLoConfig, ModalityInput

MODS = (
    ModalityInput("eeg", "physiological", (32, 5)),
    ModalityInput("gsr", "physiological", (28,)),
    ModalityInput("ppg", "physiological", (27,)),
    ModalityInput("face", "behavioral", (156,)),
)


@pytest.fixture
def onednn():
    previous = fast_linear.set_onednn(True)
    yield fast_linear.onednn_enabled()
    fast_linear.set_onednn(previous)


def _inputs(batch: int):
    g = torch.Generator().manual_seed(1)
    feats = {m.name: torch.randn(batch, *m.shape, generator=g) for m in MODS}
    return feats, torch.ones(batch, len(MODS), dtype=torch.bool)


def test_helo_predicts_the_same_with_and_without_onednn(onednn):
    torch.manual_seed(0)
    model = HeLo(HeLoConfig(modalities=MODS, n_labels=6, d_model=128)).eval()
    for batch in (1, 64):
        feats, present = _inputs(batch)
        fast_linear.set_onednn(False)
        reference = model.predict_proba(feats, present)
        fast_linear.set_onednn(True)
        fast = model.predict_proba(feats, present)
        torch.testing.assert_close(fast, reference, atol=1e-6, rtol=1e-5)


def test_large_inference_products_go_through_onednn(onednn, monkeypatch):
    """Where the probe passes (x86 with oneDNN, as here) only large inference products
    take oneDNN; where it fails, none do and F.linear computes the same numbers."""
    calls = []
    real = getattr(torch.ops.mkldnn, "_linear_pointwise", None)

    def counting(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", counting, raising=False)
    big, small = torch.randn(2048, 128), torch.randn(4, 16)
    w_big, w_small = torch.randn(384, 128), torch.randn(8, 16)
    expected = [big.shape] if onednn else []
    with torch.inference_mode():
        torch.testing.assert_close(linear(big, w_big), F.linear(big, w_big))
        linear(small, w_small)  # below MIN_MULTIPLY_ADDS: F.linear, no oneDNN call overhead
    assert calls == expected
    with torch.enable_grad():  # training records gradients: always F.linear
        linear(big.requires_grad_(), w_big)
    assert calls == expected


def test_training_gradients_are_pytorchs_own(onednn):
    layer = Linear(128, 384)
    x = torch.randn(2048, 128)
    layer(x).square().sum().backward()
    grad = layer.weight.grad.clone()
    layer.weight.grad = None
    F.linear(x, layer.weight, layer.bias).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, grad)


def test_turned_off_by_environment(monkeypatch):
    monkeypatch.setenv("HELO_ONEDNN", "0")
    previous = fast_linear.set_onednn(True)
    try:
        assert not fast_linear.onednn_enabled()
    finally:
        monkeypatch.delenv("HELO_ONEDNN")
        fast_linear.set_onednn(previous)

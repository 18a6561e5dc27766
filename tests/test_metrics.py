"""The six LDL metrics: hand-computed values, averaging over all samples, loss targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helo.models.losses import kl_divergence, label_correlation_target
from helo.models.metrics import evaluate_distributions, per_sample


def test_identical_distributions_are_perfect():
    d = np.array([[0.5, 0.3, 0.2]])
    m = evaluate_distributions(d, d)
    assert m["chebyshev"] == pytest.approx(0)
    assert m["clark"] == pytest.approx(0)
    assert m["canberra"] == pytest.approx(0)
    assert m["kl"] == pytest.approx(0, abs=1e-9)
    assert m["cosine"] == pytest.approx(1)
    assert m["intersection"] == pytest.approx(1)


def test_values_match_the_definitions():
    p, d = np.array([[0.6, 0.4, 0.0]]), np.array([[0.3, 0.3, 0.4]])
    m = {k: v[0] for k, v in per_sample(p, d).items()}
    assert m["chebyshev"] == pytest.approx(0.4)
    ratios = np.array([0.3 / 0.9, 0.1 / 0.7, 0.4 / 0.4])
    assert m["canberra"] == pytest.approx(ratios.sum(), rel=1e-6)
    assert m["clark"] == pytest.approx(np.sqrt((ratios**2).sum()), rel=1e-6)
    assert m["intersection"] == pytest.approx(0.3 + 0.3 + 0.0)
    cos = (0.18 + 0.12) / (np.linalg.norm([0.6, 0.4]) * np.linalg.norm([0.3, 0.3, 0.4]))
    assert m["cosine"] == pytest.approx(cos, rel=1e-6)
    assert np.isfinite(m["kl"])
    assert m["kl"] > 5


def test_metrics_average_over_all_samples_not_the_first():
    d = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    p = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert evaluate_distributions(p, d)["chebyshev"] == pytest.approx((0 + 0.5 + 1) / 3)


def test_kl_loss_is_the_batch_mean_of_kl():
    target = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    expected = per_sample(np.full((2, 2), 0.5), target.numpy())["kl"].mean()
    assert kl_divergence(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_label_correlation_targets():
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    cols = label_correlation_target(d, "columns")
    assert cols[1, 2].item() == pytest.approx(1.0)  # labels 2 and 3 always co-occur
    assert cols[0, 1].item() == pytest.approx(0.0)
    outer = label_correlation_target(d, "outer")
    assert outer[0, 0].item() == pytest.approx(0.5)  # mean of 1 and 0
    with pytest.raises(ValueError, match="unknown label-correlation target"):
        label_correlation_target(d, "nope")

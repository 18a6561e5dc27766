"""Small batches through traced graphs: the model's own numbers for any values of a shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helo.models import traced
from helo.models.checkpoint import load_checkpoint
from helo.models.fast_linear import plain_linears
from helo.models.features.extract import FeatureBatch
from helo.models.inference import Predictor
from helo.models.traced import MAX_TRACED_BATCH, TracedForward, can_trace
from helo.streamer.demo import default_checkpoint


@pytest.fixture(scope="module")
def demo():
    return load_checkpoint(default_checkpoint())


def _inputs(spec, batch: int, seed: int, missing: dict[int, int] | None = None):
    g = torch.Generator().manual_seed(seed)
    feats = {m.name: torch.randn(batch, *m.feature_shape, generator=g) for m in spec.modalities}
    present = torch.ones(batch, len(spec.modalities), dtype=torch.bool)
    for window, modality in (missing or {}).items():
        present[window, modality] = False
    return feats, present


def _plain(model, feats, present):
    with plain_linears():
        return model(feats, present)


def test_a_traced_graph_gives_the_models_numbers_for_other_values_and_masks(demo):
    model = demo.model.eval()
    assert can_trace(model, torch.device("cpu"))
    forward = TracedForward(model)
    with torch.inference_mode():
        for batch in (1, 8):
            # traced on the first call of a shape, reused for new values
            for seed in (0, 1, 2):
                feats, present = _inputs(demo.spec, batch, seed)
                assert torch.equal(forward(feats, present), _plain(model, feats, present))
        # a window missing a modality takes the masking path: its own graph, valid for
        # another window missing another modality
        for missing in ({0: 3}, {7: 0, 2: 1}, {4: 3, 5: 3}):
            feats, present = _inputs(demo.spec, 8, 5, missing)
            assert torch.equal(forward(feats, present), _plain(model, feats, present))
    assert set(forward._graphs) == {(1, True), (8, True), (8, False)}
    assert all(graph is not None for graph in forward._graphs.values())


def test_large_batches_and_a_switched_off_trace_run_the_model(demo, monkeypatch):
    model = demo.model.eval()
    forward = TracedForward(model)
    feats, present = _inputs(demo.spec, MAX_TRACED_BATCH + 1, 0)
    with torch.inference_mode():
        assert torch.equal(forward(feats, present), model(feats, present))
    assert not forward._graphs
    assert not can_trace(model.train(), torch.device("cpu"))  # training: DropKey, dropout
    model.eval()
    monkeypatch.setenv("HELO_TRACE", "0")
    assert not can_trace(model, torch.device("cpu"))


def test_a_shape_that_cannot_be_traced_runs_the_model(demo, monkeypatch):
    model = demo.model.eval()
    forward = TracedForward(model)

    def fails(*args, **kwargs):
        raise RuntimeError("no tracing here")

    monkeypatch.setattr(traced.torch.jit, "trace", fails)
    feats, present = _inputs(demo.spec, 2, 0)
    with torch.inference_mode():
        assert torch.equal(forward(feats, present), model(feats, present))
        assert torch.equal(forward(feats, present), model(feats, present))
    assert forward._graphs == {(2, True): None}


def test_the_predictor_traces_live_batches_within_rounding_of_the_model(demo):
    predictor = Predictor(demo, workers=1)
    assert predictor._logits is not None
    feats, present = _inputs(demo.spec, 8, 3, {1: 3})
    batch = FeatureBatch(
        {k: v.numpy() for k, v in feats.items()}, present.numpy(), {k: [] for k in feats}
    )
    got = predictor.predict_features(batch)
    with torch.inference_mode():
        expected = torch.softmax(demo.model(feats, present), dim=-1).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (8, False) in predictor._logits._graphs
    predictor.warm_up(3)  # a live session of 3: its shapes traced before the first hop
    assert {(3, True), (3, False)} <= set(predictor._logits._graphs)
    assert all(predictor._logits._graphs.values())
    predictor.close()

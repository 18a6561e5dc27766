"""Sessions as objects: a replay through ReplaySession, outputs isolated from each other."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from helo.streamer.config import ReplayOptions, SessionConfig, TimePoint
from helo.streamer.replay_session import ReplaySession
from helo.streamer.sinks import MemorySink

DEMO_RECORDING = Path(__file__).parents[1] / "recordings" / "demo_synthetic_session.xdf"


class BrokenOutput:
    """An output that fails every time, like a CSV file on a full disk."""

    name = "broken output"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, record: object) -> None:
        self.calls += 1
        raise OSError(28, "No space left on device")


def _replay(*subscribers, start: float = 20.0, end: float = 30.0) -> ReplaySession:
    config = SessionConfig(stdout=False, lsl=False)
    options = ReplayOptions(DEMO_RECORDING, start=TimePoint(start), end=TimePoint(end))
    return ReplaySession(config, options, list(subscribers))


def test_a_subscriber_that_raises_does_not_stop_the_others(caplog):
    broken, memory = BrokenOutput(), MemorySink()
    session = _replay(broken, memory)
    with caplog.at_level(logging.ERROR), session:
        count = session.run()
    assert count == 40  # 20 .. 30 s every 0.25 s, on the recorded session's grid
    assert len(memory.records) == count  # the one after the broken output got everything
    assert broken.calls == count  # tried again each time: a disk can be freed
    worker = session.pipeline.worker
    assert worker.subscriber_failures == {"broken output": count}
    told = [
        r
        for r in caplog.records
        if r.name == "helo.streamer.worker" and "broken output failed" in r.getMessage()
    ]
    assert len(told) == 1  # said once when it happened, not 41 times
    assert "No space left on device" in told[0].getMessage()
    assert session.latency.predictions == count  # the session's own statistics too


def test_a_replay_session_offers_the_views_the_app_draws():
    session = _replay(start=10.0, end=12.0)
    with session:
        assert 85.0 < session.position()[1] < 95.0  # the demo recording: about 91 s
        session.run()
        health = {h.type: h for h in session.health()}
        times, truth = session.truth(session.now() - 5.0, session.now())
    assert set(health) == {"EEG", "GSR", "PPG", "FaceBlendshapes"}
    assert health["EEG"].received > 0
    assert len(times) > 10
    np.testing.assert_allclose(truth.sum(axis=1), 1.0, atol=1e-5)
    assert len(session.ends) == 8  # 10 .. 12 s every 0.25 s, on the recorded session's grid
    assert session.played_s(8) == pytest.approx(2.0)


def test_a_model_that_outputs_nan_never_publishes_it(tmp_path, caplog):
    """A real model whose weights went bad (one NaN): its windows go out without a
    prediction, with the reason, counted; no NaN reaches any output."""
    import json

    import torch

    from helo.models.checkpoint import load_checkpoint, save_checkpoint
    from helo.streamer.demo import DEMO_CHECKPOINT

    demo = load_checkpoint(DEMO_CHECKPOINT)
    with torch.no_grad():
        next(demo.model.parameters()).view(-1)[0] = float("nan")
    broken = save_checkpoint(tmp_path / "nan.safetensors", demo.model, demo.spec)
    out = tmp_path / "p.jsonl"
    memory = MemorySink()
    config = SessionConfig(stdout=False, lsl=False, checkpoint=broken, jsonl=out)
    options = ReplayOptions(DEMO_RECORDING, start=TimePoint(20.0), end=TimePoint(22.0))
    with caplog.at_level(logging.ERROR), ReplaySession(config, options, [memory]) as session:
        count = session.run()
    assert count == 8  # 20 .. 22 s every 0.25 s, on the recorded session's grid
    assert session.pipeline.worker.invalid_outputs == count
    assert all(r.distribution is None and r.present == () for r in memory.records)
    assert all("not a finite distribution" in r.missing["eeg"] for r in memory.records)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["distribution"] for row in rows] == [None] * count
    assert sum("not a finite distribution" in r.getMessage() for r in caplog.records) >= 1

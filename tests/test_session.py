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
    assert count == 41  # 20 .. 30 s every 0.25 s
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
    assert session.played_s(9) == pytest.approx(2.25)

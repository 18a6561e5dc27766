"""LSL readers on loopback: every sample, health figures, gaps, reconnection, clock jumps."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest
from helpers import settled

from helo.models.streams import describe_lsl
from helo.streamer.lsl_reader import StreamReader, full_info


def _outlet(srate: float = 500.0, n_channels: int = 8, stream_type: str = "EEG"):
    source_id = f"test-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo("test", stream_type, n_channels, srate, pylsl.cf_float32, source_id)
    channels = info.desc().append_child("channels")
    for c in range(n_channels):
        channels.append_child("channel").append_child_value("label", f"C{c}")
    return pylsl.StreamOutlet(info), source_id


def _resolve(source_id: str) -> pylsl.StreamInfo:
    found = pylsl.resolve_byprop("source_id", source_id, timeout=5.0)
    assert found, f"stream {source_id} not found on loopback"
    return found[0]


def _push(outlet, start_index: int, n: int, srate: float, t0: float, n_channels: int = 8):
    data = np.zeros((n, n_channels), dtype=np.float32)
    data[:, 0] = np.arange(start_index, start_index + n)
    outlet.push_chunk(data, (t0 + np.arange(start_index, start_index + n) / srate).tolist())


def _wait(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_channel_labels_come_with_the_full_header():
    outlet, source_id = _outlet(n_channels=3)
    info = _resolve(source_id)
    assert describe_lsl(full_info(info)).channels == ("C0", "C1", "C2")
    del outlet


def test_reader_gets_every_sample_in_order_with_healthy_figures():
    outlet, source_id = _outlet()
    reader = StreamReader(_resolve(source_id), buffer_s=10.0).start()
    try:
        t0 = pylsl.local_clock()
        total = 0
        while total < 1500:  # 3 s at 500 Hz, in 20 ms chunks
            _push(outlet, total, 10, 500.0, t0)
            total += 10
            time.sleep(0.02)
        assert _wait(lambda: reader.health().received == 1500)
        times, samples = reader.buffer.read_span(-np.inf, np.inf)
        np.testing.assert_array_equal(samples[:, 0], np.arange(1500))
        assert np.all(np.diff(times) > 0)
        health = reader.health()
        assert health.received == 1500
        assert health.gaps == 0
        assert health.effective_srate_hz == pytest.approx(500, rel=0.1)
        assert health.newest_age_s < 1.0
        assert health.problems() == []
    finally:
        reader.stop()


def test_a_pause_is_a_gap_and_a_clock_jump_is_re_anchored():
    outlet, source_id = _outlet(srate=100.0, n_channels=2)
    reader = StreamReader(_resolve(source_id), buffer_s=60.0).start()
    try:
        t0 = pylsl.local_clock()
        _push(outlet, 0, 100, 100.0, t0, 2)
        _push(outlet, 150, 50, 100.0, t0, 2)  # 0.5 s missing
        assert _wait(lambda: reader.health().received == 150, timeout_s=15.0)
        _push(outlet, 200, 50, 100.0, t0 + 7.0, 2)  # the sender's clock jumps 7 s ahead
        assert _wait(lambda: reader.health().received == 200, timeout_s=15.0)
        health = reader.health()
        assert health.gaps == 1
        assert health.gap_s == pytest.approx(0.5, abs=0.05)
        assert health.clock_jumps == 1
        assert health.last_clock_jump_s == pytest.approx(7.0, abs=0.05)
        problems = "; ".join(health.problems(stale_s=100))
        assert "1 gap(s)" in problems
        assert "clock jumped 1 time(s), last +7.0 s (re-anchored)" in problems
        times, samples = reader.buffer.read_span(-np.inf, np.inf)
        assert samples[-1, 0] == 249
        assert times[-1] == pytest.approx(t0 + 2.49, abs=0.05)  # on, not 7 s ahead
    finally:
        reader.stop()


def test_outlet_killed_and_restarted_is_recovered_with_the_gap_reported():
    source_id = f"restart-{uuid.uuid4().hex[:8]}"
    script = Path(__file__).with_name("lsl_outlet_process.py")
    args = [sys.executable, str(script), source_id, "200", "4", "30"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "ready"
        reader = StreamReader(_resolve(source_id), buffer_s=60.0).start()
        assert _wait(lambda: reader.health().received > 200, timeout_s=15.0)  # 1 s of data
        first.kill()
        first.wait()
        # what it sent before it died may still be on its way (under load, a chunk came
        # 4 samples after the count was read): take the count once it has settled
        received_before = settled(lambda: reader.health().received)
        time.sleep(2.0)
        assert reader.health().received == received_before  # nothing while it is gone
        assert reader.health().newest_age_s > 1.5
        second = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        try:
            assert second.stdout.readline().strip() == "ready"
            assert _wait(lambda: reader.health().received > received_before + 100, timeout_s=15.0)
            health = reader.health()
            assert health.gaps >= 1
            assert health.last_gap_s > 1.5  # the time it was gone
            assert health.newest_age_s < 1.0
        finally:
            second.kill()
            second.wait()
        reader.stop()
    finally:
        if first.poll() is None:
            first.kill()


def test_a_clock_jumping_back_is_re_anchored_and_a_small_step_back_restarts_the_buffer():
    outlet, source_id = _outlet(srate=100.0, n_channels=2)
    reader = StreamReader(_resolve(source_id), buffer_s=60.0).start()
    try:
        t0 = pylsl.local_clock()
        _push(outlet, 0, 100, 100.0, t0, 2)
        assert _wait(lambda: reader.health().received == 100, timeout_s=15.0)
        _push(outlet, 100, 50, 100.0, t0 - 10.0, 2)  # the sender's clock steps back 10 s
        assert _wait(lambda: reader.health().clock_jumps == 1, timeout_s=15.0)
        assert reader.health().last_clock_jump_s == pytest.approx(-10.0, abs=0.05)
        times, samples = reader.buffer.read_span(-np.inf, np.inf)
        np.testing.assert_array_equal(samples[:, 0], np.arange(150))  # one time base
        assert np.all(np.diff(times) > 0)
        _push(outlet, 150, 50, 100.0, t0 - 10.0 - 1.0, 2)  # then back by 1 s: not a jump
        assert _wait(lambda: reader.health().backwards == 1, timeout_s=15.0)
        times, samples = reader.buffer.read_span(-np.inf, np.inf)
        np.testing.assert_array_equal(samples[:, 0], np.arange(150, 200))  # old base gone
        assert reader.health().clock_jumps == 1
    finally:
        reader.stop()

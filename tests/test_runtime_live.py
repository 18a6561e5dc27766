"""Live sessions on loopback: the synthetic device, the monitor, its outputs and errors."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from helpers import HOP_S, session_config

from helo.devices.synthetic import Fault, SyntheticDevice
from helo.models.datasets.synthetic import EMOTIONS
from helo.models.features.mapping import MappingError
from helo.models.streams import TRUTH_TYPE
from helo.streamer.cli import main
from helo.streamer.config import SessionConfig
from helo.streamer.session import LiveSession
from helo.streamer.sinks import MemorySink, read_jsonl


def _device(**kwargs) -> SyntheticDevice:
    return SyntheticDevice(source_prefix=f"test-{uuid.uuid4().hex[:8]}", **kwargs)


def _config(device: SyntheticDevice, **kwargs) -> SessionConfig:
    return session_config(device, **kwargs)


def test_a_prediction_every_hop_with_every_modality_once_windows_are_full(live_run):
    records = live_run["records"]
    assert len(records) == pytest.approx(9.0 / HOP_S, abs=2)
    steps = np.diff([r.t_end for r in records])
    # one clock: ends on the hop grid, each up to a tenth of a hop later (the packets')
    assert np.all(np.abs(steps - HOP_S) <= HOP_S / 10 + 1e-6)
    full = [r for r in records if r.present == ("eeg", "gsr", "ppg", "face")]
    assert len(full) >= 8  # the last 2-3 s after the 5 s windows filled
    for record in full:
        assert record.distribution.sum() == pytest.approx(1.0, abs=1e-5)
        assert record.latency_ms is not None
        assert 0 < record.latency_ms < 1000
    early = records[0]
    assert early.distribution is None or len(early.present) < 4  # not enough data yet
    assert all(reason for reason in early.missing.values())


def test_window_ends_are_put_where_the_devices_packets_arrive(live_run):
    """The device sends 20-ms packets over real LSL: the session chose the ends' phase
    from their arrival before its first window, and every end is on that phase, or up
    to a tenth of a hop after it, where the packet that completed the window ended."""
    phase = live_run["phase"]
    assert phase is not None
    assert phase.hops_seen >= 2  # four when the readers kept up, two at the 1.5-s deadline
    assert phase.wait_s <= phase.round_wait_s
    ends = np.array([r.t_end for r in live_run["records"]])
    offsets = np.mod(ends - phase.phase_s + HOP_S / 2, HOP_S) - HOP_S / 2
    assert offsets.min() > -1e-6
    assert offsets.max() < HOP_S / 10 + 1e-6


def test_files_hold_one_line_per_prediction(live_run):
    records = live_run["records"]
    lines = read_jsonl(live_run["out"] / "p.jsonl")
    assert len(lines) == len(records)
    assert lines[-1]["present"] == ["eeg", "gsr", "ppg", "face"]
    assert list(lines[-1]["distribution"]) == list(EMOTIONS)
    with (live_run["out"] / "p.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(records)
    assert float(rows[-1]["t_end_lsl"]) == pytest.approx(records[-1].t_end, abs=1e-5)
    assert sum(float(rows[-1][label]) for label in EMOTIONS) == pytest.approx(1.0, abs=1e-4)
    # the demo model normalises to its population and no baseline was given
    assert {row["calibrating"] for row in rows} == {"0"}
    assert {line["calibrating"] for line in lines} == {False}


def test_predictions_are_published_with_labels_and_streams_are_healthy(live_run):
    assert live_run["labels"] == list(EMOTIONS)
    for health in live_run["health"]:
        assert health.gaps == 0
        assert health.effective_srate_hz == pytest.approx(health.nominal_srate_hz, rel=0.05)
        assert health.problems() == []
    assert live_run["latency"]["predictions"] > 0  # latency figures: streamer bench, not here


def test_a_nan_burst_masks_that_modality_only_while_it_is_in_the_window():
    memory = MemorySink()
    faults = (Fault("eeg", "nan", 5.5, 6.0),)
    device = _device(faults=faults)
    with device, LiveSession(_config(device, duration_s=12.5, lsl=False), [memory]) as session:
        session.run()
    relative = [(r.t_end - device.t0, r) for r in memory.records]
    hit = [r for t, r in relative if 6.2 < t < 10.4]
    after = [r for t, r in relative if t > 11.2]
    assert hit
    assert after
    # No window that holds the burst predicts from the EEG; the reason names the NaNs
    # (on a loaded machine a window may also lack samples: that reason is allowed too).
    assert all("eeg" not in r.present for r in hit)
    assert sum("NaN" in r.missing["eeg"] for r in hit) >= len(hit) // 2
    assert all("face" in r.present for r in hit if r.distribution is not None)
    assert not any("NaN" in r.missing.get("eeg", "") for r in after)  # over when it left
    assert sum("eeg" in r.present for r in after) >= len(after) // 2


def test_a_stream_that_stops_is_marked_stale_and_the_session_goes_on():
    memory = MemorySink()
    faults = (Fault("gsr", "drop", 6.0, 60.0),)
    device = _device(faults=faults)
    config = _config(device, duration_s=10.0, lsl=False, stale_s=1.5)
    with device, LiveSession(config, [memory]) as session:
        session.run()
        health = {h.type: h for h in session.health()}
    last = memory.records[-1]
    assert "gsr" not in last.present
    assert "stale" in last.missing["gsr"]
    assert last.distribution is not None  # predicted from the rest
    assert any(p.startswith("stale") for p in health["GSR"].problems(stale_s=1.5))


def test_missing_streams_are_one_clear_error_before_the_session_starts():
    config = SessionConfig(
        streams={"eeg": "no-such-stream-anywhere"},
        allow_missing=False,
        resolve_timeout_s=1.5,
        stdout=False,
        lsl=False,
    )
    with pytest.raises(MappingError) as exc:
        LiveSession(config).open()
    text = str(exc.value)
    assert "eeg: no stream named 'no-such-stream-anywhere'" in text
    assert "The model needs: eeg (type EEG, 32 ch" in text
    assert "\n" not in text


def test_sigterm_stops_cleanly_flushing_predictions_and_the_recording(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helo.streamer.cli",
            "run",
            "--device",
            "synthetic",
            "--quiet",
            "--jsonl",
            str(jsonl),
            "--record",
            str(tmp_path / "rec"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 26:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) >= 26
    recordings = list((tmp_path / "rec").glob("*.xdf"))
    assert len(recordings) == 1
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(recordings[0]))
    types = {s["info"]["type"][0] for s in streams}
    assert {
        "EEG",
        "GSR",
        "PPG",
        "FaceBlendshapes",
        "EmotionDistribution",
        TRUTH_TYPE,
    } <= types


def test_record_command_writes_a_new_file_each_time(tmp_path):
    for _ in range(2):
        assert (
            main(["record", "--device", "synthetic", "--duration", "2", "--out", str(tmp_path)])
            == 0
        )
    files = sorted(tmp_path.glob("session-*.xdf"))
    assert len(files) == 2  # same second: the second name gets -2, nothing is overwritten
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(files[0]))
    assert {s["info"]["type"][0] for s in streams} == {
        "EEG",
        "GSR",
        "PPG",
        "FaceBlendshapes",
        TRUTH_TYPE,
    }

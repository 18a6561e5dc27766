"""A lab's own devices on the network (real LSL outlets on loopback), unlike ours: other
rates and labels, electrodes missing, volts and kilo-ohms, a 24 fps camera, a glitch,
two devices sending packets on their own clocks. The session adapts, says what it
adapted, and never publishes a non-distribution."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
from helpers import session_config

from helo.devices.synthetic import Fault, StreamStyle, SyntheticDevice
from helo.models.xdf import read_recording
from helo.streamer.session import LiveSession
from helo.streamer.sinks import MemorySink
from helo.streamer.worker import is_distribution

LAB = StreamStyle(
    eeg_rate_hz=250.0,
    eeg_labels="prefixed",
    eeg_missing=("O1", "Fz"),
    eeg_extra=8,
    eeg_unit="volts",
    gsr_unit="kiloohms",
    face_rate_hz=24.0,
)


@pytest.fixture(scope="module")
def lab_session():
    memory = MemorySink()
    device = SyntheticDevice(
        style=LAB, source_prefix="lab-test", faults=(Fault("ppg", "glitch", 9.0, 9.05),)
    )
    handler, logger = _Collect(), logging.getLogger("helo")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with device, LiveSession(session_config(device, duration_s=16.0, lsl=False), [memory]) as s:
            s.run()
            health = {h.type: h for h in s.health()}
            invalid = s.pipeline.worker.invalid_outputs
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    relative = [(r.t_end - device.t0, r) for r in memory.records]
    return {"records": relative, "log": handler.lines, "health": health, "invalid": invalid}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_header_says_what_was_adapted(lab_session):
    log = "\n".join(lab_session["log"])
    assert "eeg <- 'HeLo-synthetic-EEG' (type EEG, 38 ch, 250 Hz)" in log
    assert "eeg: resampled 250 -> 256 Hz (polyphase 128/125)" in log
    assert "'EEG Fp1-Ref'->Fp1" in log
    assert "eeg: interpolated O1, Fz from 30 channels" in log
    assert "eeg: units volts -> µV (x 1e+06; as the stream says)" in log
    assert "gsr: units kiloohms -> µS (1/x; as the stream says)" in log
    assert "face: 24 Hz read on the model's 30 Hz frame grid" in log
    eeg = lab_session["health"]["EEG"]
    assert any("interpolated O1, Fz" in line for line in eeg.adapted)  # the health table


def test_every_modality_feeds_the_model_once_the_windows_are_full(lab_session):
    full = [r for t, r in lab_session["records"] if t > 6.5 and not (8.5 < t < 14.5)]
    assert len(full) > 10
    complete = [r for r in full if set(r.present) == {"eeg", "gsr", "ppg", "face"}]
    assert len(complete) >= 0.9 * len(full), [r.missing for r in full]  # margin for load
    for record in full:
        if "eeg" in record.present:
            assert record.interpolated == {"eeg": ("O1", "Fz")}


def test_a_glitch_masks_its_modality_while_in_the_window_and_never_becomes_a_prediction(
    lab_session,
):
    hit = [r for t, r in lab_session["records"] if 9.3 < t < 13.8]
    assert hit
    assert all("ppg" not in r.present for r in hit)
    assert sum("implausible value 1e+30" in r.missing["ppg"] for r in hit) >= len(hit) // 2
    assert sum("eeg" in r.present for r in hit) >= 0.9 * len(hit)  # the others go on
    for _, record in lab_session["records"]:
        assert record.distribution is None or is_distribution(record.distribution)
    assert lab_session["invalid"] == 0


def test_an_unlabelled_amplifier_at_1000_hz_is_labelled_from_the_command_line(tmp_path):
    """As a user would: the synthetic device styled as a bare 1000 Hz amplifier sending
    microvolts without saying so; the labels come from --channels."""
    from helo.models.datasets.synthetic import EEG_CHANNELS

    out = tmp_path / "p.jsonl"
    args = [
        sys.executable, "-m", "helo.streamer.cli", "run", "--device", "synthetic",
        "--style", "eeg_rate=1000,eeg_labels=none,eeg_unit=",
        "--channels", "eeg=" + ",".join(EEG_CHANNELS),
        "--duration", "9", "--quiet", "--no-lsl", "--jsonl", str(out),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "eeg: resampled 1000 -> 256 Hz (polyphase 32/125)" in done.stderr
    assert "declares no unit; its amplitude looks like µV" in done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert any("eeg" in row["present"] for row in rows[-8:])
    assert all(row["distribution"] is None or np.isfinite(list(row["distribution"].values())).all()
               for row in rows)  # fmt: skip


@pytest.mark.parametrize("offset_s", [3600.0, -3600.0])
def test_a_clock_jump_is_reported_and_predictions_go_on(offset_s):
    memory = MemorySink()
    device = SyntheticDevice(
        modalities=("eeg", "gsr"), faults=(Fault("eeg", "jump", 7.0, offset_s=offset_s),)
    )
    config = session_config(device, duration_s=14.0, lsl=False)
    with device, LiveSession(config, [memory]) as session:
        session.run()
        health = {h.type: h for h in session.health()}
    eeg = health["EEG"]
    assert eeg.clock_jumps == 1
    assert eeg.last_clock_jump_s == pytest.approx(offset_s, abs=1.0)
    assert any("clock jumped 1 time(s)" in p for p in eeg.problems())
    after = [r for r in memory.records if r.t_end - device.t0 > 12.5]  # one window later
    assert after
    with_eeg = [r for r in after if "eeg" in r.present]
    assert len(with_eeg) >= len(after) - 1, [r.missing for r in after]  # one may be late


def test_a_recording_with_a_clock_jump_replays_on_after_the_jump(tmp_path):
    """Recorded by LabRecorder with the raw (jumped) timestamps; the replay places the
    samples after the jump right after those before, says so, and predicts on."""
    recording = tmp_path / "jump.xdf"
    run = [
        sys.executable, "-m", "helo.streamer.cli", "run", "--device", "synthetic",
        "--fault", "eeg:jump-3600:6", "--record", str(recording), "--duration", "12",
        "--quiet", "--no-lsl",
    ]  # fmt: skip
    done = subprocess.run(run, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "replayed.jsonl"
    replay = [
        sys.executable, "-m", "helo.streamer.cli", "replay", str(recording), "--quiet",
        "--output", str(out),
    ]  # fmt: skip
    done = subprocess.run(replay, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "timestamps jump -3600.0 s" in done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[-1]["t_end_lsl"] - rows[0]["t_end_lsl"] < 60  # not an hour of empty windows
    assert all("eeg" in row["present"] for row in rows[-10:])


@pytest.mark.parametrize(
    ("labels", "montage", "renamed"),
    [("old", None, "'T3'->T7"), ("biosemi", "biosemi32", "'A7'->T7")],
)
def test_old_and_abc_labels_feed_the_model(labels, montage, renamed, caplog):
    from helo.models.features.adapt import AdaptOptions

    memory = MemorySink()
    device = SyntheticDevice(modalities=("eeg",), style=StreamStyle(eeg_labels=labels))
    config = session_config(device, duration_s=8.0, lsl=False)
    config.inputs = AdaptOptions(montage=montage)
    with caplog.at_level(logging.INFO), device, LiveSession(config, [memory]) as session:
        session.run()
    assert renamed in caplog.text
    assert any(r.present == ("eeg",) for r in memory.records[-4:])


def test_a_lab_recording_cut_in_batches_predicts_what_window_by_window_cutting_does(tmp_path):
    """At full speed a replay cuts each batch of 128 windows from its buffers at once; a
    paced replay cuts window by window. On a lab's cap (500 Hz, volts, electrodes
    missing), a 24 fps camera, a NaN burst, a glitch and a GSR stream gone silent for
    3 s (stale), both give the same masks, reasons and distributions. The dropout is
    still a gap after reading the file (pyxdf's default de-jitter smoothed it away)."""
    recording = tmp_path / "lab"
    run = [
        sys.executable, "-m", "helo.streamer.cli", "run", "--device", "synthetic",
        "--style", "eeg_rate=500,eeg_labels=prefixed,eeg_missing=O1+Fz,eeg_unit=V,"
        "gsr_unit=kOhm,face_rate=24",
        "--fault", "eeg:nan:7-7.5", "--fault", "ppg:glitch:9-9.1", "--fault", "gsr:drop:11-14",
        "--record", str(recording), "--duration", "24", "--quiet", "--no-lsl",
    ]  # fmt: skip
    done = subprocess.run(run, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    xdf = next(recording.glob("*.xdf"))
    gsr = next(s for s in read_recording(xdf) if s.description.type == "GSR")
    assert np.diff(gsr.times).max() > 2.5  # the dropout stays a gap (pyxdf smoothed it away)
    rows = {}
    for speed in ("max", "40"):
        out = tmp_path / f"{speed}.jsonl"
        replay = [
            sys.executable, "-m", "helo.streamer.cli", "replay", str(xdf), "--speed", speed,
            "--quiet", "--output", str(out),
        ]  # fmt: skip
        done = subprocess.run(replay, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rows[speed] = [json.loads(line) for line in out.read_text().splitlines()]
    batched, paced = rows["max"], rows["40"]
    assert len(batched) == len(paced) > 60
    for a, b in zip(batched, paced, strict=True):
        assert (a["t_end_lsl"], a["present"], a["missing"]) == (
            b["t_end_lsl"],
            b["present"],
            b["missing"],
        )
        if a["distribution"]:
            got, want = list(a["distribution"].values()), list(b["distribution"].values())
            np.testing.assert_allclose(got, want, atol=1e-5)
    reasons = " ".join(str(r["missing"]) for r in batched)
    assert "stale" in reasons
    assert "NaN" in reasons or "implausible" in reasons


def test_windows_take_in_the_packets_of_devices_that_send_on_their_own(tmp_path):
    """An amplifier sending 8-ms packets and a body sensor box sending 100-ms ones (two
    devices, two clocks of packets): every window ends on the hop's grid or up to a
    tenth of a hop after it, where both devices' samples were in, and the replay of the
    recording cuts its windows at exactly those ends."""
    import dataclasses
    import uuid

    from helo.streamer.cli import main
    from helo.streamer.sinks import read_jsonl

    tag = uuid.uuid4().hex[:8]
    amplifier = SyntheticDevice(
        modalities=("eeg",), chunk_s=0.008, source_prefix=f"amp-{tag}", truth=False, labels=False
    )
    box = SyntheticDevice(
        modalities=("gsr", "ppg", "face"), chunk_s=0.1, source_prefix=f"box-{tag}"
    )
    memory, path = MemorySink(), tmp_path / "two.xdf"
    with amplifier, box:
        config = session_config(box, duration_s=10.0, lsl=True, record=path)
        config = dataclasses.replace(config, streams={**config.streams, "eeg": f"amp-{tag}-eeg"})
        with LiveSession(config, [memory]) as session:
            session.run()
            shifts = np.array(session.pipeline.scheduler.end_shifts)
            follow_s = session.pipeline.scheduler.follow_s
    assert follow_s == pytest.approx(0.025)
    assert len(shifts) >= 20
    assert shifts.min() >= 0.0
    assert shifts.max() <= follow_s + 1e-9
    assert (shifts > 0).any()  # the amplifier's packet brought samples past the grid's end
    live = np.array([r.t_end for r in memory.records if r.distribution is not None])
    full = [r for r in memory.records if len(r.present) == 4]
    assert len(full) >= 5  # the last seconds, once the 5-s windows filled

    out = tmp_path / "r.jsonl"
    assert main(["replay", str(path), "--output", str(out), "--quiet"]) == 0
    ends = np.array([row["t_end_lsl"] for row in read_jsonl(out)])
    inside = live[(live > ends[0] - 1e-3) & (live < ends[-1] + 1e-3)]
    assert len(inside) >= 5
    assert np.abs(inside[:, None] - ends[None, :]).min(axis=1).max() < 1e-4

"""Replay of XDF recordings through the live pipeline: identical, faithful, and loud."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helo.models.checkpoint import save_checkpoint
from helo.models.datasets.synthetic import EMOTIONS
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.helo import HeLo, HeLoConfig
from helo.models.xdf import read_recording
from helo.streamer.cli import main
from helo.streamer.sinks import read_jsonl

FIXTURES = Path(__file__).with_name("fixtures") / "xdf"  # LabRecorder's examples (MIT)
REPO = Path(__file__).resolve().parents[1]


def _replay(xdf: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["replay", str(xdf), "--output", str(out), "--quiet", *extra]) == 0
    return read_jsonl(out)


def _distributions(rows: list[dict]) -> np.ndarray:
    return np.array([list(r["distribution"].values()) for r in rows if r["distribution"]])


def test_the_recording_holds_streams_truth_and_predictions(live_run):
    streams = {s.description.type: s for s in read_recording(live_run["xdf"])}
    assert {"EEG", "GSR", "PPG", "FaceBlendshapes", "EmotionTruth", "EmotionDistribution"} <= set(
        streams
    )
    truth = streams["EmotionTruth"]
    assert truth.description.channels == EMOTIONS
    np.testing.assert_allclose(truth.samples.sum(axis=1), 1.0, atol=1e-5)
    assert streams["EEG"].samples.shape[1] == 32
    assert len(streams["EmotionDistribution"].times) == sum(
        r.distribution is not None for r in live_run["records"]
    )


def test_replaying_twice_gives_identical_predictions(live_run, tmp_path):
    first = _replay(live_run["xdf"], tmp_path / "a.jsonl")
    second = _replay(live_run["xdf"], tmp_path / "b.jsonl")
    assert len(first) > 10
    assert [r["t_end_lsl"] for r in first] == [r["t_end_lsl"] for r in second]
    assert [r["distribution"] for r in first] == [r["distribution"] for r in second]


def test_replay_at_the_recorded_times_matches_the_live_predictions(live_run, tmp_path):
    """Live (liblsl clock sync, our de-jitter) vs replay (pyxdf clock sync and de-jitter):
    the same windows up to a sample at their edges. Stated tolerance: every probability
    within 0.05, the median window within 0.001 (de-jitter converges in the first seconds).
    Only windows the recording holds whole are compared: LabRecorder subscribes to each
    stream a little after the session's readers, so the first windows of a replay can
    lack the first second or two of a stream (the face most often) that the live run had.
    """
    replayed = _replay(live_run["xdf"], tmp_path / "r.jsonl", "--times", "recorded")
    recorded = {s.description.type: s for s in read_recording(live_run["xdf"])}
    live = recorded["EmotionDistribution"]
    ends = np.array([r["t_end_lsl"] for r in replayed])
    match = np.abs(live.times[None, :] - ends[:, None]).argmin(axis=1)
    assert np.abs(live.times[match] - ends).max() < 1e-3
    recording_starts = max(recorded[t].times[0] for t in ("EEG", "GSR", "PPG", "FaceBlendshapes"))
    whole = ends - 5.0 >= recording_starts  # the demo model's windows are 5 s long
    diff = np.abs(live.samples[match] - _distributions(replayed)).max(axis=1)[whole]
    assert len(diff) >= 6
    assert diff.max() < 0.05
    assert np.median(diff) < 0.001


def test_a_paced_replay_takes_its_share_of_real_time(live_run, tmp_path):
    started = time.perf_counter()
    rows = _replay(live_run["xdf"], tmp_path / "p.jsonl", "--speed", "4")
    seconds = time.perf_counter() - started
    span = rows[-1]["t_end_lsl"] - rows[0]["t_end_lsl"]
    assert seconds >= 0.9 * span / 4


def _tiny_checkpoint(path: Path, modality: ModalitySpec, hop_s: float) -> Path:
    spec = FeatureSpec(modalities=(modality,), labels=("calm", "tense"), hop_s=hop_s)
    n = modality.n_features
    spec = spec.with_normalization({modality.name: (np.zeros(n), np.ones(n))})
    torch.manual_seed(0)
    return save_checkpoint(
        path, HeLo(HeLoConfig.from_spec(spec, d_model=16, n_tokens=2)).eval(), spec
    )


def test_the_minimal_labrecorder_file_gives_predictions_with_a_matching_model(tmp_path):
    eeg = ModalitySpec(
        "eeg",
        "physiological",
        "eeg_de",
        "EEG",
        ("C1", "C2", "C3"),
        10.0,
        0.5,
        (3, 2),
        params={"bands_hz": [[1, 3], [3, 5]]},
    )
    ckpt = _tiny_checkpoint(tmp_path / "tiny.safetensors", eeg, hop_s=0.1)
    rows = _replay(FIXTURES / "minimal.xdf", tmp_path / "m.jsonl", "--checkpoint", str(ckpt))
    assert len(rows) == 4  # windows of 0.5 s over 0.8 s of data, every 0.1 s
    assert all(r["present"] == ["eeg"] for r in rows)


def test_empty_streams_file_predicts_from_the_stream_with_data(tmp_path):
    counter = ModalitySpec(
        "counter", "physiological", "gsr_stats", "data", ("ch:00",), 1.0, 5.0, (28,)
    )
    ckpt = _tiny_checkpoint(tmp_path / "c.safetensors", counter, hop_s=1.0)
    rows = _replay(
        FIXTURES / "empty_streams.xdf",
        tmp_path / "e.jsonl",
        "--checkpoint",
        str(ckpt),
        "--stream",
        "counter=Data stream: test stream 0 counter",
    )
    assert len(rows) == 5  # 10 samples at 1 Hz: windows of 5 s end at 5..9 s
    assert all(r["present"] == ["counter"] for r in rows)


def _cli_error(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "helo.streamer.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("streamer")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_files_that_cannot_be_replayed_are_one_line_errors(live_run, tmp_path):
    message = _cli_error("replay", str(FIXTURES / "minimal.xdf"), cwd=tmp_path)
    assert "minimal.xdf" in message
    assert "eeg: stream 'SendDataC' (type EEG, 3 ch, 10 Hz) has none of the model's" in message
    assert "3 unlabelled channels" in message
    assert "--channels eeg=" in message  # and says how to label them
    truncated = tmp_path / "truncated.xdf"
    truncated.write_bytes(live_run["xdf"].read_bytes()[:5000])
    message = _cli_error("replay", str(truncated), cwd=tmp_path)
    assert "truncated.xdf" in message
    message = _cli_error("replay", str(tmp_path / "missing.xdf"), cwd=tmp_path)
    assert "missing.xdf: no such file" in message


def test_an_empty_stream_is_named_when_it_is_the_only_source(tmp_path):
    counter = ModalitySpec(
        "counter", "physiological", "gsr_stats", "data", ("ch:00",), 1.0, 5.0, (28,)
    )
    ckpt = _tiny_checkpoint(tmp_path / "c.safetensors", counter, hop_s=1.0)
    message = _cli_error(
        "replay",
        str(FIXTURES / "empty_streams.xdf"),
        "--checkpoint",
        str(ckpt),
        "--stream",
        "counter=Empty data stream: test stream 0 counter",
        cwd=tmp_path,
    )
    assert "holds no samples" in message


def test_the_shipped_demo_recording_replays(tmp_path):
    demos = sorted((REPO / "recordings").glob("demo_*.xdf"))
    assert demos, "a demo recording must ship in recordings/"
    rows = _replay(demos[0], tmp_path / "d.jsonl")
    full = [r for r in rows if r["present"] == ["eeg", "gsr", "ppg", "face"]]
    assert len(full) > 100
    truth = {s.description.type: s for s in read_recording(demos[0])}["EmotionTruth"]
    ends = np.array([r["t_end_lsl"] for r in full])
    true = truth.samples[np.abs(truth.times[None, :] - ends[:, None]).argmin(axis=1)]
    pred = _distributions(full)
    agree = (pred.argmax(axis=1) == true.argmax(axis=1)).mean()
    assert agree > 0.5  # the demo model follows the simulated person most of the time
    print(json.dumps({"dominant_agreement": agree}))


def _replay_demo_windows(count: int, seeks: dict[int, int]) -> tuple[np.ndarray, list]:
    """Replay the first ``count`` window ends of the demo recording with the demo model;
    ``seeks`` maps the n-th clock advance to the index of the window end to jump to."""
    import threading

    from helo.models.checkpoint import load_checkpoint
    from helo.streamer.clocks import ReplayClock
    from helo.streamer.demo import DEMO_CHECKPOINT
    from helo.streamer.pipeline import Pipeline
    from helo.streamer.replay import ReplaySource
    from helo.streamer.sinks import MemorySink

    ckpt = load_checkpoint(DEMO_CHECKPOINT)
    source = ReplaySource(sorted((REPO / "recordings").glob("demo_*.xdf"))[0], ckpt.spec)
    hop = ckpt.spec.hop_s
    ends = source.grid_ends(hop)[:count]
    advances = 0

    def advance(t: float) -> None:
        nonlocal advances
        source.push_until(t)
        advances += 1
        if advances in seeks:
            clock.seek(ends[seeks[advances]])

    clock = ReplayClock(ends[0] - hop, ends[-1], advance, on_seek=source.seek)
    memory = MemorySink()
    Pipeline(ckpt, source.feeds, clock, [memory], hop_s=hop, ends=ends).run(threading.Event())
    return ends, memory.records


def test_a_seek_continues_with_the_windows_of_a_replay_that_never_jumped():
    ends, straight = _replay_demo_windows(60, {})
    _, jumped = _replay_demo_windows(60, {30: 10, 45: 50})  # back 20 windows, then ahead
    assert [r.t_end for r in straight] == list(ends)
    times = [r.t_end for r in jumped]
    expected = [*ends[:29], *ends[10:24], *ends[50:]]  # the 30th and 45th advances are skipped
    np.testing.assert_allclose(times, expected)
    by_time = {r.t_end: r.distribution for r in straight}
    for record in jumped:
        np.testing.assert_allclose(record.distribution, by_time[record.t_end], atol=1e-5)


def test_a_span_gives_the_predictions_of_the_same_span_in_a_full_replay(tmp_path):
    demo = sorted((REPO / "recordings").glob("demo_*.xdf"))[0]
    start = min(float(s.times[0]) for s in read_recording(demo) if len(s.times))
    full = _replay(demo, tmp_path / "full.jsonl")
    span = _replay(demo, tmp_path / "span.jsonl", "--from", "30", "--to", "45")
    in_span = [r for r in full if start + 30 - 1e-6 <= r["t_end_lsl"] <= start + 45 + 1e-6]
    assert [r["t_end_lsl"] for r in span] == [r["t_end_lsl"] for r in in_span]
    assert len(span) == 60  # every 0.25 s from 30 to 45 s, on the recorded session's grid
    assert np.allclose(np.diff([r["t_end_lsl"] for r in span]), 0.25)
    np.testing.assert_allclose(_distributions(span), _distributions(in_span), atol=1e-6)
    by_lsl = _replay(
        demo, tmp_path / "lsl.jsonl", "--from", f"lsl:{start + 30}", "--to", f"lsl:{start + 45}"
    )
    assert [r["t_end_lsl"] for r in by_lsl] == [r["t_end_lsl"] for r in span]


def test_a_span_outside_the_recording_is_a_one_line_error(tmp_path):
    demo = sorted((REPO / "recordings").glob("demo_*.xdf"))[0]
    message = _cli_error("replay", str(demo), "--from", "5000", cwd=tmp_path)
    assert "no window ends between --from and --to" in message
    message = _cli_error("replay", str(demo), "--from", "soon", cwd=tmp_path)
    assert "--from 'soon'" in message


def test_window_ends_written_to_jsonl_and_csv_read_back_exactly(tmp_path):
    """A window end read back from an output file is the float that was written: cutting
    the recording again at it takes the same samples (a sample can lie within 1e-7 s of
    a window's edge; rounded ends once moved it across)."""
    import csv

    from helo.streamer.sinks import CsvSink, JsonlSink
    from helo.streamer.worker import PredictionRecord

    t_end = 10517.995168000123
    record = PredictionRecord(0, t_end, EMOTIONS, np.full(len(EMOTIONS), 1 / 6), ("eeg",))
    jsonl, table = JsonlSink(tmp_path / "p.jsonl"), CsvSink(tmp_path / "p.csv", EMOTIONS)
    for sink in (jsonl, table):
        sink(record)
        sink.close()
    assert read_jsonl(tmp_path / "p.jsonl")[0]["t_end_lsl"] == t_end
    with open(tmp_path / "p.csv", encoding="utf-8", newline="") as handle:
        assert float(next(csv.DictReader(handle))["t_end_lsl"]) == t_end


def test_out_naming_a_predictions_file_writes_it_for_one_recording(tmp_path):
    """``--out`` is a study's folder; ``--out preds.jsonl`` for one recording means the
    predictions file, and a study given such a name is told, not handed a folder."""
    demo = next((REPO / "recordings").glob("demo_*.xdf"))
    out = tmp_path / "preds.jsonl"
    assert main(["replay", str(demo), "--out", str(out), "--to", "12", "--quiet"]) == 0
    assert out.is_file()
    assert len(read_jsonl(out)) == 28  # the window ends up to 12 s, on the session's grid
    message = _cli_error("replay", str(REPO / "recordings"), "--out", "study.csv", cwd=tmp_path)
    assert "--out study.csv: a study writes a folder" in message
    assert not (tmp_path / "study.csv").exists()


def test_a_recorded_session_on_another_hop_is_replayed_on_its_hop(tmp_path, caplog):
    """A session run with ``--hop 0.3`` and replayed without one: on the model's hop the
    replay's windows would not be the session's; it takes the recorded session's and
    says so."""
    import dataclasses
    import logging
    import uuid

    from helpers import session_config

    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.session import LiveSession
    from helo.streamer.sinks import MemorySink

    memory = MemorySink()
    with SyntheticDevice(source_prefix=f"test-{uuid.uuid4().hex[:8]}") as device:
        config = session_config(device, duration_s=8.0, record=tmp_path / "hop.xdf")
        with LiveSession(dataclasses.replace(config, hop_s=0.3), subscribers=[memory]) as live:
            live.run()
    live_ends = np.array([r.t_end for r in memory.records if r.distribution is not None])
    # on the 0.3-s grid, each up to a tenth of a hop later, where the packets were
    shift = (live_ends - live_ends[0] + 0.15) % 0.3 - 0.15
    assert shift.min() > -0.03 - 1e-6
    assert shift.max() < 0.03 + 1e-6

    with caplog.at_level(logging.INFO, logger="helo.streamer.replay_session"):
        replayed = _replay(tmp_path / "hop.xdf", tmp_path / "r.jsonl")
    assert "replaying on the recorded live session's hop, 0.3 s" in caplog.text
    ends = np.array([r["t_end_lsl"] for r in replayed])
    # the live session's windows (as recorded: the recorder's clock sync moves them by µs)
    inside = live_ends[(live_ends > ends[0] - 1e-3) & (live_ends < ends[-1] + 1e-3)]
    assert len(inside) >= 5
    assert np.abs(inside[:, None] - ends[None, :]).min(axis=1).max() < 1e-4
    # a hop asked for wins
    other = _replay(tmp_path / "hop.xdf", tmp_path / "o.jsonl", "--hop", "0.25")
    assert np.diff([r["t_end_lsl"] for r in other]) == pytest.approx(0.25, abs=1e-6)


def test_followed_ends_are_the_recorded_ones_and_fill_the_hops_without_one():
    """A session whose ends followed the packets recorded each up to a tenth of a hop
    past its grid; its participants record the same ends (µs apart); a hop without a
    prediction recorded none; the live clock drifted 50 ppm against the recorder's."""
    from helo.streamer.replay import followed_ends

    hop = 0.25
    k = np.arange(4000)  # 1000 s
    live = 100.0 + k * hop * (1 + 50e-6) + np.random.default_rng(0).uniform(0, 0.025, k.size)
    kept = np.ones(k.size, bool)
    kept[[7, 8, 9, 2000]] = False  # no prediction in those hops
    recorded = np.sort(np.concatenate([live[kept], live[kept] + 3e-6]))  # two participants
    ends = followed_ends(float(live[0]), float(live[-1]) + 1e-3, recorded, hop)
    assert len(ends) == k.size
    np.testing.assert_array_equal(ends[kept], live[kept])
    np.testing.assert_allclose(ends[7:10], live[6] + hop * np.arange(1, 4))  # filled
    assert np.abs(ends[~kept] - live[~kept]).max() < 0.03


def test_each_participant_gets_their_own_recorded_end_at_every_hop():
    """A group's live windows each followed their own participant's packets: a hop's ends
    differ by a few ms between participants; a hop where one recorded no prediction
    takes the hop's end."""
    from helo.streamer.replay import matched_ends

    hops = 100.0 + 0.25 * np.arange(6)
    own = hops + np.array([0.004, 0.012, 0.0, 0.021, 0.008, 0.002])
    recorded = np.delete(own, 3)  # no prediction at the fourth hop
    np.testing.assert_array_equal(
        matched_ends(hops, recorded, 0.25), np.where(np.arange(6) == 3, hops, own)
    )
    np.testing.assert_array_equal(matched_ends(hops, np.empty(0), 0.25), hops)

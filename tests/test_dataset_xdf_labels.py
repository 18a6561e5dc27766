"""Labelled XDF recordings -> WindowDataset, on files recorded by LabRecorder.

One ~18 s real-time session publishes synthetic EEG, GSR, PPG and face streams
and EmotionLabels markers over LSL on loopback; LabRecorder records at once:
everything; everything but the face; GSR with a marker stream whose second
label is unknown; GSR with a label that runs past the end of the data; GSR
with a label placed after the recording.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
import uuid
from pathlib import Path

import labrecorder
import numpy as np
import pylsl
import pytest

from helo.models.datasets.synthetic import SYNTHETIC_STREAMS, EmotionScript, SyntheticSession
from helo.models.datasets.synthetic_windows import synthetic_spec
from helo.models.datasets.windows import features_from_recording
from helo.models.datasets.xdf_labels import (
    label_sample,
    load_labelled_xdf,
    parse_label_sample,
)
from helo.models.errors import DatasetError
from helo.models.features.extract import extract_modality
from helo.models.streams import LABELS_TYPE
from helo.streamer.clocks import ReplayClock
from helo.streamer.replay import ReplaySource
from helo.streamer.scheduler import WindowScheduler

FIXTURES = Path(__file__).with_name("fixtures") / "xdf"  # LabRecorder examples (MIT)
SESSION_S = 17.4  # pushed in real time
CONNECT_S = 1.5  # time for the recorders to connect before anything is pushed
BLOCK_S = 0.02
# (session time of the push, JSON fields) of the two labels of the main stream
LABELS = [
    (
        8.5,
        {
            "distribution": {"happiness": 3, "surprise": 1},
            "duration_s": 7.5,
            "offset_s": -0.5,
            "trial": "calm",
            "subject": "P07",
        },
    ),
    (17.0, {"distribution": {"Fear": 2.0}, "duration_s": 7.5}),
]


def _data_outlet(name: str, uid: str) -> pylsl.StreamOutlet:
    stream = SYNTHETIC_STREAMS[name]
    info = pylsl.StreamInfo(
        f"{name}-{uid}",
        stream.stream_type,
        len(stream.channels),
        stream.srate_hz,
        pylsl.cf_float32,
        f"{uid}-{name}",
    )
    channels = info.desc().append_child("channels")
    for label in stream.channels:
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", stream.unit)
    return pylsl.StreamOutlet(info)


def _label_outlet(name: str, uid: str) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(
        f"{name}-{uid}",
        LABELS_TYPE,
        1,
        pylsl.IRREGULAR_RATE,
        pylsl.cf_string,
        f"{uid}-{name}",
    )
    return pylsl.StreamOutlet(info)


def _resolve(source_id: str) -> str:
    found = pylsl.resolve_byprop("source_id", source_id, timeout=5.0)
    assert len(found) == 1, f"stream {source_id} not found on loopback"
    return found[0].as_xml()


def _push_data(outlets: dict[str, pylsl.StreamOutlet], t0: float, stop: threading.Event) -> None:
    """Play a synthetic session in real time, stamping samples on the session clock."""
    script = EmotionScript.tour(segment_s=6.0)
    session = SyntheticSession(script, subject=3, seed=0)
    while not stop.is_set():
        now_s = min(pylsl.local_clock() - t0, SESSION_S)
        for name, outlet in outlets.items():
            times, samples = session.read(name, now_s)
            if len(times):
                outlet.push_chunk(samples.astype(np.float32), t0 + float(times[-1]))
        if now_s >= SESSION_S:
            return
        time.sleep(BLOCK_S)


def _wait_until(t_s: float) -> None:
    while pylsl.local_clock() < t_s:
        time.sleep(0.005)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("xdf")
    uid = uuid.uuid4().hex[:12]
    outlets = {name: _data_outlet(name, uid) for name in ("eeg", "gsr", "ppg", "face")}
    markers = {name: _label_outlet(name, uid) for name in ("labels", "bad", "late", "offside")}
    xml = {name: _resolve(f"{uid}-{name}") for name in (*outlets, *markers)}
    files = {
        "full": ["eeg", "gsr", "ppg", "face", "labels"],
        "noface": ["eeg", "gsr", "ppg", "labels"],
        "badlabel": ["gsr", "bad"],
        "late": ["gsr", "late"],
        "offside": ["gsr", "offside"],
    }
    recordings = [
        labrecorder.Recording(str(folder / f"{key}.xdf"), [xml[n] for n in names])
        for key, names in files.items()
    ]
    time.sleep(CONNECT_S)
    t0 = pylsl.local_clock()
    stop = threading.Event()
    pusher = threading.Thread(target=_push_data, args=(outlets, t0, stop), daemon=True)
    pusher.start()
    pushed_at = []
    try:
        _wait_until(t0 + 3.0)
        markers["bad"].push_sample([label_sample({"anger": 1.0}, duration_s=2.0)])
        markers["bad"].push_sample([json.dumps({"distribution": {"joy": 1}, "duration_s": 2})])
        # a span [10, 20] s of which the data (until 17.4 s) covers the first part
        markers["late"].push_sample(
            [label_sample({"anger": 1.0}, duration_s=10.0, offset_s=3.0)], t0 + 17.0
        )
        # a span [30, 40] s: after the recording (an offset with the wrong sign)
        markers["offside"].push_sample(
            [label_sample({"anger": 1.0}, duration_s=10.0, offset_s=25.0)], t0 + 15.0
        )
        for at_s, fields in LABELS:
            _wait_until(t0 + at_s)
            pushed_at.append(pylsl.local_clock() - t0)
            markers["labels"].push_sample([label_sample(**fields)])
        pusher.join(timeout=SESSION_S + 5.0)
        time.sleep(0.3)  # let the last samples reach the recorders
    finally:
        stop.set()
        for recording in recordings:
            recording.stop()
        # The file is complete only once the recording object is destroyed.
        del recordings[:]
        gc.collect()
    return {"paths": {key: folder / f"{key}.xdf" for key in files}, "pushed_at": pushed_at}


@pytest.fixture(scope="module")
def full(recorded):
    return load_labelled_xdf([recorded["paths"]["full"]], synthetic_spec(), hop_s=1.0)


# ------------------------------------------------------------------ recorded files


def test_each_label_span_gives_windows_inside_it(full, recorded):
    # spans of 7.5 s with 5 s windows every 1 s: 3 windows each
    assert len(full) == 6
    start_1 = recorded["pushed_at"][0] - 0.5 - 7.5  # ts + offset_s - duration_s
    start_2 = recorded["pushed_at"][1] - 7.5
    expected = np.concatenate([start_1 + 5 + np.arange(3), start_2 + 5 + np.arange(3)])
    # the first sample of the recording was stamped at session time 0
    np.testing.assert_allclose(full.t_end_s, expected, atol=0.01)


def test_targets_are_the_normalised_label_distributions(full):
    labels = list(full.spec.labels)
    first = np.zeros(len(labels))
    first[labels.index("happiness")], first[labels.index("surprise")] = 0.75, 0.25
    second = np.zeros(len(labels))
    second[labels.index("fear")] = 1.0  # "Fear" matches "fear"
    np.testing.assert_allclose(full.targets[:3], np.tile(first, (3, 1)))
    np.testing.assert_allclose(full.targets[3:], np.tile(second, (3, 1)))


def test_trials_and_subjects_come_from_the_label_else_the_file(full):
    assert list(full.trials) == ["calm"] * 3 + ["full#2"] * 3
    assert list(full.subjects) == ["P07"] * 3 + ["full"] * 3


def test_subject_argument_applies_where_the_label_has_none(recorded):
    data = load_labelled_xdf([recorded["paths"]["full"]], synthetic_spec(), subject="P99")
    assert list(data.subjects) == ["P07"] * 3 + ["P99"] * 3


def test_every_modality_is_present_with_finite_features(full):
    assert full.spec.names == ("eeg", "gsr", "ppg", "face")
    assert full.present.all()
    assert full.values["eeg"].shape == (6, 32, 5)
    assert full.values["face"].shape == (6, 52 * 3)
    for name in full.spec.names:
        assert np.isfinite(full.values[name]).all(), name


def test_features_match_the_signals_that_were_pushed(full):
    """Features from the file equal those of the same synthetic session computed offline.

    Tolerances allow a one-sample shift of a window edge (per-stream clock
    corrections of a few microseconds), not a wrong channel, signal or time.
    """
    spec = synthetic_spec()
    session = SyntheticSession(EmotionScript.tour(segment_s=6.0), subject=3, seed=0)
    streams = {}
    for mod in spec.modalities:
        times, samples = session.read(mod.name, SESSION_S)
        cols = [SYNTHETIC_STREAMS[mod.name].channels.index(c) for c in mod.channels]
        streams[mod.name] = (times, samples[:, cols].astype(np.float32))
    offline, _ = features_from_recording(spec, streams, full.t_end_s)
    np.testing.assert_allclose(full.values["eeg"], offline["eeg"], atol=0.01)
    level = [0, 1, 3, 4]  # median, mean, min, max of the skin conductance
    np.testing.assert_allclose(full.values["gsr"][:, level], offline["gsr"][:, level], rtol=2e-3)
    np.testing.assert_allclose(full.values["ppg"][:, 2], offline["ppg"][:, 2], rtol=2e-2)
    np.testing.assert_allclose(full.values["face"][:, :52], offline["face"][:, :52], atol=5e-3)


def test_a_modality_without_a_stream_is_masked(recorded, caplog):
    with caplog.at_level(logging.WARNING):
        data = load_labelled_xdf([recorded["paths"]["noface"]], synthetic_spec())
    assert len(data) == 6
    face = data.spec.names.index("face")
    assert not data.present[:, face].any()
    assert np.isnan(data.values["face"]).all()
    assert data.present[:, [0, 1, 2]].all()
    assert "modality 'face' is masked in every window" in caplog.text


def test_several_files_make_one_data_set(recorded):
    paths = [recorded["paths"]["full"], recorded["paths"]["noface"]]
    data = load_labelled_xdf(paths, synthetic_spec())
    assert len(data) == 12
    assert set(data.trials) == {"calm", "full#2", "noface#2"}


def test_unknown_label_is_an_error_naming_file_and_sample(recorded):
    path = recorded["paths"]["badlabel"]
    with pytest.raises(
        DatasetError,
        match=r"badlabel\.xdf: EmotionLabels sample 2 of 2: "
        r"unknown label 'joy'",
    ):
        load_labelled_xdf([path], synthetic_spec())


def test_windows_past_the_end_of_the_data_are_dropped(recorded):
    data = load_labelled_xdf([recorded["paths"]["late"]], synthetic_spec())
    # windows end at 15..20 s; GSR runs until 17.4 s, so a 5 s window needs to end
    # by 18.4 s to hold 80 % of its samples: 15, 16, 17, 18 keep data, 19 and 20 not
    np.testing.assert_allclose(data.t_end_s, [15, 16, 17, 18], atol=0.01)
    assert data.present[:, data.spec.names.index("gsr")].all()


def test_labels_that_miss_the_recording_are_an_error(recorded):
    with pytest.raises(DatasetError, match=r"offside\.xdf: no labelled window holds data"):
        load_labelled_xdf([recorded["paths"]["offside"]], synthetic_spec())


def test_stream_that_does_not_fit_is_an_error(recorded):
    with pytest.raises(DatasetError, match=r"full\.xdf: face: stream 'gsr-.*has none of the model"):
        load_labelled_xdf(
            [recorded["paths"]["full"]], synthetic_spec(), stream_overrides={"face": "GSR"}
        )


def test_spans_shorter_than_a_window_are_an_error(recorded):
    spec = synthetic_spec(window_s=8.0)
    with pytest.raises(
        DatasetError,
        match=r"full\.xdf: no labelled span is long enough for "
        r"one 8 s window \(the longest of 2 lasts 7\.5 s\)",
    ):
        load_labelled_xdf([recorded["paths"]["full"]], spec)


def test_truncated_recording_is_an_error(recorded, tmp_path):
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(recorded["paths"]["full"].read_bytes()[:600])
    with pytest.raises(DatasetError, match=r"cut\.xdf: ") as info:
        load_labelled_xdf([cut], synthetic_spec())
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ other files


@pytest.mark.parametrize("name", ["minimal.xdf", "empty_streams.xdf"])
def test_labrecorder_examples_without_labels_are_refused(name):
    with pytest.raises(DatasetError, match=rf"{name}: no EmotionLabels stream"):
        load_labelled_xdf([FIXTURES / name], synthetic_spec())


def test_missing_file_and_non_xdf_file_are_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"absent\.xdf: no such file"):
        load_labelled_xdf([tmp_path / "absent.xdf"], synthetic_spec())
    notes = tmp_path / "notes.xdf"
    notes.write_text("not an XDF file\n")
    with pytest.raises(DatasetError, match=r"notes\.xdf: not a readable XDF file"):
        load_labelled_xdf([notes], synthetic_spec())


# ------------------------------------------------------------------ the JSON convention


def test_label_sample_round_trips_through_the_reader():
    text = label_sample(
        {"anger": 1, "sadness": 3}, duration_s=12.0, offset_s=-1.5, trial="clip03", subject="P01"
    )
    labels = synthetic_spec().labels
    span = parse_label_sample(text, labels)
    assert span.distribution[labels.index("anger")] == pytest.approx(0.25)
    assert span.distribution[labels.index("sadness")] == pytest.approx(0.75)
    assert span.distribution.sum() == pytest.approx(1.0)
    assert (span.trial, span.subject) == ("clip03", "P01")
    assert span.bounds_s(100.0) == (86.5, 98.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"distribution": {"anger": 1}}', "missing field 'duration_s'"),
        ('{"distribution": {"anger": 0}, "duration_s": 2}', "weights sum to 0"),
        ('{"distribution": {"anger": -1}, "duration_s": 2}', "must be a number >= 0"),
        ('{"distribution": {"anger": 1}, "duration_s": 0}', "duration_s must be a number > 0"),
        ('{"distribution": {"anger": 1}, "duration_s": 2, "ofset_s": 1}', r"unknown field\(s\)"),
        ("[1, 2]", "not a JSON object"),
        ("anger", "not a JSON object"),
    ],
)
def test_malformed_label_samples_are_refused(text, message):
    with pytest.raises(DatasetError, match=message):
        parse_label_sample(text, synthetic_spec().labels)


def test_label_sample_refuses_what_the_reader_would_refuse():
    with pytest.raises(ValueError, match="duration_s"):
        label_sample({"anger": 1}, duration_s=-1)
    with pytest.raises(ValueError, match="sum to 0"):
        label_sample({"anger": 0}, duration_s=1)


def test_training_windows_are_replay_windows_feature_for_feature(recorded, full):
    """A labelled recording's training windows, and the replay's windows at the same
    ends (ring buffers, the scheduler's cut): the same samples, so the same features
    (to float32 precision: the replay's buffers hold float32)."""
    path = recorded["paths"]["full"]
    spec = synthetic_spec()
    source = ReplaySource(path, spec)
    start = min(float(s.times[0]) for s in source.streams if len(s.times))
    ends = full.t_end_s + start
    scheduler = WindowScheduler(spec, source.feeds, ReplayClock(start, ends[-1], source.push_until))
    for i, t_end in enumerate(ends):
        source.seek(float(t_end))
        source.push_until(float(t_end))
        window_set = scheduler.cut(float(t_end))
        for mod in spec.modalities:
            window = window_set.windows[mod.name]
            assert window is not None, window_set.reasons
            values, ok, _ = extract_modality(mod, window[None], normalize=False)
            assert ok[0]
            np.testing.assert_allclose(
                values[0], full.values[mod.name][i], rtol=1e-4, atol=1e-4, err_msg=mod.name
            )

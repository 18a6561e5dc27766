"""Baselines marked on label streams in a group session: a participant's own label
stream calibrates that participant, a label stream that belongs to no participant (the
stimulus PC's markers) calibrates everyone; live, recorded, and in replay.

One live session of two simulated participants (~30 s, real time), grouped by their
description field, with a participant-normalised model whose warm-up (60 s) outlasts
the session, so that only the marked rests settle anyone's statistics:

- a shared EmotionLabels stream (no participant) marks a rest of 2-14 s for everyone;
- P01's own label stream marks its rest of 0-16 s (its device's script), later;
- P02 has no label stream of its own (and another lab's devices: 500 Hz EEG in volts
  with other labels and two electrodes missing, skin resistance, a 24-fps camera);
- the shared stream then labels a trial (16-22 s) for everyone.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid

import numpy as np
import pylsl
import pytest
from helpers import HOP_S

from helo.models.checkpoint import load_checkpoint, save_checkpoint
from helo.models.datasets.synthetic import EmotionScript
from helo.models.datasets.xdf_labels import label_sample
from helo.models.features.participant import FeatureNormaliser
from helo.models.features.spec import ParticipantNorm
from helo.streamer.config import ReplayOptions, SessionConfig, TimePoint
from helo.streamer.demo import DEMO_CHECKPOINT
from helo.streamer.sidecar import read_sidecar
from helo.streamer.sinks import MemorySink

REST_S, TRIAL_S = 16.0, 6.0
SHARED_REST = (2.0, 14.0)  # seconds of device time
SHARED_TRIAL = (16.0, 22.0)  # a trial labelled for everyone
SHARED_LABEL = {"happiness": 0.7, "surprise": 0.3}
SESSION_S = 20.0  # windows end from ~5 s after the session opened


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    demo = load_checkpoint(DEMO_CHECKPOINT)
    spec = demo.spec.with_normalisation("participant", ParticipantNorm(warmup_s=60.0))
    path = tmp_path_factory.mktemp("models") / "participant.safetensors"
    return save_checkpoint(path, demo.model, spec, demo.training)


@pytest.fixture(scope="module")
def group(model, tmp_path_factory):
    from helo.devices.synthetic import StreamStyle, SyntheticDevice, labels_stream_info
    from helo.streamer.session import LiveSession

    out = tmp_path_factory.mktemp("group-baseline")
    tag = f"gb-{uuid.uuid4().hex[:6]}"
    names = [f"{tag}-P01", f"{tag}-P02"]
    rng = np.random.default_rng(3)
    # P02 wears another lab's cap and camera (as in test_group_session)
    lab = StreamStyle(
        eeg_rate_hz=500.0,
        eeg_labels="prefixed",
        eeg_missing=("O1", "Fz"),
        eeg_unit="volts",
        gsr_unit="kiloohms",
        face_rate_hz=24.0,
    )
    devices = [
        SyntheticDevice(
            EmotionScript.random_trials(4, TRIAL_S, rng, rest_s=REST_S),
            subject=100 + i,
            seed=i,
            source_prefix=f"{tag}-{i + 1:02d}",
            participant=name,
            labels=i == 0,  # P01 marks its own rest; P02 has no label stream
            style=lab if i == 1 else None,
            chunk_s=0.04 if i == 1 else 0.02,
        )
        for i, name in enumerate(names)
    ]
    shared = pylsl.StreamOutlet(labels_stream_info(f"{tag}-stimuli"))
    for device in devices:
        device.start()
    t0 = devices[1].t0
    assert t0 is not None
    memory = MemorySink()
    config = SessionConfig(
        stdout=False,
        hop_s=HOP_S,
        resolve_timeout_s=8.0,
        checkpoint=model,
        participants_select=",".join(names),
        participants_by="desc",
        duration_s=SESSION_S,
        record=out / "group.xdf",
    )

    def mark_the_shared_spans():
        start, end = SHARED_REST
        while pylsl.local_clock() < t0 + end:
            time.sleep(0.05)
        shared.push_sample([label_sample(None, end - start, baseline=True)], t0 + end)
        start, end = SHARED_TRIAL
        while pylsl.local_clock() < t0 + end:
            time.sleep(0.05)
        label = label_sample(SHARED_LABEL, end - start, trial="film-1", subject="stimulus-pc")
        shared.push_sample([label], t0 + end)

    session = LiveSession(config, subscribers=[memory])
    try:
        with session:
            marker = threading.Thread(target=mark_the_shared_spans, daemon=True)
            marker.start()
            session.run()
            marker.join(5.0)
            state = {p: session.normaliser.state(p) for p in names}
            logged = {p: session.window_log.snapshot(participant=p) for p in names}
            spec = session.spec
    finally:
        for device in devices:
            device.stop()
    own_rest_end = devices[0].t0 + REST_S
    return {
        "names": names,
        "records": memory.records,
        "xdf": out / "group.xdf",
        "state": state,
        "logged": logged,
        "spec": spec,
        "shared_end": t0 + SHARED_REST[1],
        "shared_start": t0 + SHARED_REST[0],
        "own_start": devices[0].t0,
        "own_end": own_rest_end,
        "model": model,
    }


def _settled_at(records, participant: str) -> float:
    mine = [r for r in records if r.participant == participant]
    flags = np.array([r.calibrating for r in mine])
    assert flags[0], "the first windows are calibrating (the warm-up outlasts the session)"
    settle = int(np.flatnonzero(~flags)[0])
    assert (~flags[settle:]).all()  # once settled, it stays so
    return mine[settle].t_end


def test_the_shared_rest_settles_everyone_and_a_participants_own_rest_comes_after(group):
    p01, p02 = group["names"]
    for participant in (p01, p02):
        settled = _settled_at(group["records"], participant)
        # the label arrives over LSL a window or a few after the span's end
        assert group["shared_end"] - 1e-6 <= settled <= group["shared_end"] + 2.0
    spec = group["spec"]

    def calibrated_on(participant: str, start: float, end: float) -> dict:
        t_end, values, present = group["logged"][participant]
        inside = (t_end >= start + spec.max_window_s) & (t_end <= end)
        assert inside.sum() >= 4
        fresh = FeatureNormaliser(spec)
        fresh.recalibrate(t_end[inside], {k: v[inside] for k, v in values.items()}, present[inside])
        return fresh.state("").to_dict()

    def same(a: dict, b: dict) -> None:
        assert set(a["modalities"]) == set(b["modalities"])
        for modality in a["modalities"]:
            for key in ("mean", "m2", "weight"):
                np.testing.assert_allclose(
                    a["modalities"][modality][key], b["modalities"][modality][key]
                )

    # P01's statistics are those of its own rest (the later span), P02's of the shared one
    same(group["state"][p01].to_dict(), calibrated_on(p01, group["own_start"], group["own_end"]))
    same(
        group["state"][p02].to_dict(),
        calibrated_on(p02, group["shared_start"], group["shared_end"]),
    )


def test_the_recording_holds_the_shared_labels_and_everyones_state(group):
    from helo.models.xdf import read_recording

    streams = read_recording(group["xdf"])
    labels = [s for s in streams if s.description.type == "EmotionLabels"]
    assert sorted(s.description.participant for s in labels) == ["", group["names"][0]]
    sidecar = read_sidecar(group["xdf"])
    assert set(sidecar["end"]["normaliser"]["participants"]) == set(group["names"])
    from helo.streamer.replay_session import ReplaySession

    # without --checkpoint, a replay runs the model the live session ran (not the demo's)
    config = SessionConfig(stdout=False, lsl=False)
    with ReplaySession(config, ReplayOptions(group["xdf"])) as session:
        assert session.checkpoint.path == group["model"]


def _replay(path, model, participants: str | None = None, **options) -> list:
    from helo.streamer.replay_session import ReplaySession

    memory = MemorySink()
    config = SessionConfig(
        stdout=False, lsl=False, checkpoint=model, participants_select=participants
    )
    with ReplaySession(config, ReplayOptions(path, **options), [memory]) as session:
        session.run()
    return memory.records


def test_a_replay_without_the_sidecar_recalibrates_each_participant_on_the_recorded_rests(
    group, tmp_path
):
    """The replay reads the recorded label streams: everyone settles at the first window
    after the shared rest's end; a replay from a later point brings every participant's
    statistics forward over their rests and continues as the whole replay does."""
    bare = tmp_path / "bare.xdf"
    shutil.copy(group["xdf"], bare)
    replayed = _replay(bare, group["model"])
    alone = _replay(bare, group["model"], participants=group["names"][1])  # P02 only
    for participant in group["names"]:
        for records in (replayed, alone):
            mine = [r for r in records if r.participant == participant]
            if records is alone and participant != group["names"][1]:
                assert not mine
                continue
            ends = np.array([r.t_end for r in mine])
            flags = np.array([r.calibrating for r in mine])
            assert flags[ends < group["shared_end"] - 1e-6].all()
            assert not flags[ends >= group["shared_end"] - 1e-6].any()
    later = group["own_end"] + 2.0
    start = later - min(r.t_end for r in replayed)
    tail = _replay(bare, group["model"], start=TimePoint(start + 5.0))
    whole = {(r.participant, r.t_end): r for r in replayed}
    assert len(tail) > 10
    for r in tail:
        twin = whole[(r.participant, r.t_end)]
        assert r.calibrating == twin.calibrating
        if r.distribution is not None:  # features cut in other batches: float32 rounding
            np.testing.assert_allclose(r.distribution, twin.distribution, atol=1e-5)


def test_the_default_replay_gives_the_live_predictions_after_the_rests(group):
    """With the sidecar, every participant continues from the live session's statistics
    (as test_personal: the one-person tolerance, windows live cut short skipped)."""
    replayed = _replay(group["xdf"], group["model"])
    live = {(r.participant, round(r.t_end, 3)): r for r in group["records"]}
    for participant in group["names"]:
        diffs = []
        for r in replayed:
            twin = live.get((participant, round(r.t_end, 3)))
            if r.participant != participant or twin is None or r.t_end < group["own_end"] + 1:
                continue
            if r.distribution is None or twin.distribution is None or r.missing or twin.missing:
                continue
            assert not r.calibrating
            assert not twin.calibrating
            diffs.append(float(np.abs(r.distribution - twin.distribution).max()))
        assert len(diffs) > 5
        assert max(diffs) < 0.05
        assert np.median(diffs) < 0.002


def test_a_group_recording_is_training_data_with_a_subject_per_participant(group):
    """``xdf:`` data (train, adapt) of a group's recording: each participant's own streams
    and label spans, and the shared stream's spans for everyone (its subject field
    names no one of them); a participant with only rests is left out."""
    from helo.models.datasets.xdf_labels import load_labelled_xdf

    p02 = group["names"][1]
    data = load_labelled_xdf(group["xdf"], group["spec"], hop_s=0.5)
    subjects = set(data.subjects.tolist())
    assert subjects == {"sim100", p02}  # P01's labels name its subject; P02 has none
    film = data.trials == "film-1"
    assert set(data.subjects[film].tolist()) == subjects
    expected = [SHARED_LABEL.get(label, 0.0) for label in group["spec"].labels]
    np.testing.assert_allclose(data.targets[film], np.tile(expected, (int(film.sum()), 1)))
    assert set(data.trials[data.subjects == p02].tolist()) == {"film-1"}
    assert data.baseline is not None
    assert set(data.baseline.subjects.tolist()) == subjects  # the rests seed each of them


def test_a_members_personal_model_runs_beside_the_others_in_one_batch(group, tmp_path):
    """``streamer adapt`` on the group's recording makes P01's personal model; replayed
    with it for P01 only, P01's predictions are the personal model's (to float
    rounding: its calibration applied to the inputs instead of folded into the
    encoders) and P02's are untouched, bit for bit."""
    from helo.streamer.cli import main
    from helo.streamer.replay_session import ReplaySession

    p01, p02 = group["names"]
    personal = tmp_path / "p01.safetensors"
    code = main(
        [
            "adapt",
            "--checkpoint",
            str(group["model"]),
            "--data",
            f"xdf:{group['xdf']}",
            "--participant",
            "sim100",
            "--out",
            str(personal),
        ]
    )
    assert code == 0
    memory = MemorySink()
    config = SessionConfig(
        stdout=False, lsl=False, checkpoint=group["model"], personal={p01: str(personal)}
    )
    with ReplaySession(config, ReplayOptions(group["xdf"]), [memory]) as session:
        session.run()
        assert session.session_state()["personal"] == {p01: str(personal)}
    beside = memory.records
    base = _replay(group["xdf"], group["model"])
    alone = _replay(group["xdf"], personal)  # everyone through P01's model: P01's rows
    assert len(beside) == len(base) == len(alone) > 40
    moved = []
    for mixed, plain, own in zip(beside, base, alone, strict=True):
        assert (mixed.participant, mixed.t_end) == (plain.participant, plain.t_end)
        if mixed.distribution is None:
            continue
        if mixed.participant == p02:
            np.testing.assert_array_equal(mixed.distribution, plain.distribution)
        else:
            np.testing.assert_allclose(mixed.distribution, own.distribution, atol=1e-5)
            moved.append(np.abs(mixed.distribution - plain.distribution).max())
    assert max(moved) > 1e-3  # the calibration does change P01's predictions


def test_a_personal_model_that_cannot_share_the_batch_is_one_line(group, tmp_path, capsys):
    from helo.models.errors import HeloError
    from helo.streamer.cli import main
    from helo.streamer.replay_session import ReplaySession

    p01 = group["names"][0]
    head = tmp_path / "head.safetensors"
    data = ["--data", f"xdf:{group['xdf']}", "--participant", "sim100", "--out", str(head)]
    assert main(["adapt", "--checkpoint", str(group["model"]), "--train", "head", *data]) == 0
    cases = [
        ("P09", str(group["model"]), "not in the group"),
        (p01, str(group["model"]), "not a personal model"),
        (p01, str(head), "its layers were fine-tuned"),
    ]
    for participant, path, says in cases:
        config = SessionConfig(
            stdout=False, lsl=False, checkpoint=group["model"], personal={participant: path}
        )
        with pytest.raises(HeloError, match=says) as caught:
            ReplaySession(config, ReplayOptions(group["xdf"])).open()
        assert "\n" not in str(caught.value)
    capsys.readouterr()
    assert main(["replay", str(group["xdf"]), "--personal", str(head)]) != 0
    assert "expected PARTICIPANT=MODEL" in capsys.readouterr().err

"""A participant-normalised model in a live session, its replay, training from its
recording, and personal models: from the recording (``streamer adapt``) and from the
running session (switched to without reopening a stream).

One live session (~39 s, real time): the synthetic device rests 12 s (the baseline),
then runs 4 labelled trials of 6.5 s, publishing an EmotionLabels sample at the end
of each; LabRecorder records everything.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import session_config
from safetensors import safe_open

from helo.devices.synthetic import SyntheticDevice
from helo.models.checkpoint import load_checkpoint, save_checkpoint
from helo.models.datasets.synthetic import EmotionScript
from helo.models.datasets.windows import BaselineWindows, WindowDataset
from helo.models.datasets.xdf_labels import load_labelled_xdf
from helo.models.errors import HeloError
from helo.models.evaluation import predict
from helo.models.features.spec import ParticipantNorm, spec_difference
from helo.models.xdf import read_recording
from helo.streamer.cli import main
from helo.streamer.demo import DEMO_CHECKPOINT
from helo.streamer.personal_session import labelled_trials, make_personal_model
from helo.streamer.replay import ReplaySource
from helo.streamer.session import LiveSession
from helo.streamer.sidecar import read_sidecar
from helo.streamer.sinks import MemorySink, read_jsonl

# The rest is long enough for whole windows in the recording even when opening the
# session (resolve, LabRecorder) takes 6 s under load: the replay recalibrates on them.
REST_S, TRIAL_S, TRIALS = 12.0, 6.5, 4
SESSION_S = REST_S + TRIALS * TRIAL_S + 1.0
WARMUP_S = 14.0


@pytest.fixture(scope="module")
def participant_checkpoint(tmp_path_factory) -> Path:
    """The demo model's weights with participant normalisation (a 14 s warm-up): the
    mechanics are what is tested here, not the accuracy."""
    demo = load_checkpoint(DEMO_CHECKPOINT)
    spec = demo.spec.with_normalisation("participant", ParticipantNorm(warmup_s=WARMUP_S))
    path = tmp_path_factory.mktemp("models") / "participant.safetensors"
    return save_checkpoint(path, demo.model, spec, demo.training)


@pytest.fixture(scope="module")
def session(participant_checkpoint, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("personal")
    rng = np.random.default_rng(4)
    script = EmotionScript.random_trials(TRIALS + 1, TRIAL_S, rng, rest_s=REST_S)
    memory = MemorySink()
    personal: dict = {}
    device = SyntheticDevice(script, subject=7, source_prefix=f"test-{uuid.uuid4().hex[:8]}")
    with device:
        config = session_config(
            device,
            checkpoint=participant_checkpoint,
            duration_s=SESSION_S - 5.0,  # windows end from 5 s on
            record=out / "session.xdf",
            labels_stream=f"{device.source_prefix}-labels",
            baseline_s=REST_S,
        )
        live = LiveSession(config, subscribers=[memory])
        with live:
            thread = threading.Thread(target=live.run)
            thread.start()
            personal.update(_personal_model_midway(live, out))
            thread.join(SESSION_S + 30)
            trials = labelled_trials(live)
    return {
        "records": memory.records,
        "xdf": out / "session.xdf",
        "out": out,
        "personal": personal,
        "trials": trials,
        "checkpoint": participant_checkpoint,
    }


def _personal_model_midway(live: LiveSession, out: Path) -> dict:
    """Once 2 trials are labelled: a personal model from the session, switched to."""
    deadline = time.monotonic() + SESSION_S
    while time.monotonic() < deadline:
        reader = live.label_reader
        if reader is not None and sum(not s[2].baseline for s in reader.spans()) >= 2:
            break
        time.sleep(0.2)
    # Windows ending before this were predicted by the base model (adapting takes far
    # longer than a window's processing); later ones may already be the personal one's.
    base_until = live.now()
    path, result = make_personal_model(live, out=out / "midway.safetensors")
    switched_at = live.now()
    return {
        "path": path,
        "result": result,
        "base_until": base_until,
        "switched_at": switched_at,
        "model": live.checkpoint,
    }


def test_the_rest_marked_on_the_label_stream_is_the_calibration(session):
    """The session was told --baseline 12 and the model warms up over 14 s, but the
    label stream marks the rest (0-12 s) when it ends: from then on the statistics are
    those of the rest's windows and predictions are no longer flagged calibrating."""
    records = session["records"]
    assert len(records) > 40
    flags = np.array([r.calibrating for r in records])
    assert flags[0]
    assert not flags[-1]
    settle = np.flatnonzero(~flags)[0]
    assert (~flags[settle:]).all()  # once settled, it stays so
    seen = records[settle].t_end - records[0].t_end + 5.0
    assert REST_S <= seen <= REST_S + 2.0  # the label arrives a window or a few late
    for record in records:
        assert record.distribution is None or np.isfinite(record.distribution).all()


def test_a_replay_without_the_sidecar_recalibrates_on_the_recorded_rest(session, tmp_path):
    bare = tmp_path / "bare.xdf"
    shutil.copy(session["xdf"], bare)
    rows = _replay(bare, tmp_path / "r.jsonl", session["checkpoint"])
    ends = np.array([r["t_end_lsl"] for r in rows])
    flags = np.array([r["calibrating"] for r in rows])
    rest = next(s for s in read_recording(bare) if s.description.type == "EmotionLabels")
    rest_end = float(rest.times[0])  # the first label is the rest, pushed when it ended
    assert flags[ends < rest_end - 1e-6].all()
    assert not flags[ends >= rest_end - 1e-6].any()  # from the first window after its end


def test_the_recording_holds_the_labels_and_a_sidecar_with_the_session_state(session):
    types = {s.description.type for s in read_recording(session["xdf"])}
    assert {"EEG", "EmotionLabels", "EmotionDistribution"} <= types
    sidecar = read_sidecar(session["xdf"])
    assert sidecar["start"]["normalisation"] == "participant"
    assert sidecar["start"]["baseline_s"] == REST_S
    assert sidecar["end"]["normaliser"]["participants"][""]["seen_s"] > 20


def test_a_personal_model_made_in_the_session_is_switched_to(session):
    personal = session["personal"]
    assert Path(personal["path"]).exists()
    assert personal["model"].path == Path(personal["path"])
    result = personal["result"]
    assert result.participant == "sim7"
    assert len(result.trials) + len(result.validation_trials) >= 2
    after = [r for r in session["records"] if r.t_end > personal["switched_at"] + 1.0]
    assert after, "the session went on after the switch"
    assert all(r.distribution is not None for r in after[-5:])
    training = json.loads(safe_open(str(personal["path"]), "pt").metadata()["training"])
    assert training["personal"]["source"] == "live session"
    assert training["personal"]["base_model"].endswith("participant.safetensors")


def test_training_windows_of_the_recording_normalise_as_its_replay(session, tmp_path):
    """Training's path (features cut from the whole recording, the rest span as the
    data set's baseline, participant statistics by ``model_inputs``) and the replay's
    (ring buffers, the worker's normaliser, the rest span read from the label stream)
    give the same predictions for the same windows, from the end of the rest on."""
    ckpt = load_checkpoint(session["checkpoint"])
    bare = tmp_path / "bare.xdf"  # without its sidecar: the replay computes it all
    shutil.copy(session["xdf"], bare)
    replayed = _replay(bare, tmp_path / "r.jsonl", session["checkpoint"])
    ends = np.array([r["t_end_lsl"] for r in replayed])
    source = ReplaySource(bare, ckpt.spec)
    values, present = source.raw_features(ends)
    label = next(s for s in source.streams if s.description.type == "EmotionLabels")
    rest_end = float(label.times[0])
    rest = (ends >= ends[0]) & (ends <= rest_end + 1e-9)
    data = WindowDataset(
        spec=ckpt.spec,
        values=values,
        present=present,
        targets=np.full((len(ends), 6), 1 / 6),
        subjects=np.array(["p"] * len(ends)),
        trials=np.array(["t"] * len(ends)),
        t_end_s=ends,
        baseline=BaselineWindows(
            {k: v[rest] for k, v in values.items()},
            present[rest],
            np.array(["p"] * rest.sum()),
            ends[rest],
        ),
    )
    after = ends >= rest_end - 1e-6
    trained_way = predict(ckpt.model, ckpt.spec, data)[after]
    replay_way = np.array([list(r["distribution"].values()) for r in replayed])[after]
    assert len(replay_way) > 40
    # The same samples, features and statistics: the windows agree to float32 rounding
    # (~1e-6). Until 2026-12-06 the JSONL held window ends to 6 decimals, and a window
    # re-cut at a rounded end could take one sample more or less where a sample lay
    # within 5e-7 s of its edge (up to 1.6e-2 in a probability, through a rest's small
    # GSR spread): the flaky failure of this test under CI.
    assert np.abs(replay_way - trained_way).max() < 1e-4
    assert not any(r["calibrating"] for r, a in zip(replayed, after, strict=True) if a)


@pytest.mark.parametrize("times", [("--times", "recorded"), ()], ids=["recorded", "default"])
def test_replay_at_the_recorded_times_reproduces_the_live_predictions(session, tmp_path, times):
    """With the sidecar's state and the live window ends (recorded, or the default
    replay's, on the session's grid), the replay's participant statistics are the live
    ones from the window where they settled (the same tolerance as the global model's
    replay test: the windows' samples differ at their edges between liblsl's and
    pyxdf's clock synchronisation)."""
    replayed = _replay(session["xdf"], tmp_path / "r.jsonl", session["checkpoint"], *times)
    switched = session["personal"]["base_until"]
    live = {round(r.t_end, 3): r for r in session["records"] if r.distribution is not None}
    recorded = {s.description.type: s for s in read_recording(session["xdf"])}
    starts = max(recorded[t].times[0] for t in ("EEG", "GSR", "PPG", "FaceBlendshapes"))
    diffs = []
    for row in replayed:
        t = row["t_end_lsl"]
        match = live.get(round(t, 3))
        if match is None or t - 5.0 < starts or t > switched:  # after: the personal model
            continue
        assert row["calibrating"] == match.calibrating
        if match.calibrating:  # recomputed from a recording that began late: close only
            continue
        diffs.append(
            np.abs(np.array(list(row["distribution"].values())) - match.distribution).max()
        )
    assert len(diffs) >= 6
    assert max(diffs) < 0.05
    assert np.median(diffs) < 0.002


def test_streamer_adapt_makes_a_personal_model_from_the_recording(session, tmp_path, capsys):
    out = tmp_path / "p07.safetensors"
    started = time.perf_counter()
    code = main(
        [
            "adapt",
            "--checkpoint",
            str(session["checkpoint"]),
            "--data",
            f"xdf:{session['xdf']}",
            "--hop",
            "0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert time.perf_counter() - started < 120
    assert "personal model:" in capsys.readouterr().out
    personal = load_checkpoint(out)
    base = load_checkpoint(session["checkpoint"])
    assert personal.spec == base.spec
    provenance = personal.training["personal"]
    assert provenance["participant"] == "sim7"
    assert provenance["base_model"] == str(session["checkpoint"])
    assert len(provenance["trials"]) + len(provenance["validation_trials"]) == TRIALS
    assert provenance["base_weights_sha256"]
    data = load_labelled_xdf([session["xdf"]], base.spec, hop_s=0.5)
    assert data.baseline is not None  # the rest span seeds the statistics
    moved = [
        not np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(
            personal.model.state_dict().values(), base.model.state_dict().values(), strict=True
        )
    ]
    # never worse than its base on the held-out trials: the base's weights are kept
    # when no epoch beats them
    assert provenance["kl_after"] <= provenance["kl_before"] + 1e-6
    assert any(moved) == (provenance["best_epoch"] > 0)


def test_a_model_of_other_inputs_is_refused_in_one_line(session, tmp_path):
    base = load_checkpoint(session["checkpoint"])
    other_spec = replace(base.spec, labels=("a", "b", "c", "d", "e", "f"))
    other = save_checkpoint(tmp_path / "other.safetensors", base.model, other_spec, {})
    line = _cli_error("adapt", "--checkpoint", str(other), "--data", f"xdf:{session['xdf']}")
    assert "labels" in line
    # a personal model whose inputs the recording's streams do not have: one line
    eeg = base.spec.modality("eeg")
    other_cap = replace(eeg, channels=tuple(f"X{i}" for i in range(len(eeg.channels))))
    odd_spec = replace(base.spec, modalities=(other_cap, *base.spec.modalities[1:]))
    odd = save_checkpoint(tmp_path / "odd.safetensors", base.model, odd_spec, {})
    line = _cli_error(
        "replay",
        str(session["xdf"]),
        "--checkpoint",
        str(odd),
        "--quiet",
        "--output",
        str(tmp_path / "o.jsonl"),
        "--max-interpolated",
        "0",
    )
    assert "eeg" in line
    # a session refuses to switch to a model that normalises another way
    global_spec = load_checkpoint(DEMO_CHECKPOINT).spec
    assert spec_difference(base.spec, global_spec) == (
        "global normalisation instead of participant"
    )
    assert spec_difference(base.spec, base.spec) is None


def _cli_error(*args: str) -> str:
    """The last line of a command that fails, checked to be no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "helo.streamer.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def _replay(xdf: Path, out: Path, checkpoint: Path, *extra: str) -> list[dict]:
    args = ["replay", str(xdf), "--checkpoint", str(checkpoint), "--output", str(out), "--quiet"]
    assert main([*args, *extra]) == 0
    return read_jsonl(out)


def test_adapt_needs_one_participant_and_names_the_choice(tiny_dataset, participant_checkpoint):
    from helo.models.personal import adapt_model

    base = load_checkpoint(participant_checkpoint)
    with pytest.raises(HeloError, match=r"the data hold 4 participants .*choose one with"):
        adapt_model(base, tiny_dataset)
    with pytest.raises(HeloError, match="participant 'P99' is not in the data"):
        adapt_model(base, tiny_dataset, participant="P99")


def test_an_input_calibration_folds_into_the_encoders_exactly():
    """The personal model reads raw features as the calibrated base model reads
    calibrated ones (within float32 rounding), present modalities or absent."""
    from helo.models.input_calibration import calibrated, fold_into_encoders, identity

    model = load_checkpoint(DEMO_CHECKPOINT).model.eval()
    g = torch.Generator().manual_seed(0)
    calibration = {
        name: (0.3 * torch.randn(s.shape, generator=g), 0.3 * torch.randn(s.shape, generator=g))
        for name, (s, _) in identity(model).items()
    }
    feats = {m.name: torch.randn(12, *m.shape, generator=g) for m in model.config.modalities}
    present = torch.ones(12, len(model.config.modalities), dtype=torch.bool)
    present[3, 1] = present[5, -1] = False
    folded = copy.deepcopy(model)
    fold_into_encoders(folded, calibration)
    with torch.no_grad():
        want = model(calibrated(feats, calibration), present)
        got = folded(feats, present)
    torch.testing.assert_close(got, want, atol=2e-4, rtol=1e-4)


def test_adapt_by_default_fits_the_inputs_and_moves_only_the_encoders_first_layers(
    tiny_dataset, participant_checkpoint
):
    from helo.models.personal import adapt_model

    base = load_checkpoint(participant_checkpoint)
    result = adapt_model(base, tiny_dataset, participant=str(tiny_dataset.subjects[0]))
    assert result.config.moving == "inputs"
    assert result.in_sample
    assert result.kl_after is not None
    assert result.kl_before is not None
    assert result.kl_after < result.kl_before  # on the trials it fitted
    assert "trial(s) fitted" in result.checked_on()
    before, after = base.model.state_dict(), result.model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved
    assert all(k.startswith("encoders.") and ".linear." in k for k in moved)


def test_mixed_windows_keep_distributions_and_a_modality_each():
    """Mixup in the calibration: labels stay distributions, a modality counts where both
    windows of a pair have it, and a pair sharing none stays the first window."""
    from helo.models.input_calibration import mixed

    rng = np.random.default_rng(0)
    n = 64
    targets = torch.as_tensor(rng.dirichlet(np.ones(6), n), dtype=torch.float32)
    present = torch.as_tensor(rng.random((n, 3)) < 0.5)
    present[~present.any(dim=1), 0] = True
    feats = {"a": torch.randn(n, 4, 5), "b": torch.randn(n, 7)}
    out, both, mixed_targets = mixed(feats, present, targets, 0.2, rng)
    torch.testing.assert_close(mixed_targets.sum(dim=1), torch.ones(n))
    assert (mixed_targets >= 0).all()
    assert both.any(dim=1).all()
    assert not (both & ~present).any()  # never a modality the window lacked
    assert out["a"].shape == feats["a"].shape
    # two windows of disjoint modalities: whoever is whose partner, neither is mixed
    alone = torch.tensor([[True, False, False], [False, True, True]])
    out, both, mixed_targets = mixed(
        {k: v[:2] for k, v in feats.items()}, alone, targets[:2], 0.2, rng
    )
    assert torch.equal(both, alone)
    assert torch.equal(out["a"], feats["a"][:2])
    assert torch.equal(mixed_targets, targets[:2])

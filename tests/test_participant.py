"""Participant normalisation: causal, hop-independent, robust, seeded by a baseline,
flagged while calibrating; the same code for data sets and sessions."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from helo.models.errors import FeatureError
from helo.models.features.extract import fit_normalization, normalize_values
from helo.models.features.participant import (
    FeatureNormaliser,
    ParticipantState,
    normalise_sequences,
)
from helo.models.features.spec import FeatureSpec, ParticipantNorm
from helo.models.training import model_inputs


@pytest.fixture(scope="module")
def fitted(tiny_dataset):
    spec = fit_normalization(tiny_dataset.spec, tiny_dataset.values, tiny_dataset.present)
    return spec, spec.with_normalisation("participant")


def test_the_spec_says_how_it_normalises_and_old_specs_are_global(fitted):
    spec, personal = fitted
    again = FeatureSpec.from_json(personal.to_json())
    assert again.per_participant
    assert again.participant_norm == personal.participant_norm
    data = json.loads(spec.to_json())
    data.pop("normalisation")
    assert FeatureSpec.from_dict(data).normalisation == "global"  # specs before this field
    with pytest.raises(FeatureError, match="normalisation must be one of"):
        FeatureSpec.from_dict({**data, "normalisation": "subject"})
    with pytest.raises(FeatureError, match="participant_norm has unknown field"):
        FeatureSpec.from_dict({**data, "participant_norm": {"warmup": 3}})


def test_a_window_never_depends_on_later_windows(fitted, tiny_dataset):
    _, spec = fitted
    data = tiny_dataset
    before = normalise_sequences(spec, data.values, data.present, data.t_end_s, data.subjects)
    subject = data.subjects[0]
    rows = np.flatnonzero(data.subjects == subject)
    cut = rows[len(rows) // 2]
    changed = {k: v.copy() for k, v in data.values.items()}
    for values in changed.values():
        values[cut:] *= 3.0  # every later window (this subject's and the others')
    after = normalise_sequences(spec, changed, data.present, data.t_end_s, data.subjects)
    for name in spec.names:
        np.testing.assert_array_equal(before.values[name][:cut], after.values[name][:cut])
        assert not np.allclose(
            np.nan_to_num(before.values[name][cut]), np.nan_to_num(after.values[name][cut])
        )


def test_statistics_do_not_depend_on_the_hop(fitted):
    """The same person seen at a hop of 0.25 s or 1 s: the same statistics (weights
    are seconds of new signal, not windows)."""
    _, spec = fitted
    spec = replace(spec, participant_norm=ParticipantNorm(freeze=False))  # always running
    mod = spec.modality("gsr")
    spread = np.asarray(mod.norm_std)
    level = np.asarray(mod.norm_mean) + 3 * spread  # far from the population
    stats = {}
    for hop in (0.25, 1.0):
        state = ParticipantState(spec.select(["gsr"]), warmup_s=60)
        for t in np.arange(5.0, 605.0, hop):  # a slow swing around the person's level
            x = level + spread * np.sin(2 * np.pi * t / 40.0)
            state.add(t, {"gsr": x}, np.array([True]))
        stats[hop] = (state.stats["gsr"].mean, state.stats["gsr"].std)
    np.testing.assert_allclose(stats[0.25][0], stats[1.0][0], atol=0.02 * spread.max())
    np.testing.assert_allclose(stats[0.25][1], stats[1.0][1], rtol=0.05)
    assert np.all(np.abs(stats[1.0][0] - level) < 0.25 * spread)  # the prior has faded


def test_frozen_statistics_are_those_of_the_calibration(fitted):
    """The default: gathered over the warm-up (or the baseline), then a fixed reference."""
    _, spec = fitted
    spec = replace(spec, participant_norm=ParticipantNorm(warmup_s=20.0))
    gsr = spec.select(["gsr"])
    level = np.asarray(spec.modality("gsr").norm_mean)
    for baseline_s, settles_at in ((0.0, 20.0), (40.0, 40.0)):
        normaliser = FeatureNormaliser(gsr, baseline_s=baseline_s)
        state = normaliser.state()
        moved_after = []
        for t in np.arange(5.0, 120.0, 1.0):
            before = state.stats["gsr"].mean.copy()
            seen = state.seen
            normaliser.apply(np.array([t]), {"gsr": (level + t)[None]}, np.ones((1, 1), bool))
            if not np.array_equal(before, state.stats["gsr"].mean):
                moved_after.append(seen)
        assert max(moved_after) < settles_at  # nothing counts once calibrated
        assert min(moved_after) == 0.0


def test_a_glitch_moves_the_statistics_by_at_most_the_clip(fitted):
    _, spec = fitted
    gsr = spec.select(["gsr"])
    state = ParticipantState(gsr, warmup_s=60)
    mean0 = state.stats["gsr"].mean.copy()
    std0 = state.stats["gsr"].std.copy()
    weight0 = state.stats["gsr"].weight
    state.add(5.0, {"gsr": np.full(28, 1e9)}, np.array([True]))
    step = state.stats["gsr"].mean - mean0
    bound = spec.participant_norm.clip * std0 * 5.0 / (weight0 + 5.0)
    assert np.all(np.abs(step) <= bound * (1 + 1e-9))
    assert np.isfinite(state.stats["gsr"].std).all()


def test_windows_are_calibrating_until_the_warm_up_or_the_baseline_is_over(fitted):
    _, spec = fitted
    spec = replace(spec, participant_norm=ParticipantNorm(warmup_s=20.0))
    ends = 5.0 + np.arange(0, 40, 1.0)  # windows of 5 s, hop 1 s: 5 s seen, then +1 s each
    raw = {m.name: np.zeros((len(ends), *m.feature_shape)) for m in spec.modalities}
    present = np.ones((len(ends), len(spec.names)), dtype=bool)
    for baseline_s, settled_from in ((0.0, 20.0), (30.0, 30.0)):
        flags = FeatureNormaliser(spec, baseline_s=baseline_s).apply(ends, raw, present)
        seen = ends - ends[0] + 5.0
        np.testing.assert_array_equal(flags.calibrating, seen < settled_from)
    # a model normalised to its population: values as before, the baseline still flags
    global_spec = spec.with_normalisation("global")
    batch = FeatureNormaliser(global_spec, baseline_s=10.0).apply(ends, raw, present)
    assert batch.calibrating[:5].all()
    assert not batch.calibrating[6:].any()
    mod = global_spec.modality("eeg")
    np.testing.assert_allclose(batch.values["eeg"], normalize_values(mod, raw["eeg"]), atol=1e-6)


def test_a_saved_state_continues_exactly(fitted, tiny_dataset):
    _, spec = fitted
    ends, values, present = _first_subject(tiny_dataset)
    whole = FeatureNormaliser(spec).apply(ends, values, present)
    first = FeatureNormaliser(spec)
    first.apply(ends[:10], {k: v[:10] for k, v in values.items()}, present[:10])
    second = FeatureNormaliser(spec)
    second.load(json.loads(json.dumps(first.to_dict())))  # through JSON, as a sidecar
    rest = second.apply(ends[10:], {k: v[10:] for k, v in values.items()}, present[10:])
    for name in spec.names:
        np.testing.assert_allclose(rest.values[name], whole.values[name][10:], atol=1e-5)


def test_a_baseline_seeds_the_participants_statistics(fitted, tiny_dataset):
    _, spec = fitted
    data = tiny_dataset
    assert data.baseline is not None
    assert len(data.baseline.t_end_s)
    seeded = model_inputs(data, spec)
    plain = model_inputs(replace(data, baseline=None), spec)
    first = np.flatnonzero(data.subjects == data.subjects[0])[0]
    assert not np.allclose(seeded["gsr"][first], plain["gsr"][first])
    # the global way ignores the baseline: one z-score for everyone
    global_spec = spec.with_normalisation("global")
    np.testing.assert_array_equal(
        np.nan_to_num(model_inputs(data, global_spec)["gsr"]),
        np.nan_to_num(model_inputs(replace(data, baseline=None), global_spec)["gsr"]),
    )


def test_a_participants_offset_is_taken_out(fitted):
    """What it is for: two people alike but for a constant offset of every feature (a
    tonic skin conductance, a band power): against the population statistics they sit
    apart; against their own calibrated statistics they nearly coincide."""
    spec, personal = fitted
    gsr = personal.select(["gsr"])
    mod = gsr.modality("gsr")
    spread = np.asarray(mod.norm_std)
    ends = np.arange(5.0, 200.0, 1.0)
    swing = np.sin(2 * np.pi * ends / 30.0)[:, None] * spread * 0.5
    person = np.asarray(mod.norm_mean) + swing
    present = np.ones((len(ends), 1), dtype=bool)
    apart = {}
    for name, s in (("global", spec.select(["gsr"])), ("participant", gsr)):
        a = FeatureNormaliser(s).apply(ends, {"gsr": person}, present).values["gsr"]
        b = FeatureNormaliser(s).apply(ends, {"gsr": person + 2 * spread}, present).values["gsr"]
        apart[name] = float(np.abs(a - b)[100:].mean())  # after the calibration
    assert apart["global"] == pytest.approx(2.0, rel=1e-3)
    assert apart["participant"] < 0.5 * apart["global"], apart


def test_a_replay_takes_over_the_live_calibration_where_it_settled(fitted, tiny_dataset):
    """A recording often lacks the first seconds a live session calibrated on (the
    recorder subscribes late): from the window where the live statistics settled, the
    replay uses them, so every settled window is normalised exactly as live."""
    _, spec = fitted
    spec = replace(spec, participant_norm=ParticipantNorm(warmup_s=15.0))
    ends, values, present = _first_subject(tiny_dataset)
    live = FeatureNormaliser(spec)
    live_out = live.apply(ends, values, present)
    settled_at = live.state().settled_at
    assert settled_at is not None
    replay = FeatureNormaliser(spec)
    replay.pin(json.loads(json.dumps(live.to_dict())))
    late = 3  # the recording starts three windows late
    out = replay.apply(ends[late:], {k: v[late:] for k, v in values.items()}, present[late:])
    settled = ends[late:] >= settled_at
    assert settled.any()
    assert not out.calibrating[settled].any()
    for name in spec.names:
        np.testing.assert_array_equal(
            out.values[name][settled], live_out.values[name][late:][settled]
        )


def test_a_pin_at_the_first_window_of_a_batch_is_taken_over_too(fitted, tiny_dataset):
    """The live calibration settled exactly where a replay's batch starts."""
    _, spec = fitted
    ends, values, present = _first_subject(tiny_dataset)
    live = FeatureNormaliser(spec)
    live.apply(ends, values, present)
    settled_at = live.state().settled_at
    at = int(np.searchsorted(ends, settled_at))
    replay = FeatureNormaliser(spec)
    replay.pin(live.to_dict())
    replay.apply(ends[:at], {k: v[:at] for k, v in values.items()}, present[:at])
    out = replay.apply(ends[at:], {k: v[at:] for k, v in values.items()}, present[at:])
    assert not out.calibrating.any()
    np.testing.assert_array_equal(replay.state().stats["gsr"].mean, live.state().stats["gsr"].mean)


def _first_subject(data):
    """One participant's windows in order: (ends, raw values, present)."""
    rows = np.flatnonzero(data.subjects == data.subjects[0])
    return data.t_end_s[rows], {k: v[rows] for k, v in data.values.items()}, data.present[rows]

"""The comparison report: every row trained under one protocol, rendered as markdown."""

from __future__ import annotations

import numpy as np

from helo.models.personal import change_interval
from helo.models.report import default_variants, render_markdown, run_report, variants_of
from helo.models.training import TrainConfig


def test_report_has_every_row_and_says_how_helo_compares(tiny_dataset):
    base = TrainConfig(
        epochs=1,
        batch_size=64,
        seed=0,
        threads=2,
        model_options={"d_model": 16, "dropout": 0.1, "dropkey": 0.1},
    )
    result = run_report(
        tiny_dataset, base, "subject", 2, progress=False, log=lambda _: None, personal_ks=(1, 2, 3)
    )
    names = [v.name for v in default_variants(tiny_dataset.spec.names)]
    assert list(result.rows) == names
    assert {
        "HeLo, participant normalisation",
        "Concatenation MLP, participant normalisation",
    } <= set(names)
    # k = 3 leaves no trial to score on (3 per subject): no row rather than a wrong one
    assert [row.k for row in result.personal] == [1, 2]
    for row in result.personal:
        assert row.n_participants == 4
        assert 0.0 <= row.personal["kl"] < 10.0
        # the pooled change is a mean of the participants' own, weighted by their KL;
        # so is every resampled one
        assert len(row.per_participant) == 4
        low, high = row.kl_change_interval
        assert min(row.per_participant) - 1e-9 <= low <= row.kl_change + 1e-9
        assert row.kl_change - 1e-9 <= high <= max(row.per_participant) + 1e-9
    assert "HeLo as published (shared EEG encoder, T @ Phys)" in names
    assert {"HeLo, eeg only", "HeLo, face only", "Concatenation MLP"} <= set(names)
    for row in result.rows.values():
        assert row["n"] > 0
        assert 0.0 <= row["kl"] < 10.0
    text = render_markdown(result)
    assert "| HeLo as published (shared EEG encoder, T @ Phys) |" in text
    assert "## How much HeLo improves on each row" in text
    assert "HeLo is better than the concatenation MLP on " in text
    assert "## Personal adaptation (streamer adapt) with k labelled trials" in text
    assert "95 % interval (participants resampled)" in text
    assert "global normalisation" in text  # the training line says how it normalised


def test_a_report_of_only_the_personal_rows_trains_no_other_row(tiny_dataset):
    base = TrainConfig(epochs=1, batch_size=64, seed=0, threads=2, model_options={"d_model": 16})
    variants = variants_of("personal", tiny_dataset.spec.names, base.normalisation)
    assert variants == []
    result = run_report(
        tiny_dataset, base, "subject", 2, variants, False, lambda _: None, personal_ks=(2,)
    )
    assert result.rows == {}
    assert {row.moving for row in result.personal} >= {"inputs"}
    text = render_markdown(result)
    assert "## Personal adaptation (streamer adapt)" in text
    assert "HeLo is better" not in text


def test_the_interval_of_a_personal_change_resamples_participants():
    base = np.array([10.0, 20.0, 30.0, 40.0])
    personal = np.array([5.0, 22.0, 24.0, 30.0])  # -50, +10, -20, -25 %
    low, high = change_interval(base, personal)
    assert -50.0 <= low < -19.0 < high <= 10.0  # -19 %: the pooled change
    assert change_interval(base, personal) == (low, high)  # fixed draws: a report repeats
    assert all(np.isnan(change_interval(base[:1], personal[:1])))


def _rows(helo: dict[str, float], mlp: dict[str, float]) -> dict[str, dict[str, float]]:
    return {"HeLo": {**helo, "n": 10}, "Concatenation MLP": {**mlp, "n": 10}}


GOOD = {"chebyshev": 0.1, "clark": 0.5, "canberra": 1.0, "kl": 0.10, "cosine": 0.9}
WORSE = {"chebyshev": 0.2, "clark": 0.6, "canberra": 1.5, "kl": 0.20, "cosine": 0.8}


def test_improvement_is_positive_when_helo_is_better_in_either_direction():
    from helo.models.report import improvement

    assert improvement("kl", 0.10, 0.20) == 50.0  # lower is better: half the KL
    assert improvement("kl", 0.20, 0.10) == -100.0
    assert improvement("cosine", 0.9, 0.8) > 0  # higher is better
    assert improvement("cosine", 0.8, 0.9) < 0
    assert improvement("intersection", 0.7, 0.7) == 0.0


def test_the_verdict_and_the_percentages_follow_the_metrics():
    from helo.models.report import ReportResult, verdict

    better = {**GOOD, "intersection": 0.8}
    worse = {**WORSE, "intersection": 0.7}
    assert "better than the concatenation MLP on 6 of 6 metrics." in verdict(
        better, _rows(better, worse)
    )
    text = verdict(worse, _rows(worse, better))
    assert "on 0 of 6 metrics (not on chebyshev, clark, canberra, kl, cosine, intersection)" in text
    result = ReportResult(
        "subject", 2, _rows(better, worse), {"HeLo": 1.0}, {}, "tiny", TrainConfig()
    )
    line = next(
        row
        for row in render_markdown(result).splitlines()
        if row.startswith("| Concatenation MLP | +")
    )
    assert line.split(" | ")[4] == "+50.0"  # the KL column: HeLo halves the MLP's KL

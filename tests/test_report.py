"""The comparison report: every row trained under one protocol, rendered as markdown."""

from __future__ import annotations

from helo.models.report import default_variants, render_markdown, run_report
from helo.models.training import TrainConfig


def test_report_has_every_row_and_says_how_helo_compares(tiny_dataset):
    base = TrainConfig(
        epochs=1,
        batch_size=64,
        seed=0,
        threads=2,
        model_options={"d_model": 16, "dropout": 0.1, "dropkey": 0.1},
    )
    result = run_report(tiny_dataset, base, "subject", 2, progress=False, log=lambda _: None)
    names = [v.name for v in default_variants(tiny_dataset.spec.names)]
    assert list(result.rows) == names
    assert "HeLo as published (shared EEG encoder, T @ Phys)" in names
    assert {"HeLo, eeg only", "HeLo, face only", "Concatenation MLP"} <= set(names)
    for row in result.rows.values():
        assert row["n"] > 0
        assert 0.0 <= row["kl"] < 10.0
    text = render_markdown(result)
    assert "| HeLo as published (shared EEG encoder, T @ Phys) |" in text
    assert "## How much HeLo improves on each row" in text
    assert "HeLo is better than the concatenation MLP on " in text

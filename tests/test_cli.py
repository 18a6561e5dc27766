"""The command line end to end: train, evaluate, bench; user errors in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helo.streamer.cli import main
from helo.streamer.demo import DEMO_CHECKPOINT

TINY_TOML = """
[data]
source = "synthetic"
n_subjects = 4
trials_per_subject = 2
trial_s = 15.0
seed = 9

[train]
epochs = 2
batch_size = 32
threads = 2

[model]
d_model = 32
dropout = 0.1
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = out / "tiny.toml"
    config.write_text(TINY_TOML)
    code = main(
        [
            "train",
            "--config",
            str(config),
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "dropkey=0.1",
            "--test-subjects",
            "1",
        ]
    )
    assert code == 0
    return out


def test_train_writes_checkpoint_metrics_and_curve(trained):
    assert (trained / "model.safetensors").stat().st_size > 10_000
    assert (trained / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["train_config"]["model_options"] == {
        "d_model": 32,
        "dropout": 0.1,
        "dropkey": 0.1,
    }
    assert metrics["epochs_run"] == 2
    assert set(metrics["test"]["metrics"]) == {
        "chebyshev",
        "clark",
        "canberra",
        "kl",
        "cosine",
        "intersection",
    }
    assert not set(metrics["test"]["subjects"]) & set(metrics["data"]["train_subjects"])


def test_evaluate_a_checkpoint_prints_metrics_per_subset(trained, tiny_dataset, capsys, tmp_path):
    out_json = tmp_path / "eval.json"
    data = tmp_path / "tiny.npz"  # a cached data set: quick, and the --data FILE.npz path
    tiny_dataset.save(data)
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(trained / "model.safetensors"),
            "--data",
            str(data),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "| chebyshev ↓ |" in text.replace("| model | chebyshev ↓", "| chebyshev ↓")
    assert "eeg+gsr+ppg+face" in text
    result = json.loads(out_json.read_text())
    assert len(result["per_subset"]) == 15


def test_evaluate_the_shipped_demo_model(capsys):
    assert DEMO_CHECKPOINT.exists(), "the demo checkpoint must ship with the project"
    assert main(["evaluate", "--demo"]) == 0
    text = capsys.readouterr().out
    assert "training-mean distribution" in text


def test_protocol_evaluation_trains_per_fold(capsys, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(
        TINY_TOML.replace("model]", "model]\nhidden = [16]").replace(
            "d_model = 32\ndropout = 0.1", "dropout = 0.1"
        )
    )
    code = main(
        [
            "evaluate",
            "--protocol",
            "trial",
            "--folds",
            "2",
            "--config",
            str(config),
            "--model",
            "concat_mlp",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "subject-dependent (trial folds), 2 folds" in capsys.readouterr().out


def test_bench_features_runs(capsys):
    assert main(["bench", "--only", "features", "--repeats", "5"]) == 0
    assert "features, one window of every modality" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["evaluate", "--checkpoint", "missing.safetensors", "--data", "synthetic"],
            "missing.safetensors: no such checkpoint file",
        ),
        (["train", "--data", "dmer:/no/such/folder"], "/no/such/folder"),
        (["train", "--data", "nonsense"], "unknown data source 'nonsense'"),
        (["train", "--set", "d_model"], "--set 'd_model': expected KEY=VALUE"),
        (["bench", "--only", "gpu"], "unknown section(s) ['gpu']"),
    ],
)
def test_user_errors_end_in_one_line_without_traceback(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "helo.streamer.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_a_baseline_runs_the_participant_demo_model_and_says_so(tmp_path):
    """``--baseline`` without ``--checkpoint``: the demo model normalised to the
    participant, the synthetic participant resting, every prediction flagged while the
    calibration lasts, and the terminal saying what is going on."""
    out = tmp_path / "p.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "helo.streamer.cli",
            "run",
            "--device",
            "synthetic",
            "--baseline",
            "60",
            "--duration",
            "3",
            "--quiet",
            "--no-lsl",
            "--jsonl",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "normalises to the participant: the first 60 s are the baseline" in proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    assert all(row["calibrating"] for row in rows)
    assert all(row["distribution"] is not None for row in rows[-3:])

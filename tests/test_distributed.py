"""Cross-validation folds and report rows as Ray tasks (a local instance, 2 CPUs) give
the numbers of the sequential run with the same seeds and one torch thread per fold."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from helo.models.evaluation import cross_validate
from helo.models.report import Variant, run_report
from helo.models.training import TrainConfig

FAST = {"d_model": 32, "dropout": 0.1, "dropkey": 0.1}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each Ray task trains with
    yield
    torch.set_num_threads(threads)


def test_folds_on_ray_equal_the_sequential_folds(tiny_dataset, local_ray, one_thread):
    from helo.streamer.distributed import ray_fold_map

    config = TrainConfig(epochs=2, batch_size=32, seed=0, val_fraction=0.34, model_options=FAST)
    here = cross_validate(tiny_dataset, config, "subject", 2, subsets=True, progress=False)
    seen = []
    there = cross_validate(
        tiny_dataset,
        config,
        "subject",
        2,
        subsets=True,
        progress=False,
        fold_map=ray_fold_map(),
        on_fold=lambda r: seen.append(r.fold),
    )
    assert seen == [0, 1]
    np.testing.assert_array_equal(there.predictions, here.predictions)
    assert there.metrics == here.metrics
    assert there.per_subset == here.per_subset
    assert [f["best_epoch"] for f in there.per_fold] == [f["best_epoch"] for f in here.per_fold]


def test_report_rows_on_ray_equal_the_sequential_rows(tiny_dataset, local_ray, one_thread):
    from helo.streamer.distributed import ray_fold_map

    config = TrainConfig(model="concat_mlp", epochs=3, seed=1, val_fraction=0.34)
    variants = [
        Variant("Concatenation MLP", "concat_mlp"),
        Variant("EEG only (MLP)", "concat_mlp", modalities=("eeg",)),
        Variant("Training-mean distribution", "mean"),
    ]
    kwargs = {"variants": variants, "progress": False, "log": lambda _: None, "personal_ks": ()}
    here = run_report(tiny_dataset, config, "trial", 2, **kwargs)
    there = run_report(tiny_dataset, config, "trial", 2, fold_map=ray_fold_map(), **kwargs)
    assert list(there.rows) == [v.name for v in variants]
    assert there.rows == here.rows


def test_a_grid_tuned_on_ray_tune_writes_the_table_and_the_best_config(
    tiny_dataset, tmp_path, one_thread
):
    """Ray Tune starts its own local instance here (2 CPUs), as ``streamer tune`` does."""
    import csv
    import tomllib

    from helo.streamer.tuning import apply_point, parse_grid, tune_grid

    base = TrainConfig(model="concat_mlp", epochs=2, seed=2, val_fraction=0.34)
    grid = parse_grid(["lr=1e-3,1e-2"])
    assert grid == {"lr": [0.001, 0.01]}
    rows, best = tune_grid(tiny_dataset, base, grid, "subject", 2, out=tmp_path, workers=2)
    assert [r.point for r in rows] == [{"lr": 0.001}, {"lr": 0.01}]
    assert best.metrics["kl"] == min(r.metrics["kl"] for r in rows)
    expected = cross_validate(tiny_dataset, apply_point(base, best.point), "subject", 2)
    assert best.metrics["kl"] == pytest.approx(expected.metrics["kl"], rel=1e-9)
    with open(tmp_path / "tune.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    assert "**(best)**" in (tmp_path / "tune.md").read_text()
    saved = tomllib.loads((tmp_path / "best.toml").read_text())
    assert saved["train"]["lr"] == best.point["lr"]
    assert saved["train"]["model"] == "concat_mlp"


def test_personal_rows_on_ray_equal_the_sequential_rows(tiny_dataset, local_ray, one_thread):
    """Each fold (train on the others, adapt to every test participant) is a Ray task;
    pooled in fold order, the rows are the sequential ones."""
    from helo.models.personal import personal_rows
    from helo.streamer.distributed import ray_fold_map

    config = TrainConfig(epochs=1, batch_size=64, seed=0, model_options=FAST)
    here = personal_rows(tiny_dataset, config, (1,), 2)
    there = personal_rows(tiny_dataset, config, (1,), 2, fold_map=ray_fold_map())
    assert [(r.k, r.moving) for r in there] == [(r.k, r.moving) for r in here]
    for a, b in zip(there, here, strict=True):
        assert (a.base, a.personal, a.n_windows) == (b.base, b.personal, b.n_windows)

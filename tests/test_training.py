"""Training, modality dropout, splits that never leak, and cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helo.models.errors import DatasetError, HeloError
from helo.models.evaluation import cross_validate, evaluate_subsets, predict
from helo.models.metrics import evaluate_distributions
from helo.models.splits import holdout, subject_folds, trial_folds
from helo.models.training import (
    TrainConfig,
    drop_modalities,
    modality_subsets,
    resolve_device,
    train_model,
)

FAST = {"d_model": 32, "dropout": 0.1, "dropkey": 0.1}


def test_subject_folds_never_share_a_subject(tiny_dataset):
    folds = subject_folds(tiny_dataset.subjects, n_folds=4, seed=1)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(tiny_dataset)))  # every window tested once
    for train, test in folds:
        assert not set(tiny_dataset.subjects[train]) & set(tiny_dataset.subjects[test])


def test_trial_folds_share_subjects_but_never_a_trial(tiny_dataset):
    folds = trial_folds(tiny_dataset.subjects, tiny_dataset.trials, n_folds=3, seed=1)
    for train, test in folds:
        assert not set(tiny_dataset.trials[train]) & set(tiny_dataset.trials[test])
        assert set(tiny_dataset.subjects[train]) == set(tiny_dataset.subjects[test])


def test_too_many_folds_is_a_clear_error(tiny_dataset):
    with pytest.raises(DatasetError, match="4 groups cannot fill 9 folds"):
        subject_folds(tiny_dataset.subjects, n_folds=9)
    with pytest.raises(DatasetError, match="too few to hold out"):
        holdout(np.array(["a", "a"]), 0.5)


def test_modality_dropout_keeps_at_least_one_present_modality():
    present = torch.ones(1000, 4, dtype=torch.bool)
    present[:10, 1:] = False  # some windows have EEG only
    gen = torch.Generator().manual_seed(0)
    dropped = drop_modalities(present, 0.5, modality_subsets(4), gen)
    assert dropped.any(dim=1).all()
    assert not (dropped & ~present).any()  # never invents a modality
    changed = (dropped != present).any(dim=1).float().mean().item()
    assert 0.35 < changed < 0.5  # about half the windows, minus draws equal to "all"
    assert len(modality_subsets(4)) == 15


def test_training_lowers_the_loss_and_keeps_the_best_epoch(tiny_dataset):
    train_idx, val_idx = holdout(tiny_dataset.subjects, 0.25, seed=0)
    config = TrainConfig(epochs=6, batch_size=32, seed=0, threads=2, model_options=FAST)
    result = train_model(
        tiny_dataset.subset(train_idx), tiny_dataset.subset(val_idx), config, progress=False
    )
    kl = [row["train_kl"] for row in result.history]
    assert kl[-1] < kl[0]
    best = min(result.history, key=lambda row: row["val_kl"])
    assert result.best_epoch == best["epoch"]
    assert result.spec.is_normalized
    assert not result.model.training


def test_the_temperature_fitted_on_validation_lowers_its_kl(tiny_dataset):
    """Calibration is fitted on the validation part after early stopping and folded into
    the output layer: the kept model's validation KL is at most the best epoch's, and
    its logits are the uncalibrated ones divided by T."""
    from helo.models.calibration import fit_temperature, fold_temperature
    from helo.models.training import to_tensors, validation_kl, validation_logits

    train_idx, val_idx = holdout(tiny_dataset.subjects, 0.25, seed=0)
    train, val = tiny_dataset.subset(train_idx), tiny_dataset.subset(val_idx)
    config = TrainConfig(epochs=3, batch_size=32, seed=0, threads=2, model_options=FAST)
    raw = train_model(train, val, TrainConfig(**{**vars(config), "calibrate": False}), False)
    calibrated = train_model(train, val, config, progress=False)
    assert raw.temperature == 1.0
    assert calibrated.metadata()["temperature"] == calibrated.temperature != 1.0
    val_t = to_tensors(val, calibrated.spec, torch.device("cpu"))
    best = min(row["val_kl"] for row in calibrated.history)
    assert validation_kl(calibrated.model, val_t) <= best + 1e-6
    logits_raw, targets = validation_logits(raw.model, val_t)
    logits_cal, _ = validation_logits(calibrated.model, val_t)
    torch.testing.assert_close(
        logits_cal, logits_raw / calibrated.temperature, rtol=1e-4, atol=1e-5
    )
    assert fit_temperature(logits_raw, targets) == pytest.approx(calibrated.temperature)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        fold_temperature(raw.model, 0.0)


def test_fit_temperature_recovers_a_known_temperature():
    from helo.models.calibration import fit_temperature

    logits = torch.randn(500, 6, generator=torch.Generator().manual_seed(0)) * 3
    targets = torch.softmax(logits / 1.7, dim=-1)
    assert fit_temperature(logits, targets) == pytest.approx(1.7, rel=0.01)


def test_weight_averaging_keeps_the_averaged_weights_it_validated(tiny_dataset):
    """With ``ema_decay`` the kept model is the moving average the validation judged:
    its validation KL is the best one in the history, and it differs from the raw
    weights of that epoch."""
    from helo.models.training import to_tensors, validation_kl

    train_idx, val_idx = holdout(tiny_dataset.subjects, 0.25, seed=0)
    train, val = tiny_dataset.subset(train_idx), tiny_dataset.subset(val_idx)
    config = TrainConfig(
        epochs=4,
        batch_size=32,
        seed=0,
        threads=2,
        model_options=FAST,
        ema_decay=0.9,
        calibrate=False,  # the kept weights exactly as validated
    )
    averaged = train_model(train, val, config, progress=False)
    best = min(row["val_kl"] for row in averaged.history)
    val_t = to_tensors(val, averaged.spec, torch.device("cpu"))
    assert validation_kl(averaged.model, val_t) == pytest.approx(best, rel=1e-5)
    raw = train_model(train, val, TrainConfig(**{**vars(config), "ema_decay": 0.0}), False)
    assert [r["train_kl"] for r in raw.history] == [r["train_kl"] for r in averaged.history]
    assert not np.allclose(
        predict(raw.model, raw.spec, val), predict(averaged.model, averaged.spec, val)
    )
    with pytest.raises(HeloError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_same_seed_same_model(tiny_dataset):
    config = TrainConfig(epochs=2, batch_size=64, seed=3, threads=1, model_options=FAST)
    a = train_model(tiny_dataset, None, config, progress=False)
    b = train_model(tiny_dataset, None, config, progress=False)
    pa = predict(a.model, a.spec, tiny_dataset)
    pb = predict(b.model, b.spec, tiny_dataset)
    np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)


def test_the_mean_baseline_predicts_the_training_mean(tiny_dataset):
    result = train_model(tiny_dataset, None, TrainConfig(model="mean"), progress=False)
    pred = predict(result.model, result.spec, tiny_dataset)
    np.testing.assert_allclose(pred[0], tiny_dataset.targets.mean(axis=0), rtol=1e-5)


def test_subject_independent_cross_validation_pools_all_test_windows(tiny_dataset):
    config = TrainConfig(model="concat_mlp", epochs=3, seed=0, val_fraction=0.34)
    cv = cross_validate(tiny_dataset, config, "subject", n_folds=2, subsets=True, progress=False)
    assert not np.isnan(cv.predictions).any()  # every window predicted by exactly one fold
    assert cv.metrics == pytest.approx(evaluate_distributions(cv.predictions, cv.targets))
    assert len(cv.per_fold) == 2
    assert cv.per_subset["eeg+gsr+ppg+face"]["n"] <= len(tiny_dataset)
    assert "face" in cv.per_subset


def test_per_subset_evaluation_masks_the_other_modalities(tiny_dataset):
    config = TrainConfig(epochs=1, batch_size=64, seed=0, threads=2, model_options=FAST)
    result = train_model(tiny_dataset, None, config, progress=False)
    subsets = evaluate_subsets(result.model, result.spec, tiny_dataset)
    assert len(subsets) == 15
    assert subsets["eeg"] != subsets["face"]


def test_bad_training_settings_are_user_errors():
    with pytest.raises(HeloError, match="model must be helo, concat_mlp or mean"):
        TrainConfig(model="transformer")
    with pytest.raises(HeloError, match="unknown key"):
        TrainConfig.from_dict({"epochz": 3})
    if not torch.cuda.is_available():
        with pytest.raises(HeloError, match="no CUDA device is available"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda")

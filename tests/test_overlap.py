"""Overlapping windows as views of one strip: the same numbers as copies, with each
sample checked once (models/features/overlap.py)."""

from __future__ import annotations

import numpy as np

from helo.models.datasets.synthetic_windows import synthetic_spec
from helo.models.features.eeg import differential_entropy
from helo.models.features.extract import extract_modality
from helo.models.features.overlap import (
    all_finite,
    restack,
    strip_of,
    take_windows,
    windows_with,
)
from helo.streamer.scheduler import WindowSet
from helo.streamer.worker import _per_participant


def _strip(n: int = 4000, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, channels)).astype(np.float32)


def test_even_windows_are_read_only_views_equal_to_copies():
    samples = _strip()
    stops = np.arange(1280, 4000, 64)
    view = take_windows(samples, stops, 1280)
    copy = samples[stops[:, None] - 1280 + np.arange(1280)[None, :]]
    np.testing.assert_array_equal(view, copy)
    assert np.shares_memory(view, samples)
    assert not view.flags.writeable
    assert strip_of(view)[1] == 64
    uneven = take_windows(samples, np.array([1280, 1344, 1409]), 1280)  # jitter: copies
    assert not np.shares_memory(uneven, samples)
    assert strip_of(uneven) is None


def test_checks_per_sample_equal_checks_per_window():
    samples = _strip()
    samples[2000, 1] = np.nan
    view = take_windows(samples, np.arange(1280, 4000, 64), 1280)
    expected = np.isfinite(np.ascontiguousarray(view)).all(axis=(1, 2))
    np.testing.assert_array_equal(all_finite(view), expected)
    assert not expected.all()
    assert expected.any()
    strip, hop = strip_of(view)
    flags = np.zeros(len(strip), dtype=bool)
    flags[[5, 1500]] = True
    np.testing.assert_array_equal(
        windows_with(flags, hop, len(view), 1280),
        [bool(flags[w * hop : w * hop + 1280].any()) for w in range(len(view))],
    )


def test_restack_keeps_a_batch_a_view_and_copies_otherwise():
    samples = _strip()
    view = take_windows(samples, np.arange(1280, 4000, 64), 1280)
    again = restack(list(view))
    assert np.shares_memory(again, samples)
    np.testing.assert_array_equal(again, view)
    mixed = [view[0], view[1], np.array(view[2])]  # one window from elsewhere
    np.testing.assert_array_equal(restack(mixed), np.stack(mixed))
    assert not np.shares_memory(restack([view[0], view[2], view[3]]), samples)  # uneven


def test_eeg_features_of_views_equal_those_of_copies():
    spec = synthetic_spec()
    eeg = spec.modality("eeg")
    rng = np.random.default_rng(1)
    samples = (rng.standard_normal((40 * 64 + 1280, len(eeg.channels))) * 20 + 3000).astype(
        np.float32
    )
    samples[1700:1710, 4] = np.nan  # a few windows masked, the rest still a view
    view = take_windows(samples, np.arange(1280, len(samples) + 1, 64), 1280)
    got, ok, reasons = extract_modality(eeg, view, normalize=False)
    want, ok_copy, reasons_copy = extract_modality(eeg, np.array(view), normalize=False)
    np.testing.assert_array_equal(ok, ok_copy)
    assert reasons == reasons_copy
    assert not ok.all()
    assert ok.any()
    np.testing.assert_allclose(got[ok], want[ok], atol=1e-5)
    # the same to float64's precision as one window at a time (the live path)
    one = differential_entropy(np.array(view[-1:], dtype=np.float64), eeg.srate_hz, eeg.params)
    np.testing.assert_allclose(got[-1], one[0], atol=1e-5)


def test_a_group_batch_is_restacked_per_participant_and_a_live_hop_together():
    """A group replay's batch alternates participants; each one's windows are one strip's
    views, so they are extracted per participant without a copy. A live hop (one window
    per participant) stays one extraction for the whole group."""
    views = {
        p: take_windows(_strip(seed=s), np.arange(1280, 2000, 64), 1280)
        for s, p in enumerate(("P01", "P02"))
    }
    batch = [
        WindowSet(k, float(k), {"eeg": views[p][k]}, participant=p)
        for k in range(len(views["P01"]))
        for p in ("P01", "P02")
    ]
    parts = _per_participant(batch, list(range(len(batch))))
    assert [sorted({batch[i].participant for i in part}) for part in parts] == [["P01"], ["P02"]]
    for part in parts:
        stacked = restack([batch[i].windows["eeg"] for i in part])
        assert strip_of(stacked) is not None
    hop = batch[:2]  # one window each
    assert _per_participant(hop, [0, 1]) == [[0, 1]]

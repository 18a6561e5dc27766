"""The synthetic device on LSL: five streams with labels and rates, the truth, faults."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pylsl
import pytest

from helo.devices.synthetic import Fault, SyntheticDevice
from helo.models.datasets.synthetic import EMOTIONS, SYNTHETIC_STREAMS
from helo.models.streams import TRUTH_TYPE, describe_lsl
from helo.streamer.lsl_reader import full_info


def test_publishes_every_stream_with_labels_rates_and_the_truth():
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    with SyntheticDevice(source_prefix=prefix):
        for modality, spec in SYNTHETIC_STREAMS.items():
            info = pylsl.resolve_byprop("source_id", f"{prefix}-{modality}", timeout=5.0)[0]
            described = describe_lsl(full_info(info))
            assert described.type == spec.stream_type
            assert described.channels == spec.channels
            assert described.srate_hz == spec.srate_hz
        info = pylsl.resolve_byprop("source_id", f"{prefix}-truth", timeout=5.0)[0]
        assert info.type() == TRUTH_TYPE
        inlet = pylsl.StreamInlet(info)
        samples, stamps = [], []
        deadline = time.monotonic() + 5
        while len(samples) < 10 and time.monotonic() < deadline:
            chunk, ts = inlet.pull_chunk(timeout=0.5)
            samples += chunk
            stamps += ts
    assert describe_lsl(inlet.info()).channels == EMOTIONS
    np.testing.assert_allclose(np.sum(samples, axis=1), 1.0, atol=1e-5)
    assert np.diff(stamps) == pytest.approx(0.1, abs=1e-6)  # 10 Hz, stamped in session time


def test_faults_send_nans_or_nothing_in_their_span():
    device = SyntheticDevice(faults=(Fault("eeg", "nan", 1.0, 2.0), Fault("gsr", "drop", 1.0, 2.0)))
    times, samples = device.session.read("eeg", 3.0)
    times, samples = device._apply_faults("eeg", times, samples)
    hit = (times >= 1.0) & (times < 2.0)
    assert np.isnan(samples[hit]).all()
    assert np.isfinite(samples[~hit]).all()
    times, samples = device.session.read("gsr", 3.0)
    kept, _ = device._apply_faults("gsr", times, samples)
    assert not ((kept >= 1.0) & (kept < 2.0)).any()
    assert Fault.parse("eeg:nan:10-12") == Fault("eeg", "nan", 10.0, 12.0)
    with pytest.raises(ValueError, match="expected MODALITY:nan"):
        Fault.parse("eeg-nan")

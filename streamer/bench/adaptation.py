"""Adaptation figures of ``streamer bench --only adaptation``: what reading a lab's cap
costs per window, and how much accuracy the adaptation loses.

- cost: one 5-s EEG window of a 500 Hz 64-channel cap that lacks 4 of the model's
  electrodes, sent in volts with ``EEG Fp1-Ref`` labels: cut, unit conversion,
  glitch check, polyphase resampling to 256 Hz and spline interpolation of the 4
  (p50/p99), beside the cost of the EEG features of that window;
- accuracy: the model on the same simulated subjects (not among the demo model's
  training subjects) sent at 256 Hz (as trained), 250, 500 and 1000 Hz, and with
  0, 2, 4 and 8 electrodes removed and interpolated; the six distribution metrics
  against the true distributions.
"""

from __future__ import annotations

import numpy as np

from helo.devices.synthetic import StreamStyle
from helo.models.checkpoint import Checkpoint
from helo.models.datasets.synthetic import SYNTHETIC_STREAMS, EmotionScript, SyntheticSession
from helo.models.datasets.windows import features_from_recording, window_ends
from helo.models.features.adapt import InputAdapter
from helo.models.features.extract import FeatureBatch, extract_modality, normalize_values
from helo.models.features.spec import FeatureSpec
from helo.models.inference import Predictor
from helo.models.metrics import evaluate_distributions
from helo.models.streams import StreamDescription
from helo.streamer.bench.compute import percentiles, time_calls

LAB_CAP = StreamStyle(
    eeg_rate_hz=500.0,
    eeg_labels="prefixed",
    eeg_missing=("O1", "Fz", "C3", "P8"),
    eeg_extra=36,
    eeg_unit="volts",
)
# Electrodes removed for the accuracy table: spread over the scalp, as caps lose them.
REMOVED = ("O1", "Fz", "C3", "P8", "AF3", "CP6", "T7", "PO4")


def cap_description(style: StreamStyle, rate_hz: float) -> StreamDescription:
    _, labels = style.eeg_channels()
    return StreamDescription(
        "cap", "EEG", labels, style.eeg_rate_hz or rate_hz, units=(style.eeg_unit,) * len(labels)
    )


def adaptation_cost(spec: FeatureSpec, repeats: int) -> dict:
    """Per-window cost of adapting the lab cap, and of the EEG features after it."""
    eeg = spec.modality("eeg")
    session = SyntheticSession(
        EmotionScript.tour(), subject=100, modalities=("eeg",), rates_hz=LAB_CAP.rates_hz()
    )
    times, samples = session.read("eeg", 12.0)
    samples = LAB_CAP.eeg_samples(samples).astype(np.float32)
    adapter = InputAdapter(eeg, cap_description(LAB_CAP, eeg.srate_hz))
    t_end = 10.0
    keep = (times > adapter.read_from(t_end)) & (times <= t_end)  # what a buffer read gives
    span_t, span_x = times[keep], samples[keep]
    ends = np.array([t_end])

    def adapt() -> np.ndarray:
        [(_, windows, _)] = adapter.windows(span_t, span_x, ends)
        assert windows is not None, "a clean window"
        return windows

    window = adapt()
    return {
        "cap": f"{len(adapter.labels)} ch at {LAB_CAP.eeg_rate_hz:g} Hz, volts, "
        f"{len(adapter.interpolated)} of the model's electrodes interpolated",
        "adapt": percentiles(time_calls(adapt, repeats)),
        "eeg_features": percentiles(
            time_calls(lambda: extract_modality(eeg, window, normalize=True), repeats)
        ),
        "adapted": adapter.describe(),
    }


def adaptation_accuracy(
    checkpoint: Checkpoint, subjects: tuple[int, ...] = (100, 101, 102), trials: int = 6
) -> dict[str, dict[str, float]]:
    """The model's metrics per condition (``rate 256 Hz``, ``4 interpolated``, ...) on
    the same simulated subjects."""
    spec = checkpoint.spec
    predictor = Predictor(checkpoint, workers=1)
    conditions = {f"{r:g} Hz": StreamStyle(eeg_rate_hz=r) for r in (256.0, 250.0, 500.0, 1000.0)}
    conditions.update(
        {f"{n} interpolated": StreamStyle(eeg_missing=REMOVED[:n]) for n in (2, 4, 8)}
    )
    preds: dict[str, list[np.ndarray]] = {name: [] for name in conditions}
    truths: list[np.ndarray] = []
    for subject in subjects:
        rng = np.random.default_rng([7, subject])
        script = EmotionScript.random_trials(trials, 40.0, rng)
        ends = window_ends(0.0, trials * 40.0, spec.max_window_s, 1.0)
        truths.append(np.array([script.mean_over(e - spec.max_window_s, e) for e in ends]))
        for name, style in conditions.items():
            batch = _features(spec, script, subject, style, ends)
            preds[name].append(predictor.predict_features(batch))
    predictor.close()
    truth = np.concatenate(truths)
    return {name: evaluate_distributions(np.concatenate(p), truth) for name, p in preds.items()}


def _features(
    spec: FeatureSpec, script: EmotionScript, subject: int, style: StreamStyle, ends: np.ndarray
) -> FeatureBatch:
    session = SyntheticSession(script, subject=subject, seed=7, rates_hz=style.rates_hz())
    streams, adapters = {}, {}
    for mod in spec.modalities:
        times, samples = session.read(mod.name, float(ends[-1]))
        if mod.name == "eeg":
            streams["eeg"] = (times, style.eeg_samples(samples))
            adapters["eeg"] = InputAdapter(mod, cap_description(style, mod.srate_hz))
        else:
            cols = [SYNTHETIC_STREAMS[mod.name].channels.index(c) for c in mod.channels]
            streams[mod.name] = (times, samples[:, cols])
    values, present = features_from_recording(spec, streams, ends, adapters=adapters)
    normalised = {
        mod.name: np.where(
            present[:, m].reshape(-1, *([1] * len(mod.feature_shape))),
            normalize_values(mod, np.nan_to_num(values[mod.name])),
            np.nan,
        ).astype(np.float32)
        for m, mod in enumerate(spec.modalities)
    }
    return FeatureBatch(normalised, present, {m.name: [None] * len(ends) for m in spec.modalities})

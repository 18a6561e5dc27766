"""A lab's streams adapted to a model: labels, montages, units, rates, missing electrodes,
glitches; the same windows for training and for the runtime."""

from __future__ import annotations

import numpy as np
import pytest

from helo.devices.synthetic import StreamStyle
from helo.models.datasets.synthetic import EmotionScript, SyntheticSession
from helo.models.datasets.synthetic_windows import synthetic_spec
from helo.models.features.adapt import AdaptOptions, InputAdapter
from helo.models.features.channels import canonical_label, montage_labels
from helo.models.features.extract import extract_modality
from helo.models.features.mapping import map_streams
from helo.models.features.units import conversion_for, guess_conversion
from helo.models.streams import StreamDescription

SPEC = synthetic_spec()
EEG = SPEC.modality("eeg")
SECONDS = 40.0


def _eeg(style: StreamStyle, seconds: float = SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """Simulated EEG as a cap of ``style`` sends it."""
    session = SyntheticSession(
        EmotionScript.tour(), subject=3, modalities=("eeg",), rates_hz=style.rates_hz()
    )
    times, samples = session.read("eeg", seconds)
    return times, style.eeg_samples(samples)


def _description(style: StreamStyle) -> StreamDescription:
    _, labels = style.eeg_channels()
    rate = style.eeg_rate_hz or EEG.srate_hz
    return StreamDescription("cap", "EEG", labels, rate, units=(style.eeg_unit,) * len(labels))


def _features(style: StreamStyle, options: AdaptOptions | None = None) -> np.ndarray:
    times, samples = _eeg(style)
    adapter = InputAdapter(EEG, _description(style), options)
    ends = np.arange(10.0, SECONDS, 1.0)
    out = np.full((len(ends), *EEG.feature_shape), np.nan)
    for idx, windows, reason in adapter.windows(times, samples, ends):
        assert reason is None
        values, ok, _ = extract_modality(EEG, windows, normalize=False)
        assert ok.all()
        out[idx] = values
    return out


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("EEG Fp1-Ref", "fp1"),
        ("FP1", "fp1"),
        ("Fp1-A1", "fp1"),
        ("EEG-T3", "t7"),
        ("T6-LE", "p8"),
        ("Cz-REF", "cz"),
        ("A1", "a1"),  # a reference electrode alone stays itself
    ],
)
def test_labels_are_compared_by_their_canonical_key(label, key):
    assert canonical_label(label) == key


def test_biosemi_abc_names_become_the_montage_names():
    labels = [f"A{i}" for i in range(1, 33)] + ["EXG1", "Status"]
    assert montage_labels(labels, "biosemi32")[:32] == EEG.channels  # our cap is BioSemi's
    assert montage_labels(labels, "biosemi32")[32:] == ("EXG1", "Status")


def test_units_declared_and_guessed():
    volts = conversion_for("eeg_de", "volts", "here")
    assert volts is not None
    assert volts.apply(np.array([1e-5])) == pytest.approx(10.0)
    kilo_ohms = conversion_for("gsr_stats", "kOhm", "here")
    assert kilo_ohms is not None
    assert kilo_ohms.apply(np.array([200.0])) == pytest.approx(5.0)  # 200 kΩ = 5 µS
    assert conversion_for("eeg_de", "", "here") is None  # then the amplitude decides
    rng = np.random.default_rng(0)
    assert guess_conversion("eeg_de", rng.normal(0, 2e-5, (512, 4))).source == "V"
    assert guess_conversion("eeg_de", rng.normal(0, 20.0, (512, 4))).source == "µV"
    assert guess_conversion("gsr_stats", np.full((64, 1), 250.0)).source == "kΩ"


def test_a_lab_cap_gives_the_features_of_the_model_s_own_cap():
    reference = _features(StreamStyle())
    lab = StreamStyle(eeg_labels="prefixed", eeg_unit="volts", eeg_extra=32)
    np.testing.assert_allclose(_features(lab), reference, atol=1e-4)  # same samples
    old = _features(StreamStyle(eeg_labels="old", eeg_unit="millivolts"))
    np.testing.assert_allclose(old, reference, atol=1e-4)
    abc = _features(StreamStyle(eeg_labels="biosemi"), AdaptOptions(montage="biosemi32"))
    np.testing.assert_allclose(abc, reference, atol=1e-4)


def _tones(rate: float, seconds: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """One tone in each EEG band per channel, on a large DC offset with a drift (as a
    BioSemi sends it), sampled at ``rate``: the same signal whatever the rate."""
    times = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    freqs = np.array([2.5, 6.0, 11.0, 22.0, 40.0])
    phases = rng.uniform(0, 2 * np.pi, (len(EEG.channels), len(freqs)))
    amps = rng.uniform(5.0, 20.0, (len(EEG.channels), len(freqs)))
    waves = np.sin(2 * np.pi * freqs[None, None, :] * times[:, None, None] + phases[None])
    samples = (waves * amps[None]).sum(axis=2) + 5000.0 + 30.0 * times[:, None]
    return times, samples


@pytest.mark.parametrize("rate", [250.0, 500.0, 512.0, 1000.0])
def test_other_rates_are_resampled_to_the_model_s(rate):
    """The same signal sent at another rate gives the band powers (DE) it gives at the
    model's rate: within 0.01 (about 2 % of a band's power)."""
    ends = np.arange(6.0, 20.0, 1.0)

    def features(at: float) -> np.ndarray:
        times, samples = _tones(at)
        stream = StreamDescription("cap", "EEG", EEG.channels, at, units=("uV",) * 32)
        out = np.full((len(ends), *EEG.feature_shape), np.nan)
        for idx, windows, _ in InputAdapter(EEG, stream).windows(times, samples, ends):
            assert windows.shape[1:] == (EEG.expected_samples, 32)
            out[idx] = extract_modality(EEG, windows, normalize=False)[0]
        return out

    np.testing.assert_allclose(features(rate), features(EEG.srate_hz), atol=0.01)


def test_a_rate_too_low_for_a_band_is_one_line_naming_it():
    cap = StreamDescription("cap", "EEG", EEG.channels, 64.0, units=("uV",) * 32)
    mapping = map_streams(SPEC.select(["eeg"]), [cap])
    assert mapping.errors == [
        "eeg: stream 'cap' (type EEG, 32 ch, 64 Hz): 64 Hz cannot give the gamma band "
        "(31-49 Hz); it needs 98 Hz or more (the model was trained at 256 Hz)"
    ]


def _volume_conducted(seconds: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """EEG as the scalp sees it: a few sources, each spread smoothly over the electrodes
    (volume conduction), plus a little sensor noise."""
    import mne

    montage = mne.channels.make_standard_montage("biosemi32")
    positions = montage.get_positions()["ch_pos"]
    xyz = np.array([positions[c] for c in EEG.channels])
    rng = np.random.default_rng(1)
    centres = xyz[rng.choice(len(xyz), 4, replace=False)] * 1.1
    gains = np.exp(-((xyz[:, None] - centres[None]) ** 2).sum(axis=2) / (2 * 0.06**2))
    times = np.arange(int(seconds * EEG.srate_hz)) / EEG.srate_hz
    sources = rng.normal(0, 20.0, (len(times), len(centres)))
    return times, sources @ gains.T + rng.normal(0, 0.5, (len(times), len(xyz)))


def test_missing_electrodes_are_interpolated_up_to_the_share():
    missing = ("O1", "Fz", "C3", "P8")
    kept = [c for c in EEG.channels if c not in missing]
    stream = StreamDescription("cap", "EEG", tuple(kept), EEG.srate_hz, units=("uV",) * 28)
    adapter = InputAdapter(EEG, stream)
    assert set(adapter.interpolated) == set(missing)  # in the model's channel order
    assert any("interpolated C3, O1, P8, Fz from 28" in line for line in adapter.describe())
    times, full = _volume_conducted()
    partial = full[:, [EEG.channels.index(c) for c in kept]]
    [(_, windows, _)] = adapter.windows(times, partial, np.array([8.0]))
    truth = full[(times > 3.0) & (times <= 8.0)]
    for name in missing:
        c = EEG.channels.index(name)
        r = np.corrcoef(windows[0][:, c], truth[:, c])[0, 1]
        assert r > 0.9, name
    too_many = StreamStyle(eeg_missing=EEG.channels[:9])
    with pytest.raises(Exception, match=r"lacks 9 of the model's channels .*at most 8 of 32"):
        InputAdapter(EEG, _description(too_many))


def test_glitches_and_nan_mask_the_window_with_the_reason():
    times, samples = _eeg(StreamStyle())
    samples = samples.copy()
    samples[(times > 12.0) & (times < 12.01)] = 1e30
    samples[(times > 22.0) & (times < 22.01)] = np.nan
    adapter = InputAdapter(EEG, _description(StreamStyle()))
    ends = np.array([14.0, 20.0, 24.0])
    reasons = {}
    for idx, _, reason in adapter.windows(times, samples, ends):
        for i in idx:
            reasons[float(ends[i])] = reason
    assert reasons[20.0] is None
    assert reasons[14.0] == "eeg: implausible value 1e+30 µV in the window (beyond ±1e+06)"
    assert reasons[24.0] == "eeg: NaN/Inf in the window"


def test_training_windows_are_runtime_windows():
    """The runtime cuts one window at a time from a buffer read; training cuts all at
    once from the whole stream: the same function, the same samples."""
    style = StreamStyle(eeg_rate_hz=500.0, eeg_missing=("O1",), eeg_unit="volts")
    times, samples = _eeg(style)
    adapter = InputAdapter(EEG, _description(style))
    ends = np.arange(6.0, 30.0, 0.25)
    together = {}
    for idx, windows, _ in adapter.windows(times, samples, ends):
        together.update({float(ends[i]): w for i, w in zip(idx, windows, strict=True)})
    for t_end in ends[::7]:
        keep = (times > adapter.read_from(t_end)) & (times <= t_end)  # a ring-buffer read
        [(_, one, _)] = adapter.windows(times[keep], samples[keep], np.array([t_end]))
        np.testing.assert_array_equal(one[0], together[float(t_end)])


def test_a_batch_of_even_windows_is_adapted_as_window_by_window():
    """A replay's batch (evenly spaced windows, views of one strip: converted, checked
    and interpolated once per sample) gives what the runtime's single windows give: the
    same glitch reasons, the same samples, volts and missing electrodes included."""
    style = StreamStyle(eeg_missing=("O1", "Fz"), eeg_unit="volts")
    times, samples = _eeg(style)
    samples = samples.copy()
    samples[(times > 12.0) & (times < 12.01)] = 10.0  # 10 V: a glitch
    samples[(times > 22.0) & (times < 22.01)] = np.nan
    adapter = InputAdapter(EEG, _description(style))
    ends = np.arange(8.0, 30.0, 0.25)
    together, reasons = {}, {}
    for idx, windows, reason in adapter.windows(times, samples, ends):
        for j, i in enumerate(idx):
            reasons[float(ends[i])] = reason
            together[float(ends[i])] = None if windows is None else windows[j]
    masked = [t for t, why in reasons.items() if why]
    assert 12.25 in masked and 22.25 in masked and 8.0 not in masked  # noqa: PT018
    for t_end in ends[::3]:
        keep = (times > adapter.read_from(t_end)) & (times <= t_end)
        [(_, one, why)] = adapter.windows(times[keep], samples[keep], np.array([t_end]))
        assert why == reasons[float(t_end)]
        if one is not None:
            np.testing.assert_allclose(one[0], together[float(t_end)], rtol=1e-6, atol=1e-6)

"""Synthetic mixed-emotion physiology and face, as raw signals, block by block.

An emotion-distribution trajectory over K = 6 basic emotions (Ekman) drives:

- EEG (32 channels, BioSemi-32 layout, 256 Hz): band-limited noise in the five
  bands whose log power per channel is a subject baseline plus a weighted sum of
  emotion scalp patterns (frontal alpha asymmetry for approach/withdrawal,
  beta/gamma with arousal, theta with disgust/surprise, ...); eye blinks on the
  frontal channels, line noise and a noise floor.
- GSR (32 Hz, microsiemens): tonic level rising with arousal, skin conductance
  responses (bi-exponential, Poisson-timed, rate and size rising with arousal).
- PPG (64 Hz): a pulse waveform whose heart rate rises with arousal (with
  respiratory sinus arrhythmia) and whose amplitude falls with it.
- Face (30 Hz): the 52 MediaPipe blendshape scores, each a subject bias plus the
  FACS-like expression of each emotion (smile with happiness, brow down with
  anger, nose sneer with disgust, ...), blinks, noise; frames without a face
  (NaN scores, ``facePresent`` = 0) now and then, as a webcam gives.

Subjects differ (baseline EEG spectra, response gains, individual patterns,
tonic GSR and heart rate, facial expressivity), so that subject-independent
generalisation is not trivial. Every modality keeps its filter states between
calls, so :class:`SyntheticSession` can be played live block by block (the
synthetic device) or generated in one go (data sets): the output is the same
for the same seed either way.

This is simulated data for demos and tests, not a model of any real person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from helo.models.features.face import BLENDSHAPE_NAMES, FACE_STREAM_CHANNELS
from helo.models.features.spec import BAND_NAMES, DEFAULT_EEG_BANDS_HZ
from helo.models.streams import FACE_TYPE

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
# Circumplex coordinates of each emotion: how much it arouses, and its valence.
AROUSAL = np.array([0.80, 0.50, 0.85, 0.60, 0.20, 0.80])
VALENCE = np.array([-0.70, -0.60, -0.80, 0.80, -0.70, 0.20])

EEG_SRATE_HZ = 256.0
GSR_SRATE_HZ = 32.0
PPG_SRATE_HZ = 64.0
FACE_SRATE_HZ = 30.0

# Typical band powers (uV^2) of each band at rest, before spatial shaping.
_BAND_POWER_UV2 = np.array([20.0, 10.0, 12.0, 5.0, 1.0])


@lru_cache(maxsize=1)
def eeg_layout() -> tuple[tuple[str, ...], np.ndarray]:
    """BioSemi-32 channel names and 2-D scalp positions (x: left-/right+, y: back-/front+)."""
    import mne  # imported here: only the generator needs electrode positions

    montage = mne.channels.make_standard_montage("biosemi32")
    pos = montage.get_positions()["ch_pos"]
    names = tuple(montage.ch_names)
    xy = np.array([pos[n][:2] for n in names]) / 0.095  # roughly unit head radius
    return names, xy


EEG_CHANNELS: tuple[str, ...] = (
    "Fp1",
    "AF3",
    "F7",
    "F3",
    "FC1",
    "FC5",
    "T7",
    "C3",
    "CP1",
    "CP5",
    "P7",
    "P3",
    "Pz",
    "PO3",
    "O1",
    "Oz",
    "O2",
    "PO4",
    "P4",
    "P8",
    "CP6",
    "CP2",
    "C4",
    "T8",
    "FC6",
    "FC2",
    "F4",
    "F8",
    "AF4",
    "Fp2",
    "Fz",
    "Cz",
)

# Scalp regions as (x, y) centres on the unit head.
_REGIONS = {
    "left_frontal": (-0.45, 0.75),
    "right_frontal": (0.45, 0.75),
    "frontal": (0.0, 0.7),
    "central": (0.0, 0.0),
    "posterior": (0.0, -0.75),
    "left_temporal": (-0.9, 0.0),
    "right_temporal": (0.9, 0.0),
    "frontocentral": (0.0, 0.35),
}
# Emotion -> list of (region, band, log-power change). Loosely after the affective
# EEG literature: frontal alpha asymmetry (approach vs withdrawal), beta/gamma with
# arousal, posterior alpha blocking with alertness, theta with disgust/surprise.
_EEG_EFFECTS: dict[str, list[tuple[str, str, float]]] = {
    "anger": [
        ("left_frontal", "alpha", -0.45),
        ("frontal", "beta", 0.5),
        ("frontal", "gamma", 0.45),
        ("left_temporal", "gamma", 0.3),
    ],
    "disgust": [
        ("right_frontal", "alpha", -0.45),
        ("frontocentral", "theta", 0.5),
        ("right_temporal", "gamma", 0.4),
        ("central", "beta", 0.2),
    ],
    "fear": [
        ("right_frontal", "alpha", -0.5),
        ("posterior", "alpha", -0.45),
        ("central", "beta", 0.45),
        ("right_temporal", "gamma", 0.5),
    ],
    "happiness": [
        ("left_frontal", "alpha", -0.55),
        ("left_temporal", "gamma", 0.45),
        ("posterior", "beta", 0.25),
        ("right_temporal", "gamma", 0.3),
    ],
    "sadness": [
        ("posterior", "alpha", 0.5),
        ("frontocentral", "theta", 0.35),
        ("central", "beta", -0.35),
        ("right_frontal", "alpha", -0.3),
    ],
    "surprise": [
        ("frontocentral", "delta", 0.5),
        ("frontocentral", "theta", 0.4),
        ("posterior", "alpha", -0.55),
        ("central", "gamma", 0.25),
    ],
}

# Effects are scaled up from the literature's typical sizes so that a demo model
# can learn them across simulated subjects in minutes.
_EEG_EFFECT_SCALE = 1.6

# Emotion -> blendshape activations (0..1), FACS-like.
_FACE_EFFECTS: dict[str, dict[str, float]] = {
    "anger": {
        "browDownLeft": 0.7,
        "browDownRight": 0.7,
        "mouthPressLeft": 0.4,
        "mouthPressRight": 0.4,
        "eyeSquintLeft": 0.3,
        "eyeSquintRight": 0.3,
        "noseSneerLeft": 0.2,
        "noseSneerRight": 0.2,
        "jawForward": 0.15,
        "mouthRollLower": 0.2,
    },
    "disgust": {
        "noseSneerLeft": 0.7,
        "noseSneerRight": 0.7,
        "mouthUpperUpLeft": 0.5,
        "mouthUpperUpRight": 0.5,
        "browDownLeft": 0.3,
        "browDownRight": 0.3,
        "mouthFrownLeft": 0.3,
        "mouthFrownRight": 0.3,
        "cheekSquintLeft": 0.2,
        "cheekSquintRight": 0.2,
    },
    "fear": {
        "browInnerUp": 0.7,
        "eyeWideLeft": 0.6,
        "eyeWideRight": 0.6,
        "mouthStretchLeft": 0.5,
        "mouthStretchRight": 0.5,
        "browOuterUpLeft": 0.2,
        "browOuterUpRight": 0.2,
        "jawOpen": 0.15,
    },
    "happiness": {
        "mouthSmileLeft": 0.8,
        "mouthSmileRight": 0.8,
        "cheekSquintLeft": 0.5,
        "cheekSquintRight": 0.5,
        "eyeSquintLeft": 0.3,
        "eyeSquintRight": 0.3,
        "mouthUpperUpLeft": 0.2,
        "mouthUpperUpRight": 0.2,
    },
    "sadness": {
        "browInnerUp": 0.5,
        "mouthFrownLeft": 0.6,
        "mouthFrownRight": 0.6,
        "mouthPressLeft": 0.2,
        "mouthPressRight": 0.2,
        "eyeLookDownLeft": 0.3,
        "eyeLookDownRight": 0.3,
        "mouthShrugLower": 0.3,
    },
    "surprise": {
        "browOuterUpLeft": 0.7,
        "browOuterUpRight": 0.7,
        "browInnerUp": 0.6,
        "eyeWideLeft": 0.6,
        "eyeWideRight": 0.6,
        "jawOpen": 0.6,
        "mouthFunnel": 0.2,
    },
}


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class EmotionScript:
    """A scripted emotion-distribution trajectory.

    Segment ``i`` starts at ``starts_s[i]`` and pulls the state towards
    ``targets[i]`` with time constant ``tau_s`` (exponential approach from where
    the previous segment left it), so mixtures and transitions are smooth.
    """

    starts_s: np.ndarray  # [S], increasing (from 0, or from the end of the rest)
    targets: np.ndarray  # [S, K], rows sum to 1
    tau_s: float = 4.0
    initial: np.ndarray | None = None  # [K]; default: the first target
    rest_s: float = 0.0  # a neutral rest before the first segment: no emotion shows

    _segment_start_state: np.ndarray = field(init=False, repr=False)  # [S, K]

    def __post_init__(self) -> None:
        k = self.targets.shape[1]
        init = self.targets[0] if self.initial is None else np.asarray(self.initial, float)
        starts = [init]
        for i in range(1, len(self.starts_s)):
            dur = self.starts_s[i] - self.starts_s[i - 1]
            prev = self.targets[i - 1]
            starts.append(prev + (starts[-1] - prev) * np.exp(-dur / self.tau_s))
        # frozen: the derived state is set once, here
        object.__setattr__(self, "_segment_start_state", np.array(starts).reshape(-1, k))

    @property
    def n_labels(self) -> int:
        return int(self.targets.shape[1])

    def at(self, t_s: np.ndarray) -> np.ndarray:
        """The distribution at times ``t_s`` (seconds from the script start) -> ``[N, K]``."""
        t = np.maximum(np.asarray(t_s, dtype=np.float64), 0.0)
        seg = np.clip(np.searchsorted(self.starts_s, t, side="right") - 1, 0, None)
        target = self.targets[seg]
        start = self._segment_start_state[seg]
        decay = np.exp(-np.clip(t - self.starts_s[seg], 0.0, None) / self.tau_s)[:, None]
        dist = target + (start - target) * decay
        return dist / dist.sum(axis=1, keepdims=True)

    def intensity(self, t_s: np.ndarray) -> np.ndarray:
        """How strongly the distribution shows in body and face: 0 at rest, else 1."""
        return (np.asarray(t_s, dtype=np.float64) >= self.rest_s).astype(np.float64)

    def mean_over(self, t0_s: float, t1_s: float, n: int = 21) -> np.ndarray:
        """Average distribution over ``[t0_s, t1_s]`` (the label of a window)."""
        return self.at(np.linspace(t0_s, t1_s, n)).mean(axis=0)

    @classmethod
    def random_trials(
        cls,
        n_trials: int,
        trial_s: float,
        rng: np.random.Generator,
        n_labels: int = 6,
        tau_s: float = 4.0,
        rest_s: float = 0.0,
    ) -> EmotionScript:
        """Trials of ``trial_s`` seconds, each with a mixed target distribution: a
        dominant emotion (cycled so all are covered), often a second one that
        tends to go with it, and a little of everything (Dirichlet); after a neutral
        rest of ``rest_s`` seconds (a session's baseline) when it is > 0."""
        order = rng.permutation(np.resize(np.arange(n_labels), n_trials))
        targets = []
        for dominant in order:
            alpha = np.full(n_labels, 0.35)
            alpha[dominant] += 4.0
            if rng.random() < 0.6:  # a second emotion, as they co-occur in people
                second = rng.choice(n_labels, p=_co_occurrence(n_labels)[dominant])
                alpha[second] += rng.uniform(1.0, 3.0)
            # A little of every emotion, as ratings of mixed feelings rarely hold a
            # hard zero ("very slightly or not at all" is still a rating).
            targets.append(0.9 * rng.dirichlet(alpha) + 0.1 / n_labels)
        starts = rest_s + np.arange(n_trials) * float(trial_s)
        return cls(
            starts_s=starts,
            targets=np.array(targets),
            tau_s=tau_s,
            initial=np.full(n_labels, 1.0 / n_labels),
            rest_s=rest_s,
        )

    @classmethod
    def tour(cls, segment_s: float = 20.0, n_labels: int = 6, rest_s: float = 0.0) -> EmotionScript:
        """A fixed, repeatable tour: each emotion alone, then pairwise mixtures (after a
        neutral rest of ``rest_s`` seconds, when it is > 0)."""
        eye = np.eye(n_labels)
        alone = [0.7 * eye[k] + 0.3 / n_labels for k in range(n_labels)]
        pairs = [
            0.45 * (eye[k] + eye[(k + 1) % n_labels]) + 0.1 / n_labels for k in range(n_labels)
        ]
        targets = np.array(alone + pairs)
        targets /= targets.sum(axis=1, keepdims=True)
        return cls(
            starts_s=rest_s + np.arange(len(targets)) * segment_s,
            targets=targets,
            initial=np.full(n_labels, 1.0 / n_labels),
            rest_s=rest_s,
        )


# Which emotion tends to accompany which (rows: dominant, columns: second; rows sum
# to 1): anger with disgust, fear with surprise, happiness with surprise, sadness
# with fear or anger, ... (mixed-emotion literature, loosely). This is the label
# correlation that HeLo's label embedding can learn.
_CO_OCCURRENCE = np.array(
    [
        # anger disgust fear happiness sadness surprise
        [0.00, 0.50, 0.10, 0.00, 0.20, 0.20],  # anger
        [0.50, 0.00, 0.20, 0.00, 0.20, 0.10],  # disgust
        [0.10, 0.20, 0.00, 0.00, 0.30, 0.40],  # fear
        [0.00, 0.00, 0.05, 0.00, 0.15, 0.80],  # happiness
        [0.30, 0.20, 0.30, 0.20, 0.00, 0.00],  # sadness
        [0.10, 0.10, 0.40, 0.40, 0.00, 0.00],  # surprise
    ]
)


def _co_occurrence(n_labels: int) -> np.ndarray:
    if n_labels == len(EMOTIONS):
        return _CO_OCCURRENCE
    uniform = 1.0 - np.eye(n_labels)
    return uniform / uniform.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- subjects


@dataclass(frozen=True)
class SubjectProfile:
    """How one simulated person differs from the population."""

    seed: int
    eeg_log_power: np.ndarray  # [C, 5] resting log band power
    eeg_patterns: np.ndarray  # [K, C, 5] this subject's emotion effects (log power)
    gsr_tonic_us: float
    gsr_reactivity: float
    hr_base_bpm: float
    hr_reactivity_bpm: float
    ppg_amplitude: float
    face_bias: np.ndarray  # [52]
    face_weights: np.ndarray  # [K, 52]

    @classmethod
    def draw(cls, seed: int, n_labels: int = 6) -> SubjectProfile:
        rng = np.random.default_rng([seed, 7919])
        patterns = population_eeg_patterns()[:n_labels]
        channel_spread = rng.normal(0.0, 0.15, size=patterns.shape[1:])
        log_power = (
            np.log(_BAND_POWER_UV2)[None, :]
            + _spatial_baseline()
            + rng.normal(0.0, 0.5)
            + channel_spread
        )
        gain = rng.lognormal(0.0, 0.3)
        own = patterns * gain * (1.0 + rng.normal(0.0, 0.25, size=patterns.shape))
        face = population_face_weights()[:n_labels]
        expressivity = rng.lognormal(-0.4, 0.6)  # some people barely show it
        face_own = face * expressivity * np.clip(1.0 + rng.normal(0.0, 0.3, face.shape), 0, None)
        bias = np.clip(rng.normal(0.04, 0.04, len(BLENDSHAPE_NAMES)), 0.0, 0.3)
        return cls(
            seed=seed,
            eeg_log_power=log_power,
            eeg_patterns=own,
            gsr_tonic_us=float(rng.uniform(3.0, 8.0)),
            gsr_reactivity=float(rng.lognormal(0.0, 0.35)),
            hr_base_bpm=float(rng.uniform(62.0, 76.0)),
            hr_reactivity_bpm=float(rng.uniform(10.0, 20.0)),
            ppg_amplitude=float(rng.uniform(0.6, 1.6)),
            face_bias=bias,
            face_weights=face_own,
        )


@lru_cache(maxsize=1)
def population_eeg_patterns() -> np.ndarray:
    """[K, C, 5] log-power effect of each emotion on each channel and band."""
    names, xy = eeg_layout()
    if names != EEG_CHANNELS:
        raise RuntimeError("BioSemi-32 layout from MNE does not match EEG_CHANNELS")
    patterns = np.zeros((len(EMOTIONS), len(names), len(BAND_NAMES)))
    for k, emotion in enumerate(EMOTIONS):
        for region, band, change in _EEG_EFFECTS[emotion]:
            centre = np.array(_REGIONS[region])
            weight = np.exp(-((xy - centre) ** 2).sum(axis=1) / (2 * 0.35**2))
            patterns[k, :, BAND_NAMES.index(band)] += _EEG_EFFECT_SCALE * change * weight
    return patterns


def _spatial_baseline() -> np.ndarray:
    """[C, 5] resting topography: posterior alpha, frontal delta/theta."""
    _, xy = eeg_layout()
    base = np.zeros((len(xy), len(BAND_NAMES)))
    base[:, 2] += 0.8 * np.exp(-((xy - (0.0, -0.8)) ** 2).sum(1) / 0.3)
    base[:, 0] += 0.4 * np.exp(-((xy - (0.0, 0.8)) ** 2).sum(1) / 0.3)
    base[:, 1] += 0.3 * np.exp(-((xy - (0.0, 0.3)) ** 2).sum(1) / 0.3)
    return base


@lru_cache(maxsize=1)
def population_face_weights() -> np.ndarray:
    """[K, 52] blendshape activation of each emotion."""
    weights = np.zeros((len(EMOTIONS), len(BLENDSHAPE_NAMES)))
    for k, emotion in enumerate(EMOTIONS):
        for name, value in _FACE_EFFECTS[emotion].items():
            weights[k, BLENDSHAPE_NAMES.index(name)] = value
    return weights


# --------------------------------------------------------------------------- modalities


def _streams(seed: np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """Independent random streams, one per random source, so that the samples do not
    depend on how the session is cut into blocks."""
    return [np.random.default_rng(s) for s in seed.spawn(n)]


class _EEGGenerator:
    """Band-limited noise per channel and band, scaled to the scripted band power."""

    def __init__(self, subject: SubjectProfile, seed: np.random.SeedSequence, srate_hz: float):
        self.subject, self.srate_hz = subject, srate_hz
        n_bands = len(DEFAULT_EEG_BANDS_HZ)
        *self.band_rngs, self.floor_rng, self.blink_rng = _streams(seed, n_bands + 2)
        n_chan = subject.eeg_log_power.shape[0]
        self.sos = [
            butter(4, band, btype="bandpass", fs=srate_hz, output="sos")
            for band in DEFAULT_EEG_BANDS_HZ
        ]
        # Unit-variance white noise through each band filter has this variance:
        self.band_gain = np.array([_noise_variance_through(s) for s in self.sos])
        self.states = [np.zeros((s.shape[0], 2, n_chan)) for s in self.sos]
        frontal = [EEG_CHANNELS.index(c) for c in ("Fp1", "Fp2", "AF3", "AF4")]
        self.blink_weight = np.zeros(n_chan)
        self.blink_weight[frontal] = [1.0, 1.0, 0.6, 0.6]
        self.blink_shape = np.hanning(int(0.3 * srate_hz))
        self.blink_pos = len(self.blink_shape)  # position in the blink in progress
        self.next_blink = self._blink_wait()  # samples until the next blink starts

    def generate(self, t_s: np.ndarray, dist: np.ndarray) -> np.ndarray:
        n, n_chan = len(t_s), self.states[0].shape[2]
        # [n, C, 5] log power: subject baseline + emotion patterns weighted by dist.
        log_power = self.subject.eeg_log_power[None] + np.einsum(
            "nk,kcb->ncb", dist, self.subject.eeg_patterns
        )
        amplitude = np.sqrt(np.exp(log_power) / self.band_gain[None, None, :])
        out = np.zeros((n, n_chan))
        for b, sos in enumerate(self.sos):
            noise = self.band_rngs[b].standard_normal((n, n_chan))
            band, self.states[b] = sosfilt(sos, noise, axis=0, zi=self.states[b])
            out += band * amplitude[:, :, b]
        out += 0.5 * self.floor_rng.standard_normal((n, n_chan))  # amplifier noise floor
        out += 0.3 * np.sin(2 * np.pi * 50.0 * t_s)[:, None]  # mains
        out += self._blinks(n)[:, None] * self.blink_weight[None, :]
        return out

    def _blink_wait(self) -> int:
        return 1 + int(self.blink_rng.exponential(4.0 * self.srate_hz))  # about every 4 s

    def _blinks(self, n: int) -> np.ndarray:
        trace = np.zeros(n)
        for i in range(n):
            if self.blink_pos < len(self.blink_shape):
                trace[i] = 80.0 * self.blink_shape[self.blink_pos]
                self.blink_pos += 1
            self.next_blink -= 1
            if self.next_blink <= 0:
                self.blink_pos = 0
                self.next_blink = self._blink_wait()
        return trace


class _GSRGenerator:
    """Tonic level + Poisson-timed skin conductance responses (bi-exponential)."""

    def __init__(self, subject: SubjectProfile, seed: np.random.SeedSequence, srate_hz: float):
        self.subject, self.srate_hz = subject, srate_hz
        self.event_rng, self.size_rng, self.drift_rng, self.noise_rng = _streams(seed, 4)
        dt = 1.0 / srate_hz
        rise, decay = np.exp(-dt / 0.75), np.exp(-dt / 2.0)
        # h[n] = decay^n - rise^n as a 2nd-order IIR filter, scaled to a peak of 1,
        # so an impulse of size A is one SCR of amplitude A microsiemens.
        steps = np.arange(int(20 * srate_hz))
        peak = float((decay**steps - rise**steps).max())
        self.b = np.array([0.0, decay - rise]) / peak
        self.a = np.array([1.0, -(decay + rise), decay * rise])
        self.zi = np.zeros(2)
        self.drift = np.zeros((1, 1))

    def generate(self, t_s: np.ndarray, dist: np.ndarray) -> np.ndarray:
        arousal = dist @ AROUSAL
        n = len(t_s)
        dt = 1.0 / self.srate_hz
        react = self.subject.gsr_reactivity
        rate_per_s = (0.5 + 12.0 * arousal) * react / 20.0
        events = self.event_rng.random(n) < rate_per_s * dt
        amplitude = self.size_rng.exponential(0.25, n) * (0.4 + arousal) * react
        impulses = np.where(events, amplitude, 0.0)
        phasic, self.zi = lfilter(self.b, self.a, impulses, zi=self.zi)
        drift, self.drift = _leaky_walk(
            self.drift_rng.normal(0.0, 0.002, (n, 1)), 0.9995, self.drift
        )
        tonic = self.subject.gsr_tonic_us + 3.0 * react * arousal + drift[:, 0]
        return (tonic + phasic + self.noise_rng.normal(0.0, 0.01, n))[:, None]


class _PPGGenerator:
    """Pulse waveform with arousal-driven heart rate (plus RSA) and amplitude."""

    def __init__(self, subject: SubjectProfile, seed: np.random.SeedSequence, srate_hz: float):
        self.subject, self.srate_hz = subject, srate_hz
        start_rng, self.hr_rng, self.noise_rng = _streams(seed, 3)
        self.phase = float(start_rng.random())
        self.hr_noise = np.zeros((1, 1))

    def generate(self, t_s: np.ndarray, dist: np.ndarray) -> np.ndarray:
        arousal, valence = dist @ AROUSAL, dist @ VALENCE
        n = len(t_s)
        noise, self.hr_noise = _leaky_walk(
            self.hr_rng.normal(0.0, 0.05, (n, 1)), 0.995, self.hr_noise
        )
        noise = noise[:, 0]
        hr_bpm = (
            self.subject.hr_base_bpm
            + self.subject.hr_reactivity_bpm * (arousal - 0.45)
            - 4.0 * valence
            + 3.0 * np.sin(2 * np.pi * 0.25 * t_s)
            + noise
        )
        phase = self.phase + np.cumsum(hr_bpm / 60.0 / self.srate_hz)
        self.phase = float(phase[-1]) % 1.0
        u = phase % 1.0
        pulse = np.exp(-((u - 0.15) ** 2) / (2 * 0.06**2)) + 0.35 * np.exp(
            -((u - 0.45) ** 2) / (2 * 0.08**2)
        )
        amplitude = self.subject.ppg_amplitude * (1.0 - 0.35 * arousal)
        wander = 0.1 * np.sin(2 * np.pi * 0.25 * t_s + 1.0)
        return (amplitude * pulse + wander + self.noise_rng.normal(0.0, 0.02, n))[:, None]


class _FaceGenerator:
    """52 blendshape scores + face-present flag + head pose, NaN scores when no face."""

    def __init__(self, subject: SubjectProfile, seed: np.random.SeedSequence, srate_hz: float):
        self.subject, self.srate_hz = subject, srate_hz
        self.noise_rng, self.blink_rng, self.presence_rng, self.pose_rng = _streams(seed, 4)
        self.ar = np.zeros((1, len(BLENDSHAPE_NAMES)))
        self.absent_left = 0
        self.blink_left = 0
        self.pose = np.zeros((1, 3))

    def generate(self, t_s: np.ndarray, dist: np.ndarray) -> np.ndarray:
        n, n_bs = len(t_s), len(BLENDSHAPE_NAMES)
        # AR(1) noise, continuous across blocks (the filter state carries over).
        innovations = self.noise_rng.normal(0.0, 0.03, (n, n_bs))
        noise, self.ar = lfilter([1.0], [1.0, -0.9], innovations, axis=0, zi=self.ar)
        scores = self.subject.face_bias[None] + dist @ self.subject.face_weights + noise
        scores[:, 0] += 0.3 * (1.0 - dist.max(axis=1))  # "_neutral"
        blink = self._blink_trace(n)
        for name in ("eyeBlinkLeft", "eyeBlinkRight"):
            scores[:, BLENDSHAPE_NAMES.index(name)] += blink
        scores = np.clip(scores, 0.0, 1.0)
        present = self._presence(n)
        scores[~present] = np.nan
        pose, self.pose = _leaky_walk(self.pose_rng.normal(0.0, 0.06, (n, 3)), 0.99, self.pose)
        pose = np.where(present[:, None], pose, np.nan)
        return np.concatenate([scores, present[:, None].astype(float), pose], axis=1)

    def _blink_trace(self, n: int) -> np.ndarray:
        trace = np.zeros(n)
        for i in range(n):
            if self.blink_left > 0:
                trace[i] = 0.9
                self.blink_left -= 1
            elif self.blink_rng.random() < 1.0 / (4.0 * self.srate_hz):
                self.blink_left = 4
        return trace

    def _presence(self, n: int) -> np.ndarray:
        present = np.ones(n, dtype=bool)
        for i in range(n):
            if self.absent_left > 0:
                present[i] = False
                self.absent_left -= 1
                continue
            draw = self.presence_rng.random(2)
            if draw[0] < 0.002:  # looked away: about 0.5-2 s without a face
                self.absent_left = int((0.5 + 1.5 * draw[1]) * self.srate_hz)
            elif draw[0] < 0.012:  # a single missed detection
                present[i] = False
        return present


class _Generator(Protocol):
    def generate(self, t_s: np.ndarray, dist: np.ndarray) -> np.ndarray: ...


_GENERATORS: dict[str, Callable[[SubjectProfile, np.random.SeedSequence, float], _Generator]] = {
    "eeg": _EEGGenerator,
    "gsr": _GSRGenerator,
    "ppg": _PPGGenerator,
    "face": _FaceGenerator,
}
_MODALITY_SEED = {"eeg": 1, "gsr": 2, "ppg": 3, "face": 4}
# Physiological responses lag the felt emotion (seconds).
_LAG_S = {"eeg": 0.3, "gsr": 2.0, "ppg": 1.5, "face": 0.2}


@dataclass(frozen=True)
class SyntheticStreamInfo:
    """What one synthetic modality looks like as a stream."""

    name: str
    stream_type: str
    channels: tuple[str, ...]
    srate_hz: float
    unit: str


SYNTHETIC_STREAMS: dict[str, SyntheticStreamInfo] = {
    "eeg": SyntheticStreamInfo("eeg", "EEG", EEG_CHANNELS, EEG_SRATE_HZ, "microvolts"),
    "gsr": SyntheticStreamInfo("gsr", "GSR", ("GSR",), GSR_SRATE_HZ, "microsiemens"),
    "ppg": SyntheticStreamInfo("ppg", "PPG", ("PPG",), PPG_SRATE_HZ, "arbitrary"),
    "face": SyntheticStreamInfo("face", FACE_TYPE, FACE_STREAM_CHANNELS, FACE_SRATE_HZ, "score"),
}


class SyntheticSession:
    """One simulated subject living through an emotion script, read block by block.

    ``read(name, until_s)`` returns the samples of one modality from where the
    last read stopped up to ``until_s`` seconds of session time, with their
    times; modalities advance independently, as separate devices would.
    """

    def __init__(
        self,
        script: EmotionScript,
        subject: SubjectProfile | int = 0,
        seed: int = 0,
        modalities: tuple[str, ...] = ("eeg", "gsr", "ppg", "face"),
        rates_hz: dict[str, float] | None = None,
    ):
        self.script = script
        self.subject = (
            subject
            if isinstance(subject, SubjectProfile)
            else SubjectProfile.draw(subject, script.n_labels)
        )
        unknown = [m for m in modalities if m not in _GENERATORS]
        if unknown:
            raise ValueError(f"unknown synthetic modality {unknown}; known: {list(_GENERATORS)}")
        self.modalities = modalities
        # Another amplifier's rate (a lab's, or an accuracy study's): the same signals.
        self.rates_hz = {m: SYNTHETIC_STREAMS[m].srate_hz for m in _GENERATORS}
        self.rates_hz.update(rates_hz or {})
        # One seed per modality by name, so a session with fewer modalities gives
        # the same signals for those it has.
        self._gens = {
            name: _GENERATORS[name](
                self.subject,
                np.random.SeedSequence([seed, self.subject.seed, _MODALITY_SEED[name]]),
                self.rates_hz[name],
            )
            for name in modalities
        }
        self._next_index = dict.fromkeys(modalities, 0)

    def info(self, name: str) -> SyntheticStreamInfo:
        return SYNTHETIC_STREAMS[name]

    def read(self, name: str, until_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(times_s [n], samples [n, C])`` of modality ``name`` up to ``until_s``."""
        srate = self.rates_hz[name]
        start = self._next_index[name]
        stop = int(np.floor(until_s * srate)) + 1
        if stop <= start:
            return np.empty(0), np.empty((0, len(SYNTHETIC_STREAMS[name].channels)))
        times = np.arange(start, stop) / srate
        lagged = times - _LAG_S[name]
        dist = self.script.at(lagged) * self.script.intensity(lagged)[:, None]
        samples = self._gens[name].generate(times, dist)
        self._next_index[name] = stop
        return times, samples

    def true_distribution(self, t_s: np.ndarray) -> np.ndarray:
        """The felt distribution at session times ``t_s`` (what the model should follow)."""
        return self.script.at(t_s)


def _leaky_walk(steps: np.ndarray, keep: float, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y[n] = keep * y[n-1] + steps[n]`` along axis 0, continuing from ``state``
    (the filter state returned by the previous call); returns ``(y, new_state)``."""
    return lfilter([1.0], [1.0, -keep], steps, axis=0, zi=state)


def _noise_variance_through(sos: np.ndarray, n: int = 4096) -> float:
    """Variance of unit white noise after ``sos`` (sum of the squared impulse response)."""
    impulse = np.zeros(n)
    impulse[0] = 1.0
    response = sosfilt(sos, impulse)
    return float((response**2).sum())


__all__ = [
    "EEG_CHANNELS",
    "EMOTIONS",
    "SYNTHETIC_STREAMS",
    "EmotionScript",
    "SubjectProfile",
    "SyntheticSession",
    "SyntheticStreamInfo",
]

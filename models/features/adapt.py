"""From a lab's stream to a model's input: channels, units, glitches, rate.

A model is trained on streams of one shape (the feature spec: channel names, a
rate, units). A lab's amplifier differs: other names for the same electrodes, a
few electrodes missing, volts instead of microvolts, 500 Hz instead of 256 Hz,
now and then a sample of 1e30. An :class:`InputAdapter` is the plan for one stream
feeding one modality, made once when the streams are matched
(:mod:`models.features.mapping`) and applied to every window, live, in replay and
when a recording becomes training data, in this order:

1. cut the window (:mod:`models.features.windowing`; on the frame grid for cameras);
2. take the channels the model uses, matched by canonical label
   (:mod:`models.features.channels`);
3. convert units (:mod:`models.features.units`), guessing them once from the
   first window when the stream does not say;
4. mask the window, with the reason, when it holds NaN/Inf or a value beyond the
   modality's physical bound (a glitch never becomes a prediction);
5. resample to the model's rate;
6. interpolate the model's missing EEG channels (:mod:`models.features.interpolation`).

What was adapted is said once (:meth:`InputAdapter.describe`) and carried along
(:attr:`InputAdapter.interpolated`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from helo.models.errors import HeloError
from helo.models.features.channels import canonical_label, montage_labels
from helo.models.features.interpolation import MAX_INTERPOLATED_SHARE, spline_matrix
from helo.models.features.overlap import strip_of, windows_of, windows_with
from helo.models.features.spec import BAND_NAMES, DEFAULT_EEG_BANDS_HZ, ModalitySpec
from helo.models.features.units import UnitConversion, conversion_for, guess_conversion
from helo.models.features.windowing import (
    CHUNK_VALUES,
    cut_windows,
    grid_windows,
    read_from,
    resample_windows,
    resampling_ratio,
)
from helo.models.streams import StreamDescription

log = logging.getLogger(__name__)

SAME_RATE_TOLERANCE = 0.02  # a nominal rate this close to the model's is the model's
# Beyond these (in the model's units) a value is a glitch, not a signal: 1 V of EEG,
# 10 mS of skin conductance, 1e9 PPG counts, a blendshape or angle beyond 1,000.
PHYSICAL_BOUNDS = {"eeg_de": 1e6, "gsr_stats": 1e4, "ppg_stats": 1e9, "face_stats": 1e3}
# The highest frequency each feature reads; a stream needs twice it (Nyquist).
GSR_TOP_HZ = 2.0  # skin conductance: the phasic responses the statistics describe
FACE_FRAME_MAX_AGE_S = 0.2  # irregular camera streams: a frame stands for at most this


class AdaptationError(HeloError):
    """A stream that cannot be adapted to a modality."""


@dataclass(frozen=True)
class AdaptOptions:
    """What a lab can tell the monitor about its streams (flags and the config file).

    ``channels`` labels a stream's channels by modality (for streams without labels),
    ``montage`` translates BioSemi ABC names (``biosemi64``...), ``units`` overrides
    a modality's unit (``{"eeg": "V"}``), ``max_interpolated`` is the share of a
    model's EEG channels that may be interpolated."""

    channels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    montage: str | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    max_interpolated: float = MAX_INTERPOLATED_SHARE


def highest_frequency_hz(mod: ModalitySpec) -> tuple[float, str]:
    """The highest frequency ``mod``'s feature reads, and what it is (for messages)."""
    if mod.feature == "eeg_de":
        bands = mod.params.get("bands_hz", DEFAULT_EEG_BANDS_HZ)
        top = max(range(len(bands)), key=lambda i: float(bands[i][1]))
        name = BAND_NAMES[top] if len(bands) == len(BAND_NAMES) else f"band {top + 1}"
        lo, hi = (float(f) for f in bands[top])
        return hi, f"the {name} band ({lo:g}-{hi:g} Hz)"
    if mod.feature == "ppg_stats":
        hi = float(mod.params.get("band_hz", (0.5, 8.0))[1])
        return hi, f"the pulse band (up to {hi:g} Hz)"
    if mod.feature == "gsr_stats":
        return GSR_TOP_HZ, f"skin-conductance responses (up to {GSR_TOP_HZ:g} Hz)"
    return 0.0, ""


def match_channels(
    mod: ModalitySpec, stream: StreamDescription, options: AdaptOptions
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Model channel -> stream channel index, by canonical label; and the stream's
    labels as used (after ``--channels`` and ``--montage``)."""
    labels = tuple(stream.channels)
    given = options.channels.get(mod.name)
    if given is not None:
        if len(given) != stream.n_channels:
            raise AdaptationError(
                f"{mod.name}: --channels gives {len(given)} labels for stream "
                f"{stream.describe()}, which has {stream.n_channels} channels"
            )
        labels = tuple(given)
    if options.montage and mod.feature == "eeg_de":
        labels = montage_labels(labels, options.montage)
    if not any(label.strip() for label in labels):
        if stream.n_channels == len(mod.channels):  # no labels: only the count can tell
            return {c: i for i, c in enumerate(mod.channels)}, labels
        return {}, labels
    if len(mod.channels) == 1 and stream.n_channels == 1:  # a GSR stream called "EDA"
        return {mod.channels[0]: 0}, labels
    position: dict[str, int] = {}
    for i, label in enumerate(labels):
        position.setdefault(canonical_label(label), i)
    found = {
        c: position[canonical_label(c)] for c in mod.channels if canonical_label(c) in position
    }
    return found, labels


class InputAdapter:
    """The plan for one stream feeding one modality; see the module docstring."""

    def __init__(
        self, mod: ModalitySpec, stream: StreamDescription, options: AdaptOptions | None = None
    ):
        options = options or AdaptOptions()
        self.modality = mod
        self.stream = stream
        where = f"{mod.name}: stream {stream.describe()}"
        self.by_time = mod.feature == "face_stats"
        found, labels = match_channels(mod, stream, options)
        self.labels = labels
        self.present = tuple(c for c in mod.channels if c in found)
        self.interpolated = tuple(c for c in mod.channels if c not in found)
        self._check_channels(where, options)
        self._check_rate(where)
        self.channel_index = tuple(found[c] for c in self.present)
        sent = options.channels.get(mod.name) or stream.channels  # as the lab named them
        self.by_position = not any(label.strip() for label in sent)
        self.renamed = tuple(
            (sent[found[c]], c)
            for c in self.present
            if sent[found[c]].strip() and sent[found[c]].strip() != c
        )
        self._interpolation = (
            spline_matrix(self.present, self.interpolated) if self.interpolated else None
        )
        self._present_pos = [mod.channels.index(c) for c in self.present]
        self._missing_pos = [mod.channels.index(c) for c in self.interpolated]
        self.unit = self._declared_unit(options, where)
        self.bound = PHYSICAL_BOUNDS.get(mod.feature, np.inf)
        rate = stream.srate_hz
        self.same_rate = self.by_time or abs(rate - mod.srate_hz) <= SAME_RATE_TOLERANCE * (
            mod.srate_hz
        )
        self.ratio = (1, 1) if self.same_rate else resampling_ratio(rate, mod.srate_hz)
        self.raw_samples = mod.expected_samples if self.same_rate else round(mod.window_s * rate)

    @classmethod
    def for_spec(cls, mod: ModalitySpec) -> InputAdapter:
        """For a stream already shaped like the spec (a data set's own streams)."""
        units = {"eeg_de": "microvolts", "gsr_stats": "microsiemens"}.get(mod.feature, "")
        stream = StreamDescription(
            name=mod.name,
            type=mod.stream_type,
            channels=tuple(mod.channels),
            srate_hz=mod.srate_hz,
            units=(units,) * len(mod.channels),
        )
        return cls(mod, stream)

    # ------------------------------------------------------------------ checks

    def _check_rate(self, where: str) -> None:
        mod, rate = self.modality, self.stream.srate_hz
        if self.by_time:
            return  # a camera at any rate: read on the model's frame grid
        if rate <= 0:
            raise AdaptationError(
                f"{where} is irregular; {mod.name} needs a regular rate (the model's is "
                f"{mod.srate_hz:g} Hz)"
            )
        if abs(rate - mod.srate_hz) <= SAME_RATE_TOLERANCE * mod.srate_hz:
            return  # the rate the model was trained at
        top, what = highest_frequency_hz(mod)
        if rate < 2.0 * top:
            raise AdaptationError(
                f"{where}: {rate:g} Hz cannot give {what}; it needs {2 * top:g} Hz or more "
                f"(the model was trained at {mod.srate_hz:g} Hz)"
            )

    def _check_channels(self, where: str, options: AdaptOptions) -> None:
        mod = self.modality
        if not self.interpolated:
            return
        missing = ", ".join(self.interpolated[:8]) + (", ..." if len(self.interpolated) > 8 else "")
        if not self.present:
            labels = [label for label in self.labels if label.strip()]
            has = (
                f"labels {', '.join(labels[:6])}{', ...' if len(labels) > 6 else ''}"
                if labels
                else f"{self.stream.n_channels} unlabelled channels"
            )
            raise AdaptationError(
                f"{where} has none of the model's channels ({has}; the model needs "
                f"{len(mod.channels)}: {', '.join(mod.channels[:6])}, ...); label them with "
                f"--channels {mod.name}=... or --montage"
            )
        allowed = int(np.floor(options.max_interpolated * len(mod.channels) + 1e-9))
        if mod.feature != "eeg_de" or len(self.interpolated) > allowed:
            limit = (
                f"at most {allowed} of {len(mod.channels)} can be interpolated"
                if mod.feature == "eeg_de"
                else "only EEG channels can be interpolated"
            )
            raise AdaptationError(
                f"{where} lacks {len(self.interpolated)} of the model's channels "
                f"[{missing}]; {limit}"
            )

    def _declared_unit(self, options: AdaptOptions, where: str) -> UnitConversion | None:
        mod = self.modality
        override = options.units.get(mod.name)
        if override is not None:
            conversion = conversion_for(mod.feature, override, f"--units {mod.name}")
            if conversion is None:
                raise AdaptationError(f"--units {mod.name}={override}: unknown unit")
            return conversion
        units = [self.stream.units[i] for i in self.channel_index if i < len(self.stream.units)]
        declared = next((u for u in units if u.strip()), "")
        return conversion_for(mod.feature, declared, where)

    # ------------------------------------------------------------------ windows

    def read_from(self, t_end: float) -> float:
        """The earliest sample time a window ending at ``t_end`` may hold."""
        return read_from(
            t_end, self.modality.window_s, 0.0 if self.by_time else self.stream.srate_hz
        )

    def windows(
        self, times: np.ndarray, samples: np.ndarray, ends: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None, str | None]]:
        """For windows ending at ``ends``, from a stream's ``times`` and ``samples``
        (all its channels): ``(indices into ends, windows [w, T, C_model] or None,
        reason)``; a window with no sample at all is not yielded."""
        samples = samples[:, list(self.channel_index)] if self._selects() else samples
        for idx, raw in self._cut(times, samples, ends):
            yield from self._convert(idx, raw)

    def _selects(self) -> bool:
        index = self.channel_index
        return not (len(index) == self.stream.n_channels and index == tuple(range(len(index))))

    def _cut(
        self, times: np.ndarray, samples: np.ndarray, ends: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        mod = self.modality
        if self.by_time:
            rate = self.stream.srate_hz
            max_age = max(1.5 / rate, 1.5 / mod.srate_hz) if rate > 0 else FACE_FRAME_MAX_AGE_S
            inside = np.searchsorted(times, ends, side="right") - np.searchsorted(
                times, ends - mod.window_s, side="right"
            )
            keep = np.flatnonzero(inside > 0)  # a window without any frame is not cut
            if len(keep):
                ends = ends[keep]
                yield keep, grid_windows(times, samples, ends, mod.window_s, mod.srate_hz, max_age)
            return
        yield from cut_windows(times, samples, ends, mod.window_s, self.raw_samples)

    def _convert(
        self, idx: np.ndarray, raw: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None, str | None]]:
        mod = self.modality
        if self.unit is None:
            self.unit = guess_conversion(mod.feature, raw[0])
            log.warning(
                "%s: stream %r declares no unit; its amplitude looks like %s (say --units "
                "%s=UNIT if that is wrong)",
                mod.name,
                self.stream.name,
                self.unit.describe(),
                mod.name,
            )
        x, bad = self._converted(raw)
        for w in np.flatnonzero(bad):
            yield idx[w : w + 1], None, self._glitch_reason(x[w])
        for run in _runs(np.flatnonzero(~bad)):
            yield from self._to_model(idx[run], x[run])

    def _converted(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``raw`` in the model's units, and which windows hold a glitch. Overlapping
        windows (views of one strip) are converted and checked once per sample, not once
        per window they are in (:mod:`models.features.overlap`)."""
        assert self.unit is not None
        strip = strip_of(raw)
        if strip is None:
            x = self.unit.apply(raw)
            return x, self._glitches(x)
        samples, hop = strip
        converted = self.unit.apply(samples)
        bad = windows_with(self._glitch_samples(converted), hop, len(raw), raw.shape[1])
        return windows_of(converted, hop, len(raw), raw.shape[1]), bad

    def _to_model(
        self, idx: np.ndarray, x: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None, str | None]]:
        """Glitch-free windows at the model's rate with the model's channels."""
        if self.same_rate:
            yield idx, self._interpolate(x), None
            return
        step = max(1, CHUNK_VALUES // max(1, self.modality.expected_samples * x.shape[2]))
        for start in range(0, len(x), step):  # resampled windows are copies: bounded
            # (contiguous, so that a window resamples to the same bits in any batch)
            part = resample_windows(np.ascontiguousarray(x[start : start + step]), *self.ratio)
            yield idx[start : start + step], self._interpolate(part), None

    def _interpolate(self, x: np.ndarray) -> np.ndarray:
        """``x [W, T, C]`` in the model's channel layout, its missing EEG channels
        interpolated (on the strip, once per sample, when the windows overlap)."""
        if self._interpolation is None:
            return x
        strip = strip_of(x)
        if strip is not None:
            samples, hop = strip
            return windows_of(self._interpolate_samples(samples), hop, len(x), x.shape[1])
        return self._interpolate_samples(x)

    def _interpolate_samples(self, x: np.ndarray) -> np.ndarray:
        assert self._interpolation is not None
        full = np.empty((*x.shape[:-1], len(self.modality.channels)), dtype=x.dtype)
        full[..., self._present_pos] = x
        full[..., self._missing_pos] = x @ self._interpolation.T.astype(x.dtype)
        return full

    def _glitches(self, x: np.ndarray) -> np.ndarray:
        """Windows holding a value no sensor of this kind gives (or NaN/Inf, except a
        camera's NaN frames, which mean "no face")."""
        with np.errstate(invalid="ignore"):
            beyond = (np.abs(x) > self.bound).any(axis=(1, 2))
        if self.by_time:
            return beyond | np.isinf(x).any(axis=(1, 2))
        return beyond | ~np.isfinite(x).all(axis=(1, 2))

    def _glitch_samples(self, samples: np.ndarray) -> np.ndarray:
        """:meth:`_glitches` per sample of a strip ``[S, C]`` of a regular stream."""
        with np.errstate(invalid="ignore"):
            beyond = (np.abs(samples) > self.bound).any(axis=1)
        return beyond | ~np.isfinite(samples).all(axis=1)

    def _glitch_reason(self, window: np.ndarray) -> str:
        name = self.modality.name
        with np.errstate(invalid="ignore"):
            finite = window[np.isfinite(window)]
            if finite.size and np.abs(finite).max() > self.bound:
                worst = float(finite[np.argmax(np.abs(finite))])
                unit = f" {self.unit.target}" if self.unit and self.unit.target != "-" else ""
                return (
                    f"{name}: implausible value {worst:.3g}{unit} in the window "
                    f"(beyond ±{self.bound:g})"
                )
        return f"{name}: NaN/Inf in the window"

    # ------------------------------------------------------------------ telling

    def describe(self) -> list[str]:
        """What is adapted, one short line each (for the session header)."""
        mod, lines = self.modality, []
        rate = self.stream.srate_hz
        if self.by_time and (rate <= 0 or abs(rate - mod.srate_hz) > 1e-6):
            shown = f"{rate:g} Hz" if rate > 0 else "irregular frames"
            lines.append(f"{shown} read on the model's {mod.srate_hz:g} Hz frame grid")
        elif not self.same_rate:
            up, down = self.ratio
            lines.append(f"resampled {rate:g} -> {mod.srate_hz:g} Hz (polyphase {up}/{down})")
        if self.renamed:
            pairs = ", ".join(f"{a!r}->{b}" for a, b in self.renamed)
            lines.append(f"channels {pairs}")
        if self.by_position and len(self.modality.channels) > 1:
            lines.append("channels by position (the stream has no labels)")
        if self.stream.n_channels > len(self.present) and not self.by_time:
            used, sent = len(self.present), self.stream.n_channels
            lines.append(f"using {used} of the stream's {sent} channels")
        if self.interpolated:
            lines.append(
                f"interpolated {', '.join(self.interpolated)} from {len(self.present)} channels "
                "(spherical splines, 10-05 positions)"
            )
        if self.unit is not None and not self.unit.identity:
            lines.append(f"units {self.unit.describe()}")
        return lines


def _runs(rows: np.ndarray) -> list[slice]:
    """Consecutive runs of ``rows`` (sorted indices) as slices of the rows' own positions
    in order, so that a run of overlapping windows stays a view."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    edges = [0, *breaks.tolist(), len(rows)]
    return [slice(rows[a], rows[b - 1] + 1) for a, b in itertools.pairwise(edges)]

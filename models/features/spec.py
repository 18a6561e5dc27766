"""The feature spec: what a model was trained on, carried inside its checkpoint.

A :class:`FeatureSpec` says, for each modality, which LSL stream feeds it (type and
channel labels), at which sampling rate, over which window, which feature is
computed and with which parameters, and the normalisation statistics fitted on the
training data; plus the emotion label names and the default hop. Live inference,
replay and training all compute features from a spec with the same code
(:mod:`models.features.extract`), so a checkpoint can never be fed features it was
not trained with. The spec is plain data, serialised as JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from helo.models.errors import FeatureError

SPEC_VERSION = 1
GROUPS = ("physiological", "behavioral")

# Feature kinds the extractors know; "precomputed" marks features that arrive
# already computed (e.g. the DMER files) and cannot be computed from a stream.
FEATURE_KINDS = ("eeg_de", "gsr_stats", "ppg_stats", "face_stats", "precomputed")

DEFAULT_EEG_BANDS_HZ: list[list[float]] = [[1, 4], [4, 8], [8, 14], [14, 31], [31, 49]]
BAND_NAMES = ("delta", "theta", "alpha", "beta", "gamma")
FACE_STATS = ("mean", "std", "max")
NORMALISATIONS = ("global", "participant")


@dataclass(frozen=True)
class ParticipantNorm:
    """How features are standardised to the person (``normalisation = "participant"``).

    People differ more than emotions do, so each participant's features are z-scored
    with that participant's own statistics (:mod:`models.features.participant`),
    gathered while the participant calibrates: the first ``warmup_s`` seconds, or
    the session's baseline (a rest) when that is longer. They are weighted by seconds
    of signal, so that any hop gives the same statistics; the population statistics
    count as ``prior_s`` seconds (what the first windows lean on); a value beyond
    ``clip`` standard deviations is clipped before it counts (a glitch moves
    nothing). With ``freeze`` (the default, measured better: docs/model.md) the
    statistics stay as the calibration left them, so every later window is measured
    against the same reference, as a baseline correction does; without it they keep
    running over the whole session.
    """

    prior_s: float = 5.0
    warmup_s: float = 60.0
    clip: float = 4.0
    freeze: bool = True  # the statistics stop moving when the calibration is over

    def __post_init__(self) -> None:
        if not isinstance(self.freeze, bool):
            raise FeatureError("feature spec: participant_norm.freeze must be true or false")
        for key in ("prior_s", "warmup_s", "clip"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise FeatureError(
                    f"feature spec: participant_norm.{key} must be >= 0, got {value!r}"
                )
        if self.prior_s <= 0 or self.clip <= 0:
            raise FeatureError("feature spec: participant_norm prior_s and clip must be > 0")


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a model: its stream, its window and its feature.

    ``channels`` are the LSL channel labels the feature uses, in order;
    ``srate_hz`` is the nominal rate the feature assumes (the stream must match
    it); ``window_s`` is the length of the window ending at the prediction time;
    ``feature_shape`` is the shape of one window's feature (``[C, 5]`` for EEG
    differential entropy, ``[28]`` for GSR statistics, ...). ``norm_mean`` and
    ``norm_std`` (flattened over ``feature_shape``) are fitted on training data;
    ``min_valid_fraction`` is the share of the expected samples (for the face:
    of frames with a face) a window needs, below which the modality is masked.
    """

    name: str
    group: str
    feature: str
    stream_type: str
    channels: tuple[str, ...]
    srate_hz: float
    window_s: float
    feature_shape: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)
    norm_mean: tuple[float, ...] | None = None
    norm_std: tuple[float, ...] | None = None
    min_valid_fraction: float = 0.8

    def __post_init__(self) -> None:
        where = f"feature spec, modality {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise FeatureError("feature spec: a modality has no name")
        if self.group not in GROUPS:
            raise FeatureError(f"{where}: group must be one of {GROUPS}, got {self.group!r}")
        if self.feature not in FEATURE_KINDS:
            raise FeatureError(
                f"{where}: feature must be one of {FEATURE_KINDS}, got {self.feature!r}"
            )
        if not _positive(self.window_s):
            raise FeatureError(f"{where}: window_s must be > 0, got {self.window_s!r}")
        if self.feature != "precomputed" and not _positive(self.srate_hz):
            raise FeatureError(f"{where}: srate_hz must be > 0, got {self.srate_hz!r}")
        if not self.feature_shape or any(int(n) <= 0 for n in self.feature_shape):
            raise FeatureError(f"{where}: feature_shape must be positive, got {self.feature_shape}")
        if not 0.0 < self.min_valid_fraction <= 1.0:
            raise FeatureError(
                f"{where}: min_valid_fraction must be in (0, 1], got {self.min_valid_fraction}"
            )
        expected = _expected_shape(self)
        if expected is not None and tuple(self.feature_shape) != expected:
            raise FeatureError(
                f"{where}: feature_shape {list(self.feature_shape)} does not match "
                f"{self.feature} over {len(self.channels)} channel(s), expected {list(expected)}"
            )
        for stat_name in ("norm_mean", "norm_std"):
            stat = getattr(self, stat_name)
            if stat is not None and len(stat) != self.n_features:
                raise FeatureError(
                    f"{where}: {stat_name} has {len(stat)} values, expected {self.n_features}"
                )
        if self.norm_std is not None and any(not s > 0 for s in self.norm_std):
            raise FeatureError(f"{where}: norm_std must be > 0 everywhere")

    @property
    def n_features(self) -> int:
        """Number of feature values of one window (product of ``feature_shape``)."""
        return int(np.prod(self.feature_shape))

    @property
    def expected_samples(self) -> int:
        """Samples a full window holds at the nominal rate."""
        return round(self.window_s * self.srate_hz)

    @property
    def is_normalized(self) -> bool:
        return self.norm_mean is not None and self.norm_std is not None

    @cached_property
    def norm_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``norm_mean`` and ``norm_std`` as float64 arrays in ``feature_shape``, made
        once: every window of every participant is standardised with them, and turning
        the tuples into arrays cost more than the standardising."""
        if self.norm_mean is None or self.norm_std is None:
            raise FeatureError(f"modality {self.name!r}: the spec has no normalisation statistics")
        mean = np.asarray(self.norm_mean, dtype=np.float64).reshape(self.feature_shape)
        std = np.asarray(self.norm_std, dtype=np.float64).reshape(self.feature_shape)
        mean.flags.writeable = std.flags.writeable = False
        return mean, std

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["channels"] = list(self.channels)
        out["feature_shape"] = list(self.feature_shape)
        for key in ("norm_mean", "norm_std"):
            if out[key] is not None:
                out[key] = [float(v) for v in out[key]]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModalitySpec:
        if not isinstance(data, dict):
            raise FeatureError(
                f"feature spec: a modality must be an object, got {type(data).__name__}"
            )
        name = data.get("name", "?")
        required = (
            "name",
            "group",
            "feature",
            "stream_type",
            "channels",
            "srate_hz",
            "window_s",
            "feature_shape",
        )
        missing = [key for key in required if key not in data]
        if missing:
            raise FeatureError(f"feature spec, modality {name!r}: missing field(s) {missing}")
        unknown = sorted(set(data) - {f.name for f in cls.__dataclass_fields__.values()})
        if unknown:
            raise FeatureError(f"feature spec, modality {name!r}: unknown field(s) {unknown}")
        try:
            return cls(
                name=str(data["name"]),
                group=str(data["group"]),
                feature=str(data["feature"]),
                stream_type=str(data["stream_type"]),
                channels=tuple(str(c) for c in data["channels"]),
                srate_hz=float(data["srate_hz"]),
                window_s=float(data["window_s"]),
                feature_shape=tuple(int(n) for n in data["feature_shape"]),
                params=dict(data.get("params") or {}),
                norm_mean=_floats(data.get("norm_mean")),
                norm_std=_floats(data.get("norm_std")),
                min_valid_fraction=float(data.get("min_valid_fraction", 0.8)),
            )
        except (TypeError, ValueError) as exc:
            raise FeatureError(f"feature spec, modality {name!r}: {exc}") from None


@dataclass(frozen=True)
class FeatureSpec:
    """All modalities of a model, its label names and its default hop (seconds)."""

    modalities: tuple[ModalitySpec, ...]
    labels: tuple[str, ...]
    hop_s: float = 0.25
    version: int = SPEC_VERSION
    normalisation: str = "global"  # "global" | "participant"
    participant_norm: ParticipantNorm = field(default_factory=ParticipantNorm)

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise FeatureError(
                f"feature spec: normalisation must be one of {NORMALISATIONS}, "
                f"got {self.normalisation!r}"
            )
        if not self.modalities:
            raise FeatureError("feature spec: no modalities")
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise FeatureError(f"feature spec: modality names repeat: {names}")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise FeatureError(
                f"feature spec: need 2 or more distinct labels, got {list(self.labels)}"
            )
        if not _positive(self.hop_s):
            raise FeatureError(f"feature spec: hop_s must be > 0, got {self.hop_s!r}")
        if self.version != SPEC_VERSION:
            raise FeatureError(
                f"feature spec: version {self.version} is not supported "
                f"(this build reads {SPEC_VERSION})"
            )
        if sum(m.group == "behavioral" for m in self.modalities) > 1:
            raise FeatureError("feature spec: HeLo takes at most one behavioral modality")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @property
    def is_normalized(self) -> bool:
        return all(m.is_normalized for m in self.modalities)

    @property
    def max_window_s(self) -> float:
        return max(m.window_s for m in self.modalities)

    def modality(self, name: str) -> ModalitySpec:
        for mod in self.modalities:
            if mod.name == name:
                return mod
        raise FeatureError(f"feature spec has no modality {name!r}; it has {list(self.names)}")

    def select(self, names: list[str] | tuple[str, ...]) -> FeatureSpec:
        """The same spec restricted to some modalities (for single-modality models)."""
        return replace(self, modalities=tuple(self.modality(n) for n in names))

    def with_normalization(self, stats: dict[str, tuple[np.ndarray, np.ndarray]]) -> FeatureSpec:
        """A copy whose modalities carry the given (mean, std) per modality."""
        mods = []
        for mod in self.modalities:
            mean, std = stats[mod.name]
            mods.append(replace(mod, norm_mean=_floats(mean), norm_std=_floats(std)))
        return replace(self, modalities=tuple(mods))

    @property
    def per_participant(self) -> bool:
        """Features standardised with the participant's own running statistics."""
        return self.normalisation == "participant"

    def with_normalisation(self, kind: str, settings: ParticipantNorm | None = None) -> FeatureSpec:
        """A copy normalised the given way (``global`` or ``participant``)."""
        return replace(self, normalisation=kind, participant_norm=settings or self.participant_norm)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "labels": list(self.labels),
            "hop_s": self.hop_s,
            "modalities": [m.to_dict() for m in self.modalities],
            "normalisation": self.normalisation,
        }
        if self.per_participant:
            out["participant_norm"] = asdict(self.participant_norm)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        if not isinstance(data, dict):
            raise FeatureError(f"feature spec must be a JSON object, got {type(data).__name__}")
        for key in ("labels", "modalities"):
            if key not in data:
                raise FeatureError(f"feature spec: missing field {key!r}")
        if not isinstance(data["modalities"], list):
            raise FeatureError("feature spec: 'modalities' must be a list")
        return cls(
            modalities=tuple(ModalitySpec.from_dict(m) for m in data["modalities"]),
            labels=tuple(str(x) for x in data["labels"]),
            hop_s=float(data.get("hop_s", 0.25)),
            version=int(data.get("version", SPEC_VERSION)),
            normalisation=str(data.get("normalisation", "global")),
            participant_norm=_participant_norm(data.get("participant_norm")),
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FeatureError(f"feature spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise FeatureError(f"{path}: cannot read feature spec ({exc.strerror})") from None
        try:
            return cls.from_json(text)
        except FeatureError as exc:
            raise FeatureError(f"{path}: {exc}") from None


def spec_difference(
    ours: FeatureSpec, theirs: FeatureSpec, normalisation: bool = True
) -> str | None:
    """Why a model of spec ``theirs`` cannot take the inputs of ``ours`` (None: it can):
    the modalities, labels, channels, rates, windows and features; with
    ``normalisation``, also how features are normalised (the population statistics
    included: a personal model keeps its base model's). Without it, whether data cut
    with ``ours`` can train or test a model of ``theirs``."""
    if ours.names != theirs.names:
        return f"modalities {list(theirs.names)} instead of {list(ours.names)}"
    if ours.labels != theirs.labels:
        return f"labels {list(theirs.labels)} instead of {list(ours.labels)}"
    if normalisation and ours.normalisation != theirs.normalisation:
        return f"{theirs.normalisation} normalisation instead of {ours.normalisation}"
    keys: tuple[str, ...] = ("feature", "channels", "srate_hz", "window_s", "feature_shape")
    keys += ("params", "norm_mean", "norm_std") if normalisation else ("params",)
    for a, b in zip(ours.modalities, theirs.modalities, strict=True):
        for key in keys:
            if getattr(a, key) != getattr(b, key):
                return f"modality {a.name!r} differs in {key}"
    return None


def _participant_norm(data: Any) -> ParticipantNorm:
    if data is None:
        return ParticipantNorm()
    if not isinstance(data, dict):
        raise FeatureError("feature spec: participant_norm must be an object")
    unknown = sorted(set(data) - set(ParticipantNorm.__dataclass_fields__))
    if unknown:
        raise FeatureError(f"feature spec: participant_norm has unknown field(s) {unknown}")
    try:
        values: dict[str, Any] = {k: v if k == "freeze" else float(v) for k, v in data.items()}
        return ParticipantNorm(**values)
    except (TypeError, ValueError) as exc:
        raise FeatureError(f"feature spec: participant_norm: {exc}") from None


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _floats(values: Any) -> tuple[float, ...] | None:
    if values is None:
        return None
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _expected_shape(mod: ModalitySpec) -> tuple[int, ...] | None:
    if mod.feature == "eeg_de":
        bands = mod.params.get("bands_hz", DEFAULT_EEG_BANDS_HZ)
        return (len(mod.channels), len(bands))
    if mod.feature == "gsr_stats":
        return (28,)
    if mod.feature == "ppg_stats":
        return (27,)
    if mod.feature == "face_stats":
        stats = mod.params.get("stats", list(FACE_STATS))
        return (len(mod.channels) * len(stats),)
    return None

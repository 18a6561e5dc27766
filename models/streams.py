"""Stream conventions, in one place: our stream types, the header fields we read and
write, channel formats, and how a stream's header becomes a :class:`StreamDescription`,
whether it comes from the LSL network or from an XDF file.

Everything that decides which stream feeds a model reads a ``StreamDescription``, so
a live session, a replay and a labelled recording made into training data see a stream
the same way. (mne-lsl keeps its ``lsl/constants.py`` for the same reason.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pylsl loads liblsl: only the LSL functions below need it
    import pylsl

# ----------------------------------------------------------------------------- our types

PREDICTION_TYPE = "EmotionDistribution"  # the monitor's predictions, one channel per label
TRUTH_TYPE = "EmotionTruth"  # a known distribution (the synthetic device's), same layout
LABELS_TYPE = "EmotionLabels"  # JSON label spans that make a recording training data
FACE_TYPE = "FaceBlendshapes"  # MediaPipe blendshape scores per video frame
MARKERS_TYPE = "Markers"  # LSL's usual type for event markers
GROUP_TYPE = "EmotionGroupSummary"  # a group's mean distribution and agreement
# in a prediction stream's ``helo`` description: how far past the hop's grid its
# timestamps (window ends) may fall, in seconds (0 or absent: on the grid)
ENDS_FOLLOW_FIELD = "ends_follow_s"
# Header fields (under desc) that say whose body a stream measures, in the order read.
PARTICIPANT_FIELDS = ("participant", "subject", "subject_id", "participant_id")
TRUTH_SOURCE_SUFFIX = "-truth"  # source_id of a device's truth stream: <device prefix>-truth
LABELS_SOURCE_SUFFIX = "-labels"  # and of its EmotionLabels stream
# A sender's timestamps stepping this far (seconds) against their arrival jumped: its
# clock, not its samples (live: helo.streamer.lsl_reader; recordings: helo.models.xdf).
CLOCK_JUMP_S = 5.0

# Stream types that never feed a model, lower case (types compare case-insensitively).
NOT_DATA_TYPES = frozenset(
    t.lower() for t in (PREDICTION_TYPE, TRUTH_TYPE, LABELS_TYPE, MARKERS_TYPE, GROUP_TYPE)
)

# Header field of a stream whose samples can be dropped (a camera): its timestamps are
# real frame times and must not be smoothed as if the stream were regular.
CAN_DROP_SAMPLES = "can_drop_samples"

# LSL channel formats by name (XDF headers hold the name) -> numpy dtype; None: strings.
CHANNEL_FORMATS: dict[str, type | None] = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "string": None,
}
# pylsl's numeric format codes, in the order of liblsl's lsl_channel_format_t.
_LSL_FORMAT_NAMES = {
    1: "float32",
    2: "double64",
    3: "string",
    4: "int32",
    5: "int16",
    6: "int8",
    7: "int64",
}


def is_data_type(stream_type: str) -> bool:
    """Whether a stream of this type can feed a model (not predictions, truth, labels or
    markers)."""
    return stream_type.strip().lower() not in NOT_DATA_TYPES


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


# ----------------------------------------------------------------------------- descriptions


@dataclass(frozen=True)
class StreamDescription:
    """What a stream says about itself (from an LSL StreamInfo or an XDF header)."""

    name: str
    type: str
    channels: tuple[str, ...]  # labels; empty strings where the stream gives none
    srate_hz: float  # nominal rate; 0 for irregular streams
    source_id: str = ""
    channel_format: str = "float32"
    units: tuple[str, ...] = ()  # per channel, "" where the header gives none
    can_drop_samples: bool = False  # declared by the sender (a camera)
    hostname: str = ""
    participant: str = ""  # whose body it measures, when its description says (desc field)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def real_timestamps(self) -> bool:
        """Irregular, or declared as dropping samples: timestamps are the real sample
        times and are never de-jittered (live, in replay and in training alike)."""
        return self.srate_hz <= 0 or self.can_drop_samples

    @property
    def numeric(self) -> bool:
        return CHANNEL_FORMATS.get(self.channel_format, np.float32) is not None

    @property
    def key(self) -> str:
        """How an override names this stream: its source_id, else its name."""
        return self.source_id or self.name

    def describe(self) -> str:
        rate = f"{self.srate_hz:g} Hz" if self.srate_hz > 0 else "irregular"
        return f"{self.name!r} (type {self.type or '?'}, {self.n_channels} ch, {rate})"


def describe_lsl(info: pylsl.StreamInfo) -> StreamDescription:
    """The description of an LSL stream. A *resolved* info has no channel labels: pass
    the full header (:func:`helo.streamer.lsl_reader.full_info`) where labels matter."""
    labels: list[str] = []
    units: list[str] = []
    channel = info.desc().child("channels").child("channel")
    while not channel.empty() and len(labels) < info.channel_count():
        labels.append(channel.child_value("label"))
        units.append(channel.child_value("unit"))
        channel = channel.next_sibling("channel")
    missing = info.channel_count() - len(labels)
    return StreamDescription(
        name=info.name(),
        type=info.type(),
        channels=tuple(labels + [""] * missing),
        srate_hz=float(info.nominal_srate()),
        source_id=info.source_id(),
        channel_format=_LSL_FORMAT_NAMES.get(info.channel_format(), "float32"),
        units=tuple(units + [""] * missing),
        can_drop_samples=_truthy(info.desc().child_value(CAN_DROP_SAMPLES)),
        hostname=info.hostname(),
        participant=next(
            (v for f in PARTICIPANT_FIELDS if (v := info.desc().child_value(f).strip())), ""
        ),
    )


def describe_xdf(info: Mapping[str, Any]) -> StreamDescription:
    """The description of a stream from its XDF header (pyxdf's ``stream["info"]``)."""
    n_channels = int(_xdf_number(info, "channel_count"))
    channels = _xdf_channels(info)[:n_channels]
    channels += [{}] * (n_channels - len(channels))
    desc = _xdf_first(info, "desc")
    return StreamDescription(
        name=xdf_field(info, "name"),
        type=xdf_field(info, "type"),
        channels=tuple(xdf_field(ch, "label") for ch in channels),
        srate_hz=_xdf_number(info, "nominal_srate"),
        source_id=xdf_field(info, "source_id"),
        channel_format=xdf_field(info, "channel_format") or "float32",
        units=tuple(xdf_field(ch, "unit") for ch in channels),
        can_drop_samples=isinstance(desc, Mapping) and _truthy(xdf_field(desc, CAN_DROP_SAMPLES)),
        hostname=xdf_field(info, "hostname"),
        participant=next((v for f in PARTICIPANT_FIELDS if (v := xdf_field(desc, f))), ""),
    )


def xdf_field(info: Mapping[str, Any] | Any, key: str) -> str:
    """A header field; pyxdf gives each as a one-item list, ``[]`` or ``[None]`` when absent."""
    if not isinstance(info, Mapping):
        return ""
    value = _xdf_first(info, key)
    return "" if value is None or isinstance(value, Mapping) else str(value).strip()


def xdf_child(info: Mapping[str, Any] | Any, *keys: str) -> Mapping[str, Any] | None:
    """A nested element of an XDF header (``desc``, then ``helo``...), or None where one
    is missing or not an element."""
    for key in keys:
        if not isinstance(info, Mapping):
            return None
        info = _xdf_first(info, key)
    return info if isinstance(info, Mapping) else None


def _xdf_first(info: Mapping[str, Any], key: str) -> Any:
    value = info.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _xdf_number(info: Mapping[str, Any], key: str) -> float:
    try:
        value = float(xdf_field(info, key) or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def _xdf_channels(info: Mapping[str, Any]) -> list[Any]:
    """``desc/channels/channel`` entries; [] when the header has none."""
    try:
        channels = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        return []
    return list(channels) if isinstance(channels, list) else []


# ----------------------------------------------------------------------------- writing


def declare_channels(
    info: pylsl.StreamInfo,
    labels: Sequence[str],
    *,
    units: str | Sequence[str] | None = None,
    kind: str | None = None,
) -> None:
    """Write ``desc/channels/channel`` entries (label, unit, type) into an outlet's header,
    the layout LabRecorder, pyxdf, MNE and our own readers expect."""
    channels = info.desc().append_child("channels")
    for i, label in enumerate(labels):
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        unit = units if isinstance(units, str) or units is None else units[i]
        if unit:
            channel.append_child_value("unit", unit)
        if kind:
            channel.append_child_value("type", kind)


def declare_can_drop_samples(info: pylsl.StreamInfo) -> None:
    """Say in the header that frames can be dropped (see :data:`CAN_DROP_SAMPLES`)."""
    info.desc().append_child_value(CAN_DROP_SAMPLES, "true")

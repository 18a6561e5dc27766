"""Which stream feeds which modality of a model, and which of its channels.

Used before a live session (LSL streams on the network), before a replay and
when a labelled recording becomes training data (streams of an XDF file): the
same rules everywhere. A modality is fed by the stream whose LSL type equals the
spec's ``stream_type`` (case-insensitive), unless an override names the stream
(by name, source_id or type). Channels are picked by label; a stream without
channel labels is used by position only if it has exactly the channels needed.
The nominal rate must match the spec within 2 % (the features assume it).

Problems are collected, not raised one by one, so that the single error a user
sees lists everything the model needs next to everything that was found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from helo.models.errors import HeloError
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.streams import StreamDescription

RATE_TOLERANCE = 0.02


class MappingError(HeloError):
    """Streams do not match what a model needs."""


@dataclass(frozen=True)
class ModalitySource:
    """Stream ``stream`` (index into the described streams) feeds ``modality``,
    through its channels ``channel_index`` (in the spec's channel order)."""

    modality: str
    stream: int
    channel_index: tuple[int, ...]


@dataclass
class StreamMapping:
    sources: dict[str, ModalitySource] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # modality -> why it has no stream
    errors: list[str] = field(default_factory=list)  # streams that exist but do not fit

    def raise_for_errors(
        self, spec: FeatureSpec, streams: Sequence[StreamDescription], allow_missing: bool
    ) -> None:
        """Raise one :class:`MappingError` naming all problems, needs and findings."""
        problems = list(self.errors)
        if not allow_missing or not self.sources:
            problems += list(self.missing.values())
        if not problems:
            return
        needs = "; ".join(describe_need(m) for m in spec.modalities)
        found = "; ".join(s.describe() for s in streams) or "no streams"
        raise MappingError(f"{' | '.join(problems)}. The model needs: {needs}. Found: {found}")


def describe_need(mod: ModalitySpec) -> str:
    chans = ",".join(mod.channels[:4]) + ("..." if len(mod.channels) > 4 else "")
    rate = f"{mod.srate_hz:g} Hz"
    return f"{mod.name} (type {mod.stream_type}, {len(mod.channels)} ch [{chans}] at {rate})"


def map_streams(
    spec: FeatureSpec,
    streams: Sequence[StreamDescription],
    overrides: Mapping[str, str] | None = None,
) -> StreamMapping:
    """Match every modality of ``spec`` to one of ``streams``.

    ``overrides`` maps a modality name to a stream name, source_id or type.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.names))
    mapping = StreamMapping()
    if unknown:
        mapping.errors.append(f"stream override for unknown modality {unknown}")
    for mod in spec.modalities:
        wanted = overrides.get(mod.name)
        if wanted is not None:
            candidates = [
                i
                for i, s in enumerate(streams)
                if wanted in (s.name, s.source_id) or wanted.lower() == s.type.lower()
            ]
            if not candidates:
                mapping.missing[mod.name] = f"{mod.name}: no stream named {wanted!r}"
                continue
        else:
            candidates = [
                i for i, s in enumerate(streams) if s.type.lower() == mod.stream_type.lower()
            ]
            if not candidates:
                mapping.missing[mod.name] = f"{mod.name}: no stream of type {mod.stream_type}"
                continue
        fitting = [(i, _channel_index(mod, streams[i])) for i in candidates]
        fits = [(i, idx) for i, idx in fitting if idx is not None]
        if not fits:
            first = streams[candidates[0]]
            mapping.errors.append(
                f"{mod.name}: stream {first.describe()} lacks channels "
                f"{_missing_channels(mod, first)}"
            )
            continue
        if len(fits) > 1:
            names = [streams[i].describe() for i, _ in fits]
            mapping.errors.append(
                f"{mod.name}: {len(fits)} streams fit ({', '.join(names)}); "
                f"choose one with --stream {mod.name}=NAME"
            )
            continue
        index, channels = fits[0]
        stream = streams[index]
        if not _rate_ok(mod, stream):
            mapping.errors.append(
                f"{mod.name}: stream {stream.describe()} runs at "
                f"{stream.srate_hz:g} Hz, the model needs {mod.srate_hz:g} Hz"
            )
            continue
        mapping.sources[mod.name] = ModalitySource(mod.name, index, channels)
    return mapping


def _channel_index(mod: ModalitySpec, stream: StreamDescription) -> tuple[int, ...] | None:
    labels = [c.strip().lower() for c in stream.channels]
    if any(labels):
        position = {label: i for i, label in reversed(list(enumerate(labels)))}
        idx = [position.get(c.lower()) for c in mod.channels]
        found = [i for i in idx if i is not None]
        return tuple(found) if len(found) == len(idx) else None
    # No labels at all: only an exact channel count is unambiguous.
    return tuple(range(len(mod.channels))) if stream.n_channels == len(mod.channels) else None


def _missing_channels(mod: ModalitySpec, stream: StreamDescription) -> str:
    labels = {c.strip().lower() for c in stream.channels}
    if not any(labels):
        return (
            f"(it has {stream.n_channels} unlabelled channels, the model needs {len(mod.channels)})"
        )
    missing = [c for c in mod.channels if c.lower() not in labels]
    return "[" + ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "") + "]"


def _rate_ok(mod: ModalitySpec, stream: StreamDescription) -> bool:
    if stream.srate_hz <= 0:  # irregular streams (face features) are windowed by time
        return mod.feature == "face_stats"
    return abs(stream.srate_hz - mod.srate_hz) <= RATE_TOLERANCE * mod.srate_hz

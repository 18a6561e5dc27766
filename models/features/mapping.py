"""Which stream feeds which modality of a model, and which of its channels.

Used before a live session (LSL streams on the network), before a replay and
when a labelled recording becomes training data (streams of an XDF file): the
same rules everywhere. A modality is fed by the stream whose LSL type equals the
spec's ``stream_type`` (case-insensitive), unless an override names the stream
(by name, source_id or type). Each candidate is planned as an
:class:`~helo.models.features.adapt.InputAdapter` (channels by canonical label,
a few missing EEG channels interpolated, units converted, any usable rate
resampled); a stream the adapter cannot serve does not fit, and says why.

Problems are collected, not raised one by one, so that the single error a user
sees lists everything the model needs next to everything that was found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from helo.models.errors import HeloError
from helo.models.features.adapt import AdaptOptions, InputAdapter
from helo.models.features.spec import FeatureSpec, ModalitySpec
from helo.models.streams import StreamDescription


class MappingError(HeloError):
    """Streams do not match what a model needs."""


@dataclass(frozen=True)
class ModalitySource:
    """Stream ``stream`` (index into the described streams) feeds ``modality``
    through ``adapter`` (which of its channels, units, rate)."""

    modality: str
    stream: int
    adapter: InputAdapter


@dataclass
class StreamMapping:
    sources: dict[str, ModalitySource] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # modality -> why it has no stream
    errors: list[str] = field(default_factory=list)  # streams that exist but do not fit

    def header_lines(self, streams: Sequence[StreamDescription]) -> list[str]:
        """``modality <- stream`` and what is adapted, for the session header."""
        lines = []
        for name, source in self.sources.items():
            lines.append(f"{name} <- {streams[source.stream].describe()}")
            lines += [f"  {name}: {line}" for line in source.adapter.describe()]
        return lines

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
    options: AdaptOptions | None = None,
) -> StreamMapping:
    """Match every modality of ``spec`` to one of ``streams``.

    ``overrides`` maps a modality name to a stream name, source_id or type;
    ``options`` says what the lab knows of its streams (labels, montage, units).
    """
    options = options or AdaptOptions()
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
        fits, why_not = [], []
        for i in candidates:
            try:
                fits.append((i, InputAdapter(mod, streams[i], options)))
            except HeloError as exc:  # adaptation, labels, units, interpolation
                why_not.append(str(exc))
        if not fits:
            mapping.errors.append(why_not[0])
            continue
        if len(fits) > 1:
            names = [streams[i].describe() for i, _ in fits]
            mapping.errors.append(
                f"{mod.name}: {len(fits)} streams fit ({', '.join(names)}); "
                f"choose one with --stream {mod.name}=NAME"
            )
            continue
        index, adapter = fits[0]
        mapping.sources[mod.name] = ModalitySource(mod.name, index, adapter)
    return mapping

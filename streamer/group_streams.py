"""A group's streams matched to the model: participant by participant, live and replay.

:func:`map_participants` groups the streams into participants
(:mod:`helo.streamer.grouping`), then matches each participant's streams to the
model's modalities exactly as a one-person session does
(:func:`~helo.models.features.mapping.map_streams`), with that participant's
``[participants.NAME]`` entries as stream overrides. A participant missing a
modality runs with it masked; a problem is named with its participant.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from helo.models.features.mapping import MappingError, ModalitySource, map_streams
from helo.models.features.spec import FeatureSpec
from helo.models.streams import LABELS_TYPE, TRUTH_TYPE, StreamDescription
from helo.streamer.config import SessionConfig
from helo.streamer.grouping import Grouping, group_streams, participant_overrides


@dataclass
class ParticipantStreams:
    """Which stream feeds which modality of which participant (indices into the
    streams given to :func:`map_participants`)."""

    grouping: Grouping
    sources: dict[str, dict[str, ModalitySource]] = field(default_factory=dict)
    missing: dict[str, dict[str, str]] = field(default_factory=dict)  # participant -> why
    truth: dict[str, int] = field(default_factory=dict)  # participant -> its truth stream
    labels: dict[str, int] = field(default_factory=dict)  # participant -> its label stream
    errors: list[str] = field(default_factory=list)

    @property
    def participants(self) -> list[str]:
        return self.grouping.participants

    @property
    def complete(self) -> bool:
        """Every participant has a stream for every modality."""
        return not any(self.missing.values())

    def used_streams(self) -> list[int]:
        """Every stream that feeds someone, once, in order."""
        return sorted({s.stream for group in self.sources.values() for s in group.values()})

    def raise_for_errors(
        self, spec: FeatureSpec, streams: Sequence[StreamDescription], allow_missing: bool
    ) -> None:
        """One :class:`MappingError` naming every participant's problems."""
        problems = list(self.errors)
        for participant, missing in self.missing.items():
            if not allow_missing or not self.sources.get(participant):
                problems += [f"{participant}: {why}" for why in missing.values()]
        if problems:
            raise MappingError(" | ".join(problems))

    def lines(self, streams: Sequence[StreamDescription]) -> list[str]:
        """The table of who gets which streams, and what each participant lacks."""
        lines = self.grouping.table(streams)
        for participant, missing in self.missing.items():
            lines += [f"  {participant}: {why} (masked)" for why in missing.values()]
        return lines


def map_participants(
    spec: FeatureSpec, streams: Sequence[StreamDescription], config: SessionConfig
) -> ParticipantStreams:
    """Group ``streams`` into participants and match each one's to ``spec``; raises
    :class:`~helo.streamer.grouping.GroupingError` for a grouping that cannot be right."""
    wanted = {m.stream_type.lower() for m in spec.modalities}
    grouping = group_streams(
        streams,
        rule=config.grouping_rule,
        selection=config.selection,
        configured=config.participants,
        wanted_types=wanted,
    )
    out = ParticipantStreams(grouping)
    for participant, members in grouping.members.items():
        own = [streams[i] for i in members]
        overrides = participant_overrides(config.participants, participant, spec.names)
        mapping = map_streams(spec, own, overrides, config.inputs)
        out.sources[participant] = {
            name: ModalitySource(name, members[source.stream], source.adapter)
            for name, source in mapping.sources.items()
        }
        out.missing[participant] = dict(mapping.missing)
        out.errors += [f"{participant}: {why}" for why in mapping.errors]
        entries = config.participants.get(participant, {})
        for kind, found in ((TRUTH_TYPE, out.truth), (LABELS_TYPE, out.labels)):
            key = "truth" if kind == TRUTH_TYPE else "labels"
            for i in members:
                named = entries.get(key) in (streams[i].name, streams[i].source_id)
                if named or (key not in entries and streams[i].type.lower() == kind.lower()):
                    found.setdefault(participant, i)
    return out


def unowned_label_streams(
    streams: Sequence[StreamDescription], owned: Collection[int]
) -> list[int]:
    """The EmotionLabels streams that belong to no participant: in no member's streams
    and naming none (another member's, left out by ``--participants``, names them). A
    group shares such a stream: the stimulus PC's markers, for everyone."""
    return [
        i
        for i, d in enumerate(streams)
        if d.type.lower() == LABELS_TYPE.lower() and i not in owned and not d.participant
    ]

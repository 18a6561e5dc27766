"""Who wears which stream: the streams of a group session grouped into participants.

In a group study every participant has their own EEG, GSR and camera, all on one LSL
network (or in one recording). The streams are grouped by the first of these that
the session has or the streams say, unless ``--participants-by`` names one:

1. ``config``: the session's ``[participants.P01] eeg = "source_id or name"`` tables;
2. ``desc``: a participant (or subject) field in the stream's description;
3. ``hostname``: the machine that sends it (one acquisition PC per participant);
4. ``name:REGEX``: a pattern on the stream's name (or source_id), its first group
   naming the participant (``name:(P\\d+)``; ``auto`` tries ``P01``-style names).

Live and replay group the same :class:`~helo.models.streams.StreamDescription` s with
the same code, so a recording replays participant by participant as it was run. A
grouping that cannot be right (a stream matched by two participants, a data stream
of a wanted type that belongs to no one, a participant count other than asked) is a
one-line :class:`GroupingError` listing what is wrong; two fitting streams of one
modality within a participant are refused by the stream mapping, naming the
participant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from helo.models.errors import HeloError
from helo.models.streams import StreamDescription, is_data_type

RULES = ("auto", "config", "desc", "hostname", "name")
# auto's last resort: P01-style participant names inside a stream name
DEFAULT_NAME_PATTERN = r"(?<![A-Za-z0-9])(P\d{1,3})(?![0-9])"


class GroupingError(HeloError):
    """The streams cannot be told apart into participants as asked."""


@dataclass(frozen=True)
class GroupingRule:
    """How streams are told apart (``--participants-by``)."""

    kind: str = "auto"
    pattern: str | None = None  # the name rule's regular expression

    @classmethod
    def parse(cls, text: str | None) -> GroupingRule:
        """``auto``, ``config``, ``desc``, ``hostname`` or ``name:REGEX``."""
        text = (text or "auto").strip()
        kind, sep, pattern = text.partition(":")
        kind = kind.strip().lower()
        if kind not in RULES or (kind == "name") != bool(sep and pattern):
            raise GroupingError(
                f"--participants-by {text!r}: use auto, config, desc, hostname or "
                'name:REGEX (e.g. name:"(P\\d+)")'
            )
        if kind == "name":
            try:
                re.compile(pattern)
            except re.error as exc:
                raise GroupingError(f"--participants-by {text!r}: not a pattern ({exc})") from None
        return cls(kind, pattern if kind == "name" else None)


@dataclass(frozen=True)
class Selection:
    """Which participants a session follows (``--participants auto|N|P01,P02``)."""

    count: int | None = None  # exactly this many
    names: tuple[str, ...] = ()  # exactly these (others on the network are left alone)

    @classmethod
    def parse(cls, text: str | None) -> Selection:
        text = (text or "auto").strip()
        if text.lower() == "auto":
            return cls()
        if text.isdigit():
            if not 1 <= int(text) <= 64:
                raise GroupingError(f"--participants {text}: give 1 to 64 participants")
            return cls(count=int(text))
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        if not names or len(set(names)) != len(names):
            raise GroupingError(
                f"--participants {text!r}: use auto, a number, or names like P01,P02 (each once)"
            )
        return cls(names=names)

    def expected(self) -> int | None:
        return len(self.names) if self.names else self.count


@dataclass
class Grouping:
    """Participants and their streams (indices into the descriptions grouped)."""

    rule: str  # the rule that made it, for the table
    members: dict[str, list[int]] = field(default_factory=dict)

    @property
    def participants(self) -> list[str]:
        return list(self.members)

    def table(self, streams: Sequence[StreamDescription]) -> list[str]:
        """One line per participant: its streams (the table printed before a start)."""
        lines = [f"{len(self.members)} participant(s), grouped by {self.rule}:"]
        for name, indices in self.members.items():
            ordered = sorted(indices, key=lambda i: (streams[i].type.lower(), streams[i].name))
            described = ", ".join(f"{streams[i].type} {streams[i].name!r}" for i in ordered)
            lines.append(f"  {name}: {described or 'no streams'}")
        return lines


def group_streams(
    streams: Sequence[StreamDescription],
    *,
    rule: GroupingRule | None = None,
    selection: Selection | None = None,
    configured: Mapping[str, Mapping[str, str]] | None = None,
    wanted_types: Iterable[str] = (),
) -> Grouping:
    """Group ``streams`` into participants (see the module docstring). ``wanted_types``
    are the stream types the model reads: such a stream that belongs to no participant
    is ambiguous and refused (with ``config`` or named participants, streams not
    named are simply not ours)."""
    rule = rule or GroupingRule()
    selection = selection or Selection()
    configured = configured or {}
    kind = rule.kind if rule.kind != "auto" else _auto_rule(streams, configured)
    if kind == "config" and not configured:
        raise GroupingError(
            "--participants-by config: the session config has no [participants.NAME] tables"
        )
    owners: dict[int, str] = {}
    problems: list[str] = []
    for i, stream in enumerate(streams):
        names = _owners(stream, kind, rule.pattern, configured)
        if len(names) > 1:
            problems.append(f"{stream.name!r} matches {' and '.join(names)}")
        elif names:
            owners[i] = names[0]
    members: dict[str, list[int]] = {}
    for i in sorted(owners, key=lambda i: (_natural(owners[i]), i)):
        members.setdefault(owners[i], []).append(i)
    for name in configured:
        if kind == "config":
            members.setdefault(name, [])
    if selection.names:
        members = {n: members[n] for n in selection.names if n in members}
    elif kind != "config":
        wanted = {t.lower() for t in wanted_types}
        orphans = [
            s.name
            for i, s in enumerate(streams)
            if i not in owners and is_data_type(s.type) and s.type.lower() in wanted
        ]
        if orphans:
            problems.append(
                f"{', '.join(repr(n) for n in orphans)} belong(s) to no participant by {_say(kind)}"
            )
    missing = [n for n in selection.names if n not in members]
    if missing:
        problems.append(f"no streams for {', '.join(missing)} by {_say(kind)}")
    expected = selection.expected()
    if expected is not None and not missing and len(members) != expected:
        problems.append(f"{len(members)} participant(s) found by {_say(kind)}, {expected} asked")
    if not members and not problems:
        problems.append(f"no participant found by {_say(kind)}")
    if problems:
        found = ", ".join(f"{n}: {len(v)} stream(s)" for n, v in members.items()) or "none"
        raise GroupingError(
            f"cannot group the streams into participants: {'; '.join(problems)} "
            f"(found {found}); name them in [participants.NAME] or use --participants-by"
        )
    return Grouping(_say(kind), members)


def _auto_rule(streams: Sequence[StreamDescription], configured: Mapping) -> str:
    """The first rule the session or the streams offer."""
    data = [s for s in streams if is_data_type(s.type)]
    if configured:
        return "config"
    if any(s.participant for s in data):
        return "desc"
    if len({s.hostname for s in data if s.hostname}) > 1:
        return "hostname"
    return "name"


def _owners(
    stream: StreamDescription, kind: str, pattern: str | None, configured: Mapping
) -> list[str]:
    """The participant(s) ``stream`` belongs to by rule ``kind``."""
    if kind == "config":
        keys = {stream.name, stream.source_id} - {""}
        return [p for p, entries in configured.items() if keys & set(entries.values())]
    if kind == "desc":
        return [stream.participant] if stream.participant else []
    if kind == "hostname":
        return [stream.hostname] if stream.hostname else []
    regex = re.compile(pattern or DEFAULT_NAME_PATTERN)
    for text in (stream.name, stream.source_id):
        match = regex.search(text or "")
        if match:
            return [match.group(1) if regex.groups else match.group(0)]
    return []


def _say(kind: str) -> str:
    return {
        "config": "the session config",
        "desc": "the streams' participant field",
        "hostname": "hostname",
    }.get(kind, "stream name")


def _natural(name: str) -> tuple:
    """P2 before P10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def participant_overrides(
    configured: Mapping[str, Mapping[str, str]], participant: str, modalities: Iterable[str]
) -> dict[str, str]:
    """The stream overrides of one participant's config table (its modality keys)."""
    entries = configured.get(participant, {})
    return {m: entries[m] for m in modalities if m in entries}

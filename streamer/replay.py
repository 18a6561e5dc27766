"""The samples of an XDF recording, written into ring buffers as a replay's clock advances.

:func:`helo.models.xdf.read_recording` reads the file (clock synchronisation, and
de-jittering except for streams whose timestamps are real frame times); the streams
are matched to the model's modalities exactly as live
(:mod:`helo.models.features.mapping`); then, as a
:class:`~helo.streamer.clocks.ReplayClock` advances virtual time, the samples up to
that time go into the same kind of ring buffers a live reader fills, and the scheduler
cuts them like live ones. :class:`~helo.streamer.replay_session.ReplaySession` puts it
together.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pylsl

from helo.models.datasets.windows import features_from_recording
from helo.models.errors import DatasetError
from helo.models.features.adapt import AdaptOptions
from helo.models.features.mapping import MappingError, map_streams
from helo.models.features.spec import FeatureSpec
from helo.models.streams import (
    ENDS_FOLLOW_FIELD,
    PREDICTION_TYPE,
    declare_channels,
    xdf_child,
    xdf_field,
)
from helo.models.xdf import RecordedStream, read_recording
from helo.streamer.buffers import RingBuffer
from helo.streamer.lsl_reader import StreamHealth
from helo.streamer.scheduler import Feed

log = logging.getLogger(__name__)


class ReplaySource:
    """Writes a recording's samples into ring buffers as virtual time advances."""

    def __init__(
        self,
        path: str | Path,
        spec: FeatureSpec,
        *,
        overrides: Mapping[str, str] | None = None,
        allow_missing: bool = True,
        streams: Sequence[RecordedStream] | None = None,
        inputs: AdaptOptions | None = None,
        history_s: float = 5.0,
        participant: str = "",
    ):
        """``history_s``: seconds of samples the buffers keep beyond the longest window
        (a batch of windows is cut from them at once: its span, and the age that makes
        a stream stale); ``participant``: whose streams these are in a group recording
        (named in what the replay says of them)."""
        self.path = Path(path)
        self.spec = spec
        self.streams = list(streams) if streams is not None else read_recording(self.path)
        data = [s for s in self.streams if s.description.numeric]
        descriptions = [s.description for s in data]
        mapping = map_streams(spec, descriptions, overrides, inputs)
        for name, source in list(mapping.sources.items()):
            if len(data[source.stream].times) == 0:  # a header without samples cannot feed
                del mapping.sources[name]
                mapping.missing[name] = (
                    f"{name}: stream {descriptions[source.stream].describe()} holds no samples"
                )
        try:
            mapping.raise_for_errors(spec, descriptions, allow_missing=allow_missing)
        except MappingError as exc:
            raise MappingError(f"{self.path}: {exc}") from None
        self.missing = dict(mapping.missing)
        whose = f"{participant}: " if participant else ""
        for why in self.missing.values():
            log.warning("%s: %s%s; replaying without it", self.path, whose, why)
        for line in mapping.header_lines(descriptions):
            log.info("%s", line)
        self.feeds: dict[str, Feed] = {}
        self._stream_of: dict[str, RecordedStream] = {}
        self._sources: list[tuple[RecordedStream, RingBuffer]] = []
        self._next: list[int] = []
        used: dict[int, RingBuffer] = {}
        for name, source in mapping.sources.items():
            stream = data[source.stream]
            if source.stream not in used:
                rate = stream.description.srate_hz or _rate_of(stream.times)
                capacity = int(np.ceil((spec.max_window_s + history_s) * rate)) + 16
                used[source.stream] = RingBuffer(capacity, stream.samples.shape[1], np.float32)
                self._sources.append((stream, used[source.stream]))
                self._next.append(0)
            self.feeds[name] = Feed(used[source.stream], source.adapter)
            self._stream_of[name] = stream
        fed = [s for s, _ in self._sources]
        self.start_s = min(float(s.times[0]) for s in fed)
        self.end_s = max(float(s.times[-1]) for s in fed)
        self._outlets: list[pylsl.StreamOutlet] = []
        self._speed = 1.0
        self._publish_offset = 0.0

    def recorded_prediction_times(self) -> np.ndarray | None:
        """Timestamps of the predictions recorded in the file (window ends), if any."""
        recorded = prediction_streams(self.streams)
        return recorded[0].times if recorded else None

    def raw_features(self, ends: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Raw features of windows ending at ``ends``, cut from the whole recording the way
        training cuts them (for the normalisation state before a replay's ``--from``)."""
        streams = {n: (s.times, s.samples) for n, s in self._stream_of.items()}
        adapters = {n: feed.adapter for n, feed in self.feeds.items()}
        return features_from_recording(self.spec, streams, ends, adapters=adapters)

    def grid_ends(self, hop_s: float) -> np.ndarray:
        """Window ends every ``hop_s`` from the first full window to the last sample
        (:func:`replay_ends`)."""
        return replay_ends(
            self.path, self.streams, self.start_s, self.end_s, self.spec.max_window_s, hop_s
        )

    def republish(self, speed: float | None) -> None:
        """Re-publish the replayed streams on LSL, stamped in this machine's clock."""
        for stream, _ in self._sources:
            d = stream.description
            info = pylsl.StreamInfo(
                f"{d.name} (replay)",
                d.type,
                stream.samples.shape[1],
                d.srate_hz * (speed or 1.0),
                pylsl.cf_float32,
                f"{d.source_id or d.name}-replay",
            )
            declare_channels(info, d.channels, units=d.units or None)
            self._outlets.append(pylsl.StreamOutlet(info))
        self._speed = speed or 1.0
        self._publish_offset = pylsl.local_clock()

    def close(self) -> None:
        """Withdraw the re-published outlets."""
        self._outlets.clear()

    def health(self, now: float) -> list[StreamHealth]:
        """How each replayed stream is doing at virtual time ``now`` (as live readers
        report it: samples so far, effective rate, age of the newest sample)."""
        out = []
        for (stream, buffer), pushed in zip(self._sources, self._next, strict=True):
            d = stream.description
            newest = buffer.newest_time()
            out.append(
                StreamHealth(
                    d.name,
                    d.type,
                    d.source_id,
                    d.n_channels,
                    d.srate_hz,
                    effective_srate_hz=buffer.rate_hz(),
                    received=pushed,
                    newest_age_s=None if newest is None else max(0.0, now - newest),
                )
            )
        return out

    def seek(self, t: float) -> None:
        """Continue from ``t``: empty the buffers and rewind (or skip) each stream to the
        samples the first window after ``t`` needs, so that windows after a seek are the
        same as in a replay that never jumped."""
        history_s = self.spec.max_window_s + 1.0
        for k, (stream, buffer) in enumerate(self._sources):
            buffer.clear(lost=False)
            self._next[k] = int(np.searchsorted(stream.times, t - history_s, side="right"))

    def push_until(self, t: float) -> None:
        """Write every sample stamped up to ``t`` into its ring buffer."""
        for k, (stream, buffer) in enumerate(self._sources):
            start = self._next[k]
            stop = int(np.searchsorted(stream.times, t, side="right"))
            if stop <= start:
                continue
            samples = stream.samples[start:stop]
            buffer.write(samples, stream.times[start:stop])
            self._next[k] = stop
            stream.release_before(stop)  # in the ring buffer now: memory stays flat
            if self._outlets:
                stamps = (
                    self._publish_offset + (stream.times[start:stop] - self.start_s) / self._speed
                )
                self._outlets[k].push_chunk(samples.astype(np.float32), stamps.tolist())


def prediction_streams(streams: Sequence[RecordedStream]) -> list[RecordedStream]:
    """The recording's streams of our predictions that hold any (window ends)."""
    return [
        s for s in streams if s.description.type.lower() == PREDICTION_TYPE.lower() and len(s.times)
    ]


def live_anchor(streams: Sequence[RecordedStream]) -> float | None:
    """The first window end of the live session a recording holds the predictions of
    (None: it holds none). Taken as recorded, in the file's clock: the session's
    windows ended on multiples of the hop on its own LSL clock, which the recorder's
    clock synchronisation moves (by 17 us in the demo recording; by seconds for a
    LabRecorder on another machine)."""
    firsts = [float(s.times[0]) for s in prediction_streams(streams)]
    return min(firsts) if firsts else None


def live_hop(streams: Sequence[RecordedStream]) -> float | None:
    """The hop of the live session a recording holds the predictions of: its prediction
    outlet declares one sample per hop (None: no predictions, no rate, or streams that
    disagree)."""
    # the header holds the rate to 16 digits: 1 / rate is the hop to 1e-16, rounded to
    # the nanosecond (0.30000000000000004 -> 0.3, the hop the session was given)
    hops = {
        round(1.0 / s.description.srate_hz, 9)
        for s in prediction_streams(streams)
        if s.description.srate_hz > 0
    }
    return hops.pop() if len(hops) == 1 else None


def followed_by(streams: Sequence[RecordedStream]) -> float:
    """How far past the hop's grid the recorded live session's windows could end, as
    its prediction streams declare (0: on the grid, or no predictions recorded)."""
    spans = [0.0]
    for stream in prediction_streams(streams):
        declared = xdf_field(xdf_child(stream.info, "desc", "helo"), ENDS_FOLLOW_FIELD)
        try:
            spans.append(float(declared or 0.0))
        except ValueError:
            continue  # not a number: as if not declared
    return max(spans)


def replay_ends(
    path: Path,
    streams: Sequence[RecordedStream],
    start_s: float,
    end_s: float,
    window_s: float,
    hop_s: float,
) -> np.ndarray:
    """A replay's window ends: the live session's, where the recording holds its
    predictions and this replay is on its hop (on its grid, :func:`grid_ends`, and where
    its ends followed the packets, at its recorded ends, :func:`followed_ends`); else
    every ``hop_s`` from the first full window."""
    anchor = live_anchor(streams)
    grid = grid_ends(path, start_s, end_s, window_s, hop_s, anchor)
    if not follows_recorded(streams, hop_s):
        return grid
    recorded = np.sort(np.concatenate([s.times for s in prediction_streams(streams)]))
    return followed_ends(float(grid[0]), end_s + 1e-3, recorded, hop_s)


def follows_recorded(streams: Sequence[RecordedStream], hop_s: float) -> bool:
    """Whether a replay on ``hop_s`` cuts at the recorded ends: the recording holds a
    live session's predictions whose ends followed the packets, on that hop."""
    live = live_hop(streams)
    return followed_by(streams) > 0 and live is not None and abs(live - hop_s) <= 1e-9


def one_per_hop(ends: np.ndarray, hop_s: float) -> np.ndarray:
    """The first of ``ends`` (sorted) in each hop: a group's participants' followed ends
    of one hop lie within a tenth of a hop of each other."""
    kept = [float(ends[0])] if len(ends) else []
    for t in ends[1:].tolist():
        if t - kept[-1] > 0.5 * hop_s:
            kept.append(t)
    return np.array(kept)


def matched_ends(ends: np.ndarray, recorded: np.ndarray, hop_s: float) -> np.ndarray:
    """For each of ``ends`` (a group's hops), the one of ``recorded`` (one participant's
    ends) within half a hop of it, or the hop's end where that participant recorded no
    prediction. A group's live windows each followed their own participant's packets,
    so a hop's ends differ by up to a tenth of a hop between participants."""
    recorded = np.sort(recorded)
    if not len(recorded):
        return ends.copy()
    at = np.minimum(np.searchsorted(recorded, ends - 0.5 * hop_s), len(recorded) - 1)
    found = np.abs(recorded[at] - ends) < 0.5 * hop_s
    return np.where(found, recorded[at], ends)


def followed_ends(first: float, last: float, recorded: np.ndarray, hop_s: float) -> np.ndarray:
    """The window ends of a live session whose ends followed the packets (each up to a
    tenth of a hop past its place on the grid: :meth:`WindowScheduler._followed_end`),
    from ``first`` (an end of the session's grid, or its recorded end) to ``last``.

    Each end is the first recorded end (``recorded``: sorted; in a group, every
    participant's, each within a tenth of a hop of their hop's grid end, so the
    earliest's: :func:`matched_ends` then finds each one's own) within half a hop of
    where the end before it puts it, a hop later; a hop without a recorded prediction
    ends there. Walking from end to end rather than laying a grid
    keeps to the recorded ends when the live machine's clock drifted against the
    recorder's (20 ppm is 72 ms an hour)."""
    times = recorded.tolist()
    half, ends, at = 0.5 * hop_s, [], first
    while True:
        i = bisect.bisect_left(times, at - half)
        end = times[i] if i < len(times) and times[i] < at + half else at
        if end > last:
            break
        ends.append(end)
        at = end + hop_s
    return np.array(ends)


def grid_ends(
    path: Path,
    start_s: float,
    end_s: float,
    window_s: float,
    hop_s: float,
    anchor: float | None = None,
) -> np.ndarray:
    """Window ends every ``hop_s`` from the first full window to the last sample.

    ``anchor``: a window end of the live session the file recorded (:func:`live_anchor`):
    the ends are then on that session's grid, so the replay's windows are the session's,
    and a participant of a group recording gets the same windows whoever else is
    replayed beside them (from the first sample, the grid would move with the streams
    chosen). Else from the first full window."""
    full = start_s + window_s
    first = full
    if anchor is not None:
        first = anchor + np.ceil((full - anchor) / hop_s - 1e-9) * hop_s
    # Up to the last sample, with a millisecond for clock-synchronised timestamps.
    count = int(np.floor((end_s + 1e-3 - first) / hop_s)) + 1
    if full > end_s or count < 1:
        raise DatasetError(
            f"{path}: {end_s - start_s:.2f} s of data is shorter than one {window_s:g} s window"
            + ("" if full > end_s else f" ending on the {hop_s:g} s hop grid")
        )
    return first + np.arange(count) * hop_s


class ReplayGroup:
    """A group recording: one :class:`ReplaySource` per participant over the streams
    the grouping gave them, advanced together on one clock (the file is read once)."""

    def __init__(
        self,
        path: str | Path,
        spec: FeatureSpec,
        members: Mapping[str, Sequence[int]],
        streams: Sequence[RecordedStream],
        *,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        allow_missing: bool = True,
        inputs: AdaptOptions | None = None,
        history_s: float = 5.0,
    ):
        self.path = Path(path)
        self.spec = spec
        self.streams = list(streams)
        self.sources: dict[str, ReplaySource] = {}
        for participant, indices in members.items():
            try:
                self.sources[participant] = ReplaySource(
                    path,
                    spec,
                    overrides=(overrides or {}).get(participant),
                    allow_missing=allow_missing,
                    streams=[self.streams[i] for i in indices],
                    inputs=inputs,
                    history_s=history_s,
                    participant=participant,
                )
            except MappingError as exc:
                raise MappingError(f"{participant}: {exc}") from None
        self.start_s = min(s.start_s for s in self.sources.values())
        self.end_s = max(s.end_s for s in self.sources.values())
        self.missing = {
            f"{p}/{m}": why for p, src in self.sources.items() for m, why in src.missing.items()
        }

    @property
    def groups(self) -> dict[str, dict[str, Feed]]:
        return {p: source.feeds for p, source in self.sources.items()}

    def grid_ends(self, hop_s: float) -> np.ndarray:
        return replay_ends(
            self.path, self.streams, self.start_s, self.end_s, self.spec.max_window_s, hop_s
        )

    def participant_ends(self, hop_s: float, ends: np.ndarray) -> dict[str, np.ndarray] | None:
        """Each participant's window ends at the hops of ``ends`` (:meth:`grid_ends`), where
        the live session's windows followed each participant's own packets: their own
        recorded ends (:func:`matched_ends`); None where the windows were on the grid,
        the same for everyone."""
        if not follows_recorded(self.streams, hop_s):
            return None
        predictions = prediction_streams(self.streams)
        return {
            p: matched_ends(
                ends,
                np.concatenate(
                    [np.empty(0)] + [s.times for s in predictions if s.description.participant == p]
                ),
                hop_s,
            )
            for p in self.sources
        }

    def recorded_prediction_times(self) -> np.ndarray | None:
        """Every hop's window end any participant's recorded predictions have (one may
        lack some: a participant without a prediction sends no sample); where each
        participant's ends followed their own packets, a hop's earliest (each is then cut
        at their own: :meth:`participant_ends`)."""
        times = [s.times for s in prediction_streams(self.streams)]
        if not times:
            return None
        ends = np.unique(np.round(np.concatenate(times), 6))
        hop = live_hop(self.streams)
        return one_per_hop(ends, hop) if followed_by(self.streams) > 0 and hop else ends

    def push_until(self, t: float) -> None:
        for source in self.sources.values():
            source.push_until(t)

    def seek(self, t: float) -> None:
        for source in self.sources.values():
            source.seek(t)

    def republish(self, speed: float | None) -> None:
        for source in self.sources.values():
            source.republish(speed)

    def health(self, now: float) -> list[StreamHealth]:
        return [h for source in self.sources.values() for h in source.health(now)]

    def close(self) -> None:
        for source in self.sources.values():
            source.close()


def _rate_of(times: np.ndarray) -> float:
    """Effective rate of an irregular stream (for sizing its buffer)."""
    if len(times) < 2:
        return 1.0
    return max(1.0, (len(times) - 1) / max(times[-1] - times[0], 1e-6))

"""The part every session shares: a scheduler cutting windows, a worker predicting.

Given feeds (ring buffers with their channel selection) and a clock, a
:class:`Pipeline` cuts the windows of every hop and hands them to the inference
worker, whose predictions go to the subscribers. Live sessions and replays differ
only in the feeds and the clock they give it (:mod:`helo.streamer.session`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

from helo.models.checkpoint import Checkpoint
from helo.models.features.participant import FeatureNormaliser
from helo.models.inference import Predictor
from helo.models.personal_inputs import PersonalInputs
from helo.models.training import resolve_device
from helo.streamer.clocks import Clock
from helo.streamer.scheduler import MAX_WAIT_S, STALE_S, Feed, WindowScheduler, WindowSet
from helo.streamer.window_log import WindowLog
from helo.streamer.worker import Calibration, FeaturedBatch, InferenceWorker, Subscriber

REPLAY_QUEUE = 3  # batches cut ahead of the worker in a replay at full speed


class Pipeline:
    """Scheduler + inference worker over given feeds and clock.

    ``batch`` > 1 hands the worker fixed batches of that many windows (a replay at full
    speed: the same batches every run, hence the same numbers); ``batch_offset`` is the
    index of the first window on the full grid of window ends, so that a replay of a
    span closes its batches where a replay of the whole file does.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        feeds: Mapping[str, Feed],
        clock: Clock,
        subscribers: Sequence[Subscriber],
        *,
        hop_s: float | None = None,
        max_wait_s: float = MAX_WAIT_S,
        stale_s: float = STALE_S,
        accelerator: str = "auto",
        ends: Sequence[float] | np.ndarray | None = None,
        start_s: float | None = None,
        batch: int = 1,
        batch_offset: int = 0,
        normaliser: FeatureNormaliser | None = None,
        window_log: WindowLog | None = None,
        calibration: Calibration | None = None,
        groups: Mapping[str, Mapping[str, Feed]] | None = None,
        threads: int | None = None,
        personal: Mapping[str, PersonalInputs] | None = None,
        align: bool = True,
        follow: bool = True,
        participant_ends: Mapping[str, np.ndarray] | None = None,
    ):
        self.checkpoint = checkpoint
        self.predictor = Predictor(checkpoint, device=resolve_device(accelerator), workers=threads)
        self._windows_per_hop = len(groups) if groups else 1
        if clock.waits_for_data:  # live: the first windows' latency pays no tracing
            self.predictor.warm_up(self._windows_per_hop)
        self.scheduler = WindowScheduler(
            checkpoint.spec,
            feeds,
            clock,
            hop_s=hop_s,
            max_wait_s=max_wait_s,
            stale_s=stale_s,
            start_s=start_s,
            ends=ends,
            groups=groups,
            align=align,
            follow=follow,
            participant_ends=participant_ends,
        )
        self.batch = max(1, batch)
        self.batch_offset = batch_offset
        self.worker = InferenceWorker(
            self.predictor,
            subscribers,
            live=clock.waits_for_data,
            max_batch=max(64, batch),
            # a replay's items are whole batches (10-20 MB of EEG windows each): a few
            # keep the worker fed; 64 of them held 700 MB for no gain
            queue_size=64 if self.batch == 1 else REPLAY_QUEUE,
            normaliser=normaliser,
            window_log=window_log,
            calibration=calibration,
            personal=personal,
        )

    def run(self, stop: threading.Event, duration_s: float | None = None) -> int:
        """Cut and predict until ``stop`` is set, ``duration_s`` of clock time passed, or
        the clock ends; returns the number of window sets handled. A group's window
        sets of one hop always go to the worker together (one batch for everyone)."""
        self.worker.start()
        if self.batch > 1 and duration_s is None:
            return self._run_batches(stop)
        started = None
        pending: list[WindowSet] = []
        count = hops = 0
        try:
            for hop in self.scheduler.hops():
                t_end = hop[0].t_end
                started = t_end if started is None else started
                pending.extend(hop)
                count += len(hop)
                hops += 1
                if (self.batch_offset + hops) % self.batch == 0:
                    fixed = self.batch > 1 or len(pending) > 1  # else: live, one window
                    self.worker.submit(pending if fixed else pending[0])
                    pending = []
                if stop.is_set() or (duration_s is not None and t_end - started >= duration_s):
                    break
        finally:
            if pending:
                self.worker.submit(pending)
            self.scheduler.stop()
            self.worker.finish()
            self.predictor.close()
        return count

    def _run_batches(self, stop: threading.Event) -> int:
        """A replay at full speed: fixed batches, each cut in one go
        (:meth:`WindowScheduler.batch_hops`), its features computed here, in this
        thread, while the worker's runs the model on the batch before; unless the
        session has one core (``threads=1``, a Ray task's share): then the worker
        computes them, and several tasks side by side do not fight over the cores."""
        count = 0
        try:
            for hops in self.scheduler.batch_hops(self.batch, self.batch_offset):
                batch = [window_set for hop in hops for window_set in hop]
                self.worker.submit(self._featured(batch))
                count += len(batch)
                if stop.is_set():
                    break
        finally:
            self.scheduler.stop()
            self.worker.finish()
            self.predictor.close()
        return count

    def _featured(self, batch: list[WindowSet]) -> FeaturedBatch | list[WindowSet]:
        """The batch with its features, where this thread computes them; the batch alone
        for one core, or when they fail (the worker then says why, as for any batch)."""
        if self.predictor.workers <= 1:  # one core for this session: one busy thread
            return batch
        try:
            return FeaturedBatch(batch, self.worker.features(batch))
        except Exception:  # the worker's own attempt reports it and the session goes on
            return batch

    def stop(self) -> None:
        self.scheduler.stop()

    def switch_model(self, checkpoint: Checkpoint) -> None:
        """Predict with ``checkpoint`` from the next batch on (same spec: the caller
        checked); the normalisation state and everything else go on as they were."""
        predictor = Predictor(checkpoint, device=self.predictor.device)
        if self.worker.live:  # as at the start: the switch's first hop pays no tracing
            predictor.warm_up(self._windows_per_hop)
        old = self.predictor
        self.checkpoint, self.predictor = checkpoint, predictor
        self.worker.predictor = predictor
        old.close()

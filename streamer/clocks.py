"""Clocks for the scheduler: the wall clock live, a virtual clock in replay.

Both count in LSL seconds (``pylsl.local_clock`` time base). The wall clock
sleeps until a time comes; the replay clock *makes* it come: advancing it pushes
the recording's samples up to that time into the ring buffers (``on_advance``),
immediately at ``speed=None`` ("max") or paced to ``speed`` times real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import pylsl


class Clock(Protocol):
    waits_for_data: bool  # live streams may lag behind the clock; replayed ones never do

    def now(self) -> float: ...

    def wait_until(self, t: float) -> bool:
        """Block until time ``t``; False if the clock ended or was interrupted."""
        ...

    def interrupt(self) -> None: ...

    def seek(self, t: float) -> None:
        """Ask to continue from time ``t`` (a replay; the wall clock cannot)."""
        ...

    def take_seek(self) -> float | None:
        """The pending seek target, carried out now; None when there is none. The
        scheduler asks between windows, so a seek never tears a window in half."""
        ...


class WallClock:
    """This machine's LSL clock."""

    waits_for_data = True

    def __init__(self) -> None:
        self._interrupted = threading.Event()

    def now(self) -> float:
        return pylsl.local_clock()

    def wait_until(self, t: float) -> bool:
        while not self._interrupted.is_set():
            left = t - pylsl.local_clock()
            if left <= 0:
                return True
            self._interrupted.wait(min(left, 0.5))
        return False

    def interrupt(self) -> None:
        self._interrupted.set()

    def seek(self, t: float) -> None:
        raise ValueError("a live session cannot seek: the wall clock goes one way")

    def take_seek(self) -> float | None:
        return None


class ReplayClock:
    """Virtual time over a recording from ``start`` to ``end`` (LSL seconds).

    ``speed=None`` runs as fast as the consumer takes windows; a number paces the
    replay at that many times real time (1 = as recorded). ``paused`` holds the
    virtual time still (the GUI's play/pause). :meth:`seek` asks to jump to
    another time; the scheduler takes the request between windows
    (:meth:`take_seek`), so a seek never tears a window in half, and ``on_seek``
    lets the source reposition its buffers.
    """

    waits_for_data = False

    def __init__(
        self,
        start: float,
        end: float,
        on_advance: Callable[[float], None],
        *,
        speed: float | None = None,
        on_seek: Callable[[float], None] | None = None,
    ):
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (max), got {speed!r}")
        self.start, self.end, self.speed = float(start), float(end), speed
        self._on_advance = on_advance
        self._on_seek = on_seek or (lambda t: None)
        self._virtual = float(start)
        self._wall0 = time.perf_counter()
        self._interrupted = threading.Event()
        self._wake = threading.Event()  # set by interrupt() and seek(): stop waiting
        self._lock = threading.Lock()
        self._seek_to: float | None = None
        self.paused = threading.Event()

    def now(self) -> float:
        return self._virtual

    def set_speed(self, speed: float | None) -> None:
        """Change the pace from the current virtual time on."""
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (max), got {speed!r}")
        self.speed = speed
        self._restart_pace()

    def seek(self, t: float) -> None:
        """Ask to continue from virtual time ``t`` (clamped to the recording)."""
        with self._lock:
            self._seek_to = min(max(float(t), self.start), self.end)
        self._wake.set()

    def take_seek(self) -> float | None:
        """The pending seek target, now carried out (None if there is none)."""
        with self._lock:
            target, self._seek_to = self._seek_to, None
            if not self._interrupted.is_set():
                self._wake.clear()
        if target is None:
            return None
        self._on_seek(target)
        self._virtual = target
        self._restart_pace()
        return target

    def _waiting(self) -> bool:
        return not self._interrupted.is_set() and self._seek_to is None

    def wait_until(self, t: float) -> bool:
        """Advance to ``t`` at the set pace; True without advancing when a seek came in
        meanwhile (the caller takes it), False when interrupted or past the end."""
        if t > self.end and self._seek_to is None:
            return False
        while self.paused.is_set() and self._waiting():
            self._wake.wait(0.05)
            self._restart_pace()
        if self.speed is not None:
            due = self._wall0 + (t - self.start) / self.speed
            while self._waiting():
                left = due - time.perf_counter()
                if left <= 0:
                    break
                self._wake.wait(min(left, 0.5))
        if self._interrupted.is_set():
            return False
        if self._seek_to is not None:
            return True
        self._on_advance(t)
        self._virtual = max(self._virtual, t)
        return True

    def _restart_pace(self) -> None:
        """Pace from the current virtual time on (after a pause, seek or change of speed)."""
        elapsed = (self._virtual - self.start) / self.speed if self.speed else 0.0
        self._wall0 = time.perf_counter() - elapsed

    def interrupt(self) -> None:
        self._interrupted.set()
        self._wake.set()

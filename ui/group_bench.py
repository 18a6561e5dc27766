"""The app under a group: redraws per second and the longest event-loop stall of the main
window fed the records of N participants at the live rate.

No session runs: a background thread emits, every hop (0.25 s), one made-up record per
participant through the window's ``bridge.prediction`` signal, as the runtime's worker
does, and the window's own redraw timer and :class:`FrameStats` do the rest. So the
figures are the GUI's cost alone (grid, bars, timeline; no signal traces, which need a
session's buffers). Run as ``python -m helo.ui.group_bench [N] [SECONDS]``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from helo.streamer.worker import PredictionRecord

HOP_S = 0.25
WARM_UP_S = 1.0
MODALITIES = ("eeg", "gsr", "ppg", "face")


def bench_group_gui(participants: int = 16, seconds: float = 10.0) -> dict:
    """Redraws per second, the longest stall (ms) and the stalls over 50 ms of the main
    window (offscreen unless a display is set) over ``seconds`` after a 1-s warm-up,
    with ``participants`` participants (1: a one-person session, participant ``""``,
    the app as it was before groups, for comparison)."""
    if participants < 1:
        raise ValueError(f"participants must be at least 1, got {participants}")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    from helo.ui.qt_env import application

    app = application()
    from helo.ui.main_window import MainWindow

    window = MainWindow(timeline_s=60.0)
    window.show()
    names = [""] if participants == 1 else [f"P{i:02d}" for i in range(1, participants + 1)]
    stop = threading.Event()
    feeder = threading.Thread(
        target=_feed, args=(window.bridge.prediction.emit, names, stop), daemon=True
    )
    feeder.start()
    window._redraw_timer.start()  # as start_session does
    try:
        _spin(WARM_UP_S)
        window.stats.reset()
        _spin(seconds)
        stats = window.stats
        figures = {
            "participants": participants,
            "redraws_per_s": round(stats.fps(), 1),
            "max_stall_ms": round(stats.max_gap_ms, 1),
            "stalls_over_50ms": stats.stalls,
        }
    finally:
        stop.set()
        feeder.join(2 * HOP_S)
        window._redraw_timer.stop()
        window.close()
        app.processEvents()
    return figures


def _feed(
    emit: Callable[[PredictionRecord], None], names: list[str], stop: threading.Event
) -> None:
    """Every hop, one record per participant, one after the other, on the hop's clock."""
    rng = np.random.default_rng(0)
    labels = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
    start = time.perf_counter()
    index = 0
    while not stop.is_set():
        for name in names:
            missing = {"face": "no face found"} if rng.random() < 0.1 else {}
            emit(
                PredictionRecord(
                    index=index,
                    t_end=1000.0 + index * HOP_S,
                    labels=labels,
                    distribution=rng.dirichlet(np.ones(len(labels))),
                    present=tuple(m for m in MODALITIES if m not in missing),
                    missing=missing,
                    latency_ms=float(rng.uniform(20.0, 60.0)),
                    participant=name,
                )
            )
        index += 1
        stop.wait(max(0.0, start + index * HOP_S - time.perf_counter()))


def _spin(seconds: float) -> None:
    """Run the Qt event loop for ``seconds``."""
    from PySide6 import QtCore

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(round(seconds * 1e3), loop.quit)
    loop.exec()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    s = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    print(json.dumps(bench_group_gui(n, s)))

"""The desktop app's entry: the Qt application, the window, and what a test or a
benchmark reads off it (screenshot, redraw figures, memory). The command line starts it
(:mod:`helo.streamer.commands.gui`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from helo.streamer.config import SessionConfig
from helo.ui.qt_env import application
from helo.ui.runner import SourceChoice

log = logging.getLogger("streamer.gui")


@dataclass(frozen=True)
class AppOptions:
    """How the app is driven: start at once, how much timeline, and for tests and
    benchmarks a screenshot, a quit timer and a file of figures."""

    start: bool = False
    timeline_s: float = 60.0
    screenshot: Path | None = None
    quit_after_s: float | None = None
    stats: Path | None = None


def run_gui(
    choice: SourceChoice, options: AppOptions, *, base_config: SessionConfig | None = None
) -> int:
    """The app's event loop until its window closes; returns the exit status."""
    app = application()
    from PySide6 import QtCore

    from helo.ui.main_window import MainWindow

    base = base_config or SessionConfig()
    window = MainWindow(
        choice,
        checkpoint=base.checkpoint,
        record_dir=base.record,
        timeline_s=options.timeline_s,
        base_config=base,
    )
    window.show()
    if options.start:
        QtCore.QTimer.singleShot(0, window.start_session)
    memory = MemoryLog(window) if options.stats else None
    if options.quit_after_s:

        def finish() -> None:
            if options.screenshot:
                options.screenshot.parent.mkdir(parents=True, exist_ok=True)
                save_screenshot(window, options.screenshot)
            if options.stats and memory is not None:
                figures = {**window_figures(window), **memory.figures()}
                options.stats.write_text(json.dumps(figures, indent=1))
            window.close()

        QtCore.QTimer.singleShot(int(options.quit_after_s * 1000), finish)
    code = app.exec()
    if window.message.text():
        log.error("%s", window.message.text())
    return code


def save_screenshot(window, path: Path) -> None:
    """What the X server shows (a real display), else what the widgets render."""
    from PySide6 import QtGui

    if QtGui.QGuiApplication.platformName() == "xcb":
        pixmap = window.screen().grabWindow(window.winId())
    else:
        pixmap = window.grab()
    pixmap.save(str(path))


class MemoryLog:
    """The app's resident memory every ``every_s`` seconds once the views are drawn, so
    a long run (a soak) shows whether memory stays bounded."""

    def __init__(self, window, every_s: float = 10.0):
        self.window = window
        self.samples: list[tuple[float, float]] = []  # (seconds since the first, MB)
        self._t0 = 0.0  # monotonic time of the first sample
        from helo.ui.main_window import timer

        self._timer = timer(window, int(every_s * 1000), self.sample)
        self._timer.start()

    def sample(self) -> None:
        import time

        from helo.streamer.process import rss_mb

        if not self.window._views_ready:
            return
        now = time.monotonic()
        if not self.samples:
            self._t0 = now
        self.samples.append((round(now - self._t0, 1), round(rss_mb(), 1)))

    def figures(self) -> dict:
        if not self.samples:
            return {"rss_mb": []}
        mb = [m for _, m in self.samples]
        return {
            "rss_mb": self.samples,
            "rss_first_mb": mb[0],
            "rss_last_mb": mb[-1],
            "rss_max_mb": max(mb),
        }


def window_figures(window) -> dict:
    import numpy as np

    lat = np.asarray(window.latencies_ms) if window.latencies_ms else None
    return {
        "predictions": window.predictions,
        "redraw_per_s": window.stats.fps(),
        "longest_gui_stall_ms": window.stats.max_gap_ms,
        "stalls_over_50ms": window.stats.stalls,
        "traces": window.traces.n_curves,
        "timeline_s": window.timeline.span_s,
        "latency_p50_ms": None if lat is None else float(np.median(lat)),
        "latency_p99_ms": None if lat is None else float(np.percentile(lat, 99)),
        "error": window.message.text() or None,
    }

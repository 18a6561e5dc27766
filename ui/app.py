"""``streamer gui``: the desktop app, and the switches that let a test or a benchmark
drive it without hands (start at once, screenshot, quit after N seconds)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from helo.ui.qt_env import application
from helo.ui.runner import SOURCES, SourceChoice

log = logging.getLogger("streamer.gui")


def add_gui_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", action="store_true", help="start the session at once")
    p.add_argument("--timeline", type=float, default=60.0, help="seconds of timeline shown")
    p.add_argument("--screenshot", type=Path, help="save a PNG of the window (with --quit-after)")
    p.add_argument(
        "--quit-after", type=float, help="stop and close after these seconds (tests, benchmarks)"
    )
    p.add_argument("--stats", type=Path, help="write redraw rate and longest GUI stall (JSON)")


def choice_from(args: argparse.Namespace) -> SourceChoice:
    return SourceChoice(
        kind=args.source,
        xdf=args.xdf,
        speed=None if args.speed == "max" else float(args.speed),
        camera=args.camera,
        video=args.video,
    )


def run_gui(
    choice: SourceChoice,
    args: argparse.Namespace,
    checkpoint: Path | None = None,
    record_dir: Path | None = None,
    base_config=None,
) -> int:
    app = application()
    from PySide6 import QtCore

    from helo.ui.main_window import MainWindow

    window = MainWindow(
        choice, checkpoint, record_dir, timeline_s=args.timeline, base_config=base_config
    )
    window.show()
    if args.start:
        QtCore.QTimer.singleShot(0, window.start_session)
    memory = MemoryLog(window) if args.stats else None
    if args.quit_after:

        def finish() -> None:
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                save_screenshot(window, args.screenshot)
            if args.stats:
                figures = {**window_figures(window), **memory.figures()}
                args.stats.write_text(json.dumps(figures, indent=1))
            window.close()

        QtCore.QTimer.singleShot(int(args.quit_after * 1000), finish)
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
        from PySide6 import QtCore

        self.window = window
        self.samples: list[tuple[float, float]] = []  # (seconds since the first, MB)
        self._t0 = 0.0  # monotonic time of the first sample
        self._timer = QtCore.QTimer(window, interval=int(every_s * 1000), timeout=self.sample)
        self._timer.start()

    def sample(self) -> None:
        import time

        from helo.streamer.tuning import rss_mb

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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui",
        help="the desktop app: live distribution, timeline, signals, stream health",
        description=__doc__,
    )
    p.add_argument("--source", choices=SOURCES, default="synthetic")
    p.add_argument("--xdf", type=Path, help="recording to replay (--source xdf)")
    p.add_argument("--speed", default="1", help="replay speed: 1, 2, ... or max")
    p.add_argument("--camera", type=int, default=0)
    p.add_argument("--video", help="webcam source: a video file instead of a camera")
    p.add_argument("--checkpoint", type=Path, help="model (default: the demo model)")
    p.add_argument("--record", type=Path, metavar="DIR", help="record the session to XDF here")
    add_gui_arguments(p)
    p.set_defaults(run=lambda args: run_gui(choice_from(args), args, args.checkpoint, args.record))

"""``streamer gui``: the desktop app, and the switches that let a test or a benchmark
drive it without hands (start at once, screenshot, quit after N seconds)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ui.qt_env import application
from ui.runner import SOURCES, SourceChoice

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

    from ui.main_window import MainWindow

    window = MainWindow(
        choice, checkpoint, record_dir, timeline_s=args.timeline, base_config=base_config
    )
    window.show()
    if args.start:
        QtCore.QTimer.singleShot(0, window.start_session)
    if args.quit_after:

        def finish() -> None:
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                save_screenshot(window, args.screenshot)
            if args.stats:
                args.stats.write_text(json.dumps(window_figures(window), indent=1))
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


def window_figures(window) -> dict:
    import numpy as np

    lat = np.asarray(window.latencies_ms) if window.latencies_ms else None
    return {
        "predictions": window.predictions,
        "redraw_per_s": window.stats.fps(),
        "longest_gui_stall_ms": window.stats.max_gap_ms,
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

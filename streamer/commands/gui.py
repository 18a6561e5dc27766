"""``streamer gui``: the desktop app; ``streamer run ... --gui`` and ``streamer replay ...
--gui`` open the same app on the session those flags describe.

The app (``helo.ui``) sits above the runtime: it is imported only here, when it is
started, so the runtime never depends on Qt. The switches ``--start``,
``--screenshot``, ``--quit-after`` and ``--stats`` let a test or a benchmark drive it
without hands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helo.devices.start import DeviceOptions
from helo.streamer.commands.session_args import add_common_arguments, session_config_from
from helo.streamer.config import ReplayOptions, SessionConfig, parse_speed

SOURCES = ("synthetic", "lsl", "webcam", "xdf")


def add_app_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", action="store_true", help="app: start the session at once")
    p.add_argument("--timeline", type=float, default=60.0, help="app: seconds of timeline shown")
    p.add_argument("--screenshot", type=Path, help="app: save a PNG of the window (--quit-after)")
    p.add_argument(
        "--quit-after",
        type=float,
        help="app: stop and close after these seconds (tests, benchmarks)",
    )
    p.add_argument("--stats", type=Path, help="app: write redraw rate and longest stall (JSON)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui",
        help="the desktop app: live distribution, timeline, signals, stream health",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", choices=SOURCES, default="synthetic")
    p.add_argument("--xdf", type=Path, help="recording to replay (--source xdf)")
    p.add_argument("--speed", default="1", help="replay speed: 1, 2, ... or max")
    p.add_argument("--camera", type=int, default=0)
    p.add_argument("--video", help="webcam source: a video file instead of a camera")
    p.add_argument("--record", type=Path, metavar="DIR", help="record the session to XDF here")
    add_common_arguments(p)
    add_app_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = session_config_from(args, stdout=False)
    devices = DeviceOptions(
        devices=("lsl",) if args.source == "lsl" else ("synthetic",),
        camera=args.camera,
        video=args.video,
        loop_video=True,
        rest_s=config.baseline_s,  # the synthetic participant rests through the baseline
    )
    replay = ReplayOptions(args.xdf or Path(), speed=parse_speed(args.speed))  # Path(): none yet
    return launch_app(
        args, kind=args.source, config=config, devices=devices, replay=replay, start=args.start
    )


def launch_app(
    args: argparse.Namespace,
    *,
    kind: str,
    config: SessionConfig,
    devices: DeviceOptions | None = None,
    replay: ReplayOptions | None = None,
    start: bool,
) -> int:
    """Open the app on a source of ``kind`` with these settings (the window's own
    model and recording choices start from them); ``start``: at once."""
    from helo.ui.app import AppOptions, run_gui
    from helo.ui.runner import SourceChoice

    choice = SourceChoice(kind=kind, devices=devices or DeviceOptions(), replay=replay)
    options = AppOptions(
        start=start,
        timeline_s=args.timeline,
        screenshot=args.screenshot,
        quit_after_s=args.quit_after,
        stats=args.stats,
    )
    return run_gui(choice, options, base_config=config)

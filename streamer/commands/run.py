"""``streamer run``: monitor a live session and predict every hop.

``--device synthetic`` (the default) starts the simulated EEG/GSR/PPG/face device
and monitors it with the demo model; ``--device lsl`` attaches to streams already
on the network; ``--device webcam`` adds face features from a camera or a video.
Predictions go to the terminal, an LSL outlet of type EmotionDistribution, and
optionally JSONL/CSV files; ``--record DIR`` records the session's streams and the
predictions to XDF. Ctrl-C or SIGTERM stop cleanly: sinks flushed, recording
completed. ``--gui`` shows the same session in the desktop app.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from helo.devices.start import DEVICES, DeviceOptions, parse_devices, start_devices
from helo.streamer.commands.gui import add_app_arguments, launch_app
from helo.streamer.commands.session_args import (
    add_common_arguments,
    add_live_arguments,
    session_config_from,
)
from helo.streamer.lsl_reader import StreamHealth
from helo.streamer.process import settled_heap
from helo.streamer.session import LiveSession, run_until_signal

log = logging.getLogger("helo.streamer.run")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="live monitoring of LSL streams (or the synthetic device)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--device",
        default="synthetic",
        help=f"comma-separated producers: {', '.join(DEVICES)} (default synthetic)",
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="record streams and predictions to a new XDF file in DIR",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="MODALITY:KIND:START-END",
        help="synthetic device: a sensor problem at these session seconds: eeg:nan:20-22, "
        "ppg:glitch:30-30.1, gsr:drop:40-45, eeg:jump+3600:50 (repeatable)",
    )
    p.add_argument(
        "--style",
        default="",
        metavar="KEY=VALUE,...",
        help="synthetic device: send like a lab's devices, e.g. eeg_rate=500,"
        "eeg_labels=prefixed|old|biosemi|none,eeg_missing=O1+Fz,eeg_extra=32,eeg_unit=V,"
        "gsr_unit=kOhm,face_rate=24",
    )
    add_webcam_arguments(p)
    add_common_arguments(p)
    add_live_arguments(p)
    p.add_argument("--gui", action="store_true", help="show the session in the desktop app")
    add_app_arguments(p)
    p.set_defaults(run=run)


def add_webcam_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--camera", type=int, default=0, help="webcam: camera index (default 0)")
    p.add_argument("--video", help="webcam: read this video file instead of a camera")
    p.add_argument("--loop-video", action="store_true", help="webcam: play the video in a loop")
    p.add_argument("--fps-cap", type=float, help="webcam: at most this many frames per second")
    p.add_argument("--face-model", help="webcam: Face Landmarker .task file (default: shipped)")


def device_options_from(
    args: argparse.Namespace, allow_missing: bool, rest_s: float = 0.0, participants: int = 0
) -> DeviceOptions:
    """``rest_s``: the session's baseline, which the synthetic device spends at rest;
    ``participants``: how many people it simulates (a group from 2)."""
    return DeviceOptions(
        participants=participants,
        devices=parse_devices(args.device),
        camera=args.camera,
        video=args.video,
        loop_video=args.loop_video,
        fps_cap=args.fps_cap,
        face_model=args.face_model,
        faults=tuple(args.fault),
        style=getattr(args, "style", "") or "",
        allow_missing=allow_missing,
        rest_s=rest_s,
    )


def run(args: argparse.Namespace) -> int:
    config = session_config_from(args)
    simulated = "synthetic" in parse_devices(args.device)
    count = config.selection.count if simulated and config.selection.count else 0
    options = device_options_from(args, config.allow_missing, config.baseline_s, count)
    if args.gui:
        kind = "webcam" if "webcam" in options.devices else options.devices[0]
        return launch_app(args, kind=kind, config=config, devices=options, start=True)
    with start_devices(options) as devices:
        config = config.with_devices(devices)
        session = LiveSession(config)
        with session, settled_heap():
            run_until_signal(session.run, session.stop)
            summary = session.latency.summary()
            health = session.health()
        _print_summary(summary, health, session)
        if devices.webcam is not None:
            log.info("webcam: %s", devices.webcam.stats().describe())
    return 0


def _per_participant(session: LiveSession) -> dict[str, tuple[int, int]]:
    """A group's (predictions, windows) per participant, from its latency sink."""
    stats = session.latency
    return {p: stats.by_participant.get(p, (0, 0)) for p in session.participants}


def _print_summary(
    summary: dict[str, float], health: list[StreamHealth], session: LiveSession
) -> None:
    lat = ""
    if "latency_p50_ms" in summary:
        lat = (
            f", latency p50 {summary['latency_p50_ms']:.1f} ms, "
            f"p99 {summary['latency_p99_ms']:.1f} ms"
        )
    log.info(
        "%d predictions (%d windows without any modality)%s",
        summary["predictions"],
        summary["without_prediction"],
        lat,
    )
    for h in health:
        problems = "; ".join(h.problems()) or "ok"
        log.info(
            "stream %s: %d samples, %.1f Hz effective: %s",
            h.name,
            h.received,
            h.effective_srate_hz,
            problems,
        )
    for participant, (predicted, windows) in _per_participant(session).items():
        log.info("%s: %d predictions of %d windows", participant, predicted, windows)
    invalid = session.pipeline.worker.invalid_outputs if session.pipeline else 0
    if invalid:
        log.warning("%d window(s) whose model output was no distribution: not published", invalid)
    if session.recorder is not None:
        log.info("recorded to %s", session.recorder.path)

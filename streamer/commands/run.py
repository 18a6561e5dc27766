"""``streamer run``: monitor a live session and predict every hop.

``--device synthetic`` (the default) starts the simulated EEG/GSR/PPG/face device
and monitors it with the demo model; ``--device lsl`` attaches to streams already
on the network. Predictions go to the terminal, an LSL outlet of type
EmotionDistribution, and optionally JSONL/CSV files; ``--record DIR`` records the
session's streams and the predictions to XDF. Ctrl-C or SIGTERM stop cleanly:
sinks flushed, recording completed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path

from helo.models.errors import HeloError
from helo.streamer.config import load_session_config, parse_stream_overrides
from helo.streamer.recorder import native_stdout_to_stderr
from helo.streamer.session import LiveSession, run_until_signal

log = logging.getLogger("streamer.run")

DEVICES = ("synthetic", "lsl", "webcam")


def add_session_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="session TOML ([session], [streams], [outputs])")
    p.add_argument("--checkpoint", type=Path, help="model (default: the demo model)")
    p.add_argument("--hop", type=float, dest="hop_s", help="seconds between predictions")
    p.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="MODALITY=STREAM",
        help="which stream feeds a modality (name, source_id or type)",
    )
    p.add_argument(
        "--resolve-timeout",
        type=float,
        dest="resolve_timeout_s",
        help="seconds to wait for the streams the model needs",
    )
    p.add_argument("--jsonl", type=Path, help="also write predictions as JSON lines here")
    p.add_argument("--csv", type=Path, help="also write predictions as CSV here")
    p.add_argument("--no-lsl", action="store_true", help="no EmotionDistribution outlet")
    p.add_argument("--quiet", action="store_true", help="no line per prediction on stdout")
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"])
    p.add_argument("--duration", type=float, dest="duration_s", help="stop after these seconds")


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
        metavar="MODALITY:nan|drop:START-END",
        help="synthetic device: a sensor problem at these session seconds, "
        "e.g. eeg:nan:20-22 (repeatable)",
    )
    add_webcam_arguments(p)
    add_session_arguments(p)
    p.add_argument("--gui", action="store_true", help="show the session in the desktop app")
    from helo.ui.app import add_gui_arguments

    add_gui_arguments(p)
    p.set_defaults(run=run)


def add_webcam_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--camera", type=int, default=0, help="webcam: camera index (default 0)")
    p.add_argument("--video", help="webcam: read this video file instead of a camera")
    p.add_argument("--loop-video", action="store_true", help="webcam: play the video in a loop")
    p.add_argument("--fps-cap", type=float, help="webcam: at most this many frames per second")
    p.add_argument("--face-model", help="webcam: Face Landmarker .task file (default: shipped)")


def session_config_from(args: argparse.Namespace):
    overrides = {
        "checkpoint": args.checkpoint,
        "hop_s": args.hop_s,
        "resolve_timeout_s": args.resolve_timeout_s,
        "jsonl": args.jsonl,
        "csv": args.csv,
        "accelerator": args.accelerator,
        "duration_s": args.duration_s,
        "streams": parse_stream_overrides(args.stream) or None,
        "lsl": False if args.no_lsl else None,
        "stdout": False if args.quiet else None,
        "record": getattr(args, "record", None),
    }
    return load_session_config(args.config, overrides)


def start_devices(args: argparse.Namespace, devices: list[str], config, started: list) -> list[str]:
    """Start the requested producers into ``started`` (so that the caller can stop them
    whatever fails later); returns the extra source_ids to record (the truth).

    With the webcam, the face comes from the camera (or video) and the synthetic
    device only simulates the physiology. A webcam that cannot be opened is an
    error, unless the model can go on without the face (``allow_missing``) and
    other streams exist, in which case it is a warning.
    """
    extra_record: list[str] = []
    if "webcam" in devices:
        from helo.devices.webcam import WebcamDevice

        source = args.video if args.video is not None else args.camera
        webcam = WebcamDevice(
            source,
            fps_cap=args.fps_cap,
            face_model=args.face_model,
            loop=args.loop_video,
            source_id=f"helo-webcam-{os.getpid()}",
        )
        try:
            started.append(webcam.start())
            config.streams.setdefault("face", webcam.source_id)
        except HeloError as exc:
            if not config.allow_missing or devices == ["webcam"]:
                raise
            log.warning("%s; going on without the face", exc)
    if "synthetic" in devices:
        from helo.devices.synthetic import Fault, SyntheticDevice

        try:
            faults = tuple(Fault.parse(text) for text in args.fault)
        except ValueError as exc:
            raise HeloError(f"--fault: {exc}") from None
        modalities = ("eeg", "gsr", "ppg") if "webcam" in devices else ("eeg", "gsr", "ppg", "face")
        device = SyntheticDevice(faults=faults, modalities=modalities).start()
        started.append(device)
        for modality in device.modalities:
            config.streams.setdefault(modality, f"{device.source_prefix}-{modality}")
        extra_record.append(f"{device.source_prefix}-truth")
    return extra_record


def run(args: argparse.Namespace) -> int:
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    unknown = sorted(set(devices) - set(DEVICES))
    if unknown:
        raise HeloError(f"--device: unknown device(s) {unknown}; choose from {list(DEVICES)}")
    if args.gui:
        return _run_in_gui(args, devices)
    config = session_config_from(args)
    started: list = []
    try:
        extra_record = start_devices(args, devices, config, started)
        session = LiveSession(config, extra_record=extra_record)
        chatter = native_stdout_to_stderr() if config.record else contextlib.nullcontext()
        with chatter, session:
            run_until_signal(session.run, session.stop)
            summary = session.latency.summary()
            health = session.health()
        _print_summary(summary, health, session)
        for device in started:
            if hasattr(device, "stats"):  # the webcam
                log.info("webcam: %s", device.stats().summary())
    finally:
        for device in started:
            device.stop()
    return 0


def _run_in_gui(args: argparse.Namespace, devices: list[str]) -> int:
    """The same session in the desktop app, started at once."""
    from helo.ui.app import run_gui
    from helo.ui.runner import SourceChoice

    if "webcam" in devices:
        kind = "webcam"
    elif devices == ["lsl"]:
        kind = "lsl"
    else:
        kind = "synthetic"
    choice = SourceChoice(
        kind=kind,
        camera=args.camera,
        video=args.video,
        loop_video=args.loop_video,
        with_synthetic_physiology="synthetic" in devices,
        faults=list(args.fault),
    )
    args.start = True
    # The same settings as a headless run (config file, outputs, hop, overrides, ...).
    return run_gui(choice, args, args.checkpoint, args.record, session_config_from(args))


def _print_summary(summary, health, session: LiveSession) -> None:
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
    if session.recorder is not None:
        log.info("recorded to %s", session.recorder.path)

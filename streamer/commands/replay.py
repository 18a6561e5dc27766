"""``streamer replay FILE.xdf``: predictions for a recording, through the live pipeline.

``--speed max`` (default) as fast as the machine goes, ``--speed 1`` as recorded,
``--speed 10`` ten times faster (``--republish`` then re-publishes the streams on
LSL at that pace). ``--output`` writes the predictions (``.jsonl`` or ``.csv``).
``--times recorded`` puts the window ends at the predictions recorded in the file
(a live session recorded with ``streamer run --record``), to compare live and
replayed predictions window by window. Replaying a file twice gives identical
predictions.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from helo.models.checkpoint import load_checkpoint
from helo.models.errors import HeloError
from helo.streamer.clocks import ReplayClock
from helo.streamer.config import parse_stream_overrides
from helo.streamer.demo import DEMO_CHECKPOINT
from helo.streamer.replay import ReplaySource
from helo.streamer.session import LatencyStats, Pipeline, close_quietly, run_until_signal
from helo.streamer.sinks import CsvSink, JsonlSink, LslSink, StdoutSink

log = logging.getLogger("streamer.replay")

REPLAY_BATCH = 64  # windows per batch at --speed max: fixed, so every replay is identical


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="predictions for an XDF recording (same code as live)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="XDF recording")
    p.add_argument("--checkpoint", type=Path, help="model (default: the demo model)")
    p.add_argument("--speed", default="max", help="max, or a factor of real time (1 = as recorded)")
    p.add_argument("--output", type=Path, help="write predictions here (.jsonl or .csv)")
    p.add_argument(
        "--times",
        choices=["hop", "recorded"],
        default="hop",
        help="window ends every hop, or at the predictions recorded in the file",
    )
    p.add_argument("--hop", type=float, dest="hop_s", help="seconds between predictions")
    p.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="MODALITY=STREAM",
        help="which recorded stream feeds a modality (name, source_id or type)",
    )
    p.add_argument("--republish", action="store_true", help="re-publish the streams on LSL")
    p.add_argument("--lsl", action="store_true", help="publish predictions on LSL")
    p.add_argument("--quiet", action="store_true", help="no line per prediction on stdout")
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"], default="auto")
    p.set_defaults(run=run)


def parse_speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise HeloError(f"--speed {text!r}: use max or a number > 0 (1 = real time)") from None
    if not speed > 0:
        raise HeloError(f"--speed {text!r}: must be > 0")
    return speed


def run(args: argparse.Namespace) -> int:
    speed = parse_speed(args.speed)
    ckpt = load_checkpoint(args.checkpoint or DEMO_CHECKPOINT)
    spec = ckpt.spec
    hop_s = args.hop_s or spec.hop_s
    source = ReplaySource(args.file, spec, parse_stream_overrides(args.stream))
    if args.times == "recorded":
        ends = source.recorded_prediction_times()
        if ends is None:
            raise HeloError(
                f"{args.file}: --times recorded, but the file holds no "
                "EmotionDistribution predictions"
            )
        ends = ends[ends >= source.start_s + spec.max_window_s]
    else:
        ends = source.grid_ends(hop_s)
    sinks = []
    try:
        if not args.quiet:
            sinks.append(StdoutSink())
        if args.output is not None:
            suffix = args.output.suffix.lower()
            if suffix not in (".jsonl", ".csv"):
                raise HeloError(f"--output {args.output}: use a .jsonl or .csv file name")
            if args.output.exists():
                raise HeloError(f"--output {args.output}: exists; choose a new file")
            sinks.append(
                JsonlSink(args.output) if suffix == ".jsonl" else CsvSink(args.output, spec.labels)
            )
        if args.lsl:
            sinks.append(LslSink(spec.labels, hop_s, "HeLo (replay)", "helo-replay-predictions"))
    except OSError as exc:
        close_quietly(sinks)
        raise HeloError(f"{exc.filename}: cannot write ({exc.strerror})") from None
    if args.republish:
        source.republish(speed)
    stats = LatencyStats()
    clock = ReplayClock(float(ends[0]) - hop_s, float(ends[-1]), source.push_until, speed)
    pipeline = Pipeline(
        ckpt,
        source.feeds,
        clock,
        [*sinks, stats],
        hop_s,
        accelerator=args.accelerator,
        ends=ends,
        batch=REPLAY_BATCH if speed is None else 1,
    )
    stop = threading.Event()
    started = time.perf_counter()
    try:
        count = run_until_signal(lambda: pipeline.run(stop), lambda: (stop.set(), pipeline.stop()))
    finally:
        close_quietly(sinks)
    seconds = time.perf_counter() - started
    span = float(ends[min(count, len(ends)) - 1] - ends[0]) + hop_s if count else 0.0
    log.info(
        "%d windows over %.1f s of recording in %.2f s (%.0fx real time); %d predictions, "
        "%d windows without any modality",
        count,
        span,
        seconds,
        span / seconds if seconds > 0 else float("inf"),
        stats.predictions,
        stats.without_prediction,
    )
    if args.output is not None:
        log.info("predictions written to %s", args.output)
    return 0

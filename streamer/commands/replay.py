"""``streamer replay FILE.xdf``: predictions for a recording, through the live pipeline.

``--speed max`` (default) as fast as the machine goes, ``--speed 1`` as recorded,
``--speed 10`` ten times faster (``--republish`` then re-publishes the streams on
LSL at that pace). ``--from 120 --to 300`` replays a span (seconds into the
recording, or LSL times as ``lsl:4512.5``) and gives the predictions a full replay
gives for it. ``--output`` writes the predictions (``.jsonl`` or ``.csv``).
``--times recorded`` puts the window ends at the predictions recorded in the file
(a live session recorded with ``streamer run --record``), to compare live and
replayed predictions window by window. ``--gui`` shows the replay in the desktop app.
Replaying a file twice gives identical predictions.

A study: ``streamer replay DIR [MORE ...] --out OUT`` (folders, globs such as
``'data/**/*.xdf'``, ``@list.txt``) replays every recording as a Ray task (a local
instance, or ``--ray-address`` / RAY_ADDRESS for a cluster; ``--sequential`` without
Ray) into OUT: per recording its predictions (JSONL) and table part, then
``study.parquet`` and ``summary.csv``. Finished recordings are skipped unless
``--force``; one that fails is reported with its reason and the others go on.
"""

from __future__ import annotations

import argparse
import glob
import logging
import time
from pathlib import Path

from helo.models.errors import HeloError
from helo.streamer.commands.gui import add_app_arguments, launch_app
from helo.streamer.commands.session_args import add_common_arguments, session_config_from
from helo.streamer.config import ReplayOptions, SessionConfig, TimePoint, parse_speed
from helo.streamer.replay_session import ReplaySession
from helo.streamer.session import run_until_signal

log = logging.getLogger("helo.streamer.replay")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="predictions for an XDF recording (same code as live)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="XDF recording; or, for a study, folders, globs, @list.txt files",
    )
    p.add_argument("--speed", default="max", help="max, or a factor of real time (1 = as recorded)")
    p.add_argument(
        "--from", dest="from_time", metavar="TIME", help="first window end: seconds or lsl:T"
    )
    p.add_argument("--to", dest="to_time", metavar="TIME", help="last window end: seconds or lsl:T")
    p.add_argument("--output", type=Path, help="write predictions here (.jsonl or .csv)")
    p.add_argument(
        "--times",
        choices=["hop", "recorded"],
        default="hop",
        help="window ends every hop, or at the predictions recorded in the file",
    )
    p.add_argument("--republish", action="store_true", help="re-publish the streams on LSL")
    p.add_argument("--lsl", action="store_true", help="publish predictions on LSL")
    add_common_arguments(p)
    add_study_arguments(p)
    p.add_argument("--gui", action="store_true", help="show the replay in the desktop app")
    add_app_arguments(p)
    p.set_defaults(run=run)


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, metavar="DIR", help="a study's outputs (folder)")
    p.add_argument(
        "--ray-address",
        help="a study on this Ray cluster (default: RAY_ADDRESS, else a local instance)",
    )
    p.add_argument("--workers", type=int, help="a study: CPUs of the local Ray instance")
    p.add_argument("--sequential", action="store_true", help="a study without Ray, in turn")
    p.add_argument("--force", action="store_true", help="a study: redo finished recordings")


def is_study(args: argparse.Namespace) -> bool:
    """More than one recording, a folder, a pattern or a list, or an output folder."""
    items = [str(f) for f in args.files]
    single = items[0]
    return (
        len(items) > 1
        or args.out is not None
        or single.startswith("@")
        or glob.has_magic(single)
        or Path(single).is_dir()
    )


def replay_options_from(args: argparse.Namespace) -> ReplayOptions:
    return ReplayOptions(
        file=Path(args.files[0]),
        speed=parse_speed(args.speed),
        times=args.times,
        start=TimePoint.parse(args.from_time, "--from") if args.from_time else None,
        end=TimePoint.parse(args.to_time, "--to") if args.to_time else None,
        republish=args.republish,
    )


def replay_config_from(args: argparse.Namespace) -> SessionConfig:
    """The session settings of a replay: as ``streamer run``'s, with the replay's own
    defaults (no LSL outlet unless ``--lsl``) and ``--output`` as JSONL or CSV."""
    output: dict[str, Path] = {}
    if args.output is not None:
        suffix = args.output.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise HeloError(f"--output {args.output}: use a .jsonl or .csv file name")
        if args.output.exists():
            raise HeloError(f"--output {args.output}: exists; choose a new file")
        output[suffix[1:]] = args.output
    return session_config_from(args, lsl=bool(args.lsl), lsl_name="HeLo (replay)", **output)


PREDICTION_SUFFIXES = (".jsonl", ".csv")


def file_named_as_folder(args: argparse.Namespace) -> None:
    """``--out preds.jsonl`` for one recording means its predictions file (``--output``):
    taken as that, and said, rather than making a folder named like a file. A study's
    ``--out`` is a folder, so there the same name is a one-line error."""
    out = args.out
    if out is None or out.suffix.lower() not in PREDICTION_SUFFIXES:
        return
    args.out = None
    if args.output is not None:
        raise HeloError(f"--out {out} and --output {args.output}: give the file once, as --output")
    if is_study(args):
        raise HeloError(
            f"--out {out}: a study writes a folder (a JSONL per recording, study.parquet, "
            "summary.csv); name a folder, or give one recording and --output FILE"
        )
    args.output = out
    log.info("--out %s names a file: the predictions go there, as with --output", out)


def run(args: argparse.Namespace) -> int:
    file_named_as_folder(args)
    if is_study(args):
        return run_study(args)
    options = replay_options_from(args)
    config = replay_config_from(args)
    if args.gui:
        return launch_app(args, kind="xdf", config=config, replay=options, start=True)
    session = ReplaySession(config, options)
    started = time.perf_counter()
    with session:
        count = run_until_signal(session.run, session.stop)
        stats = session.latency
    seconds = time.perf_counter() - started
    span = session.played_s(count)
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


def run_study(args: argparse.Namespace) -> int:
    """Many recordings into one study folder (see the module docstring)."""
    from tqdm import tqdm

    from helo.streamer.study import Study, find_recordings

    if args.out is None:
        raise HeloError("a study (several recordings, a folder or a pattern) needs --out DIR")
    for flag, given in (
        ("--gui", args.gui),
        ("--output", args.output),
        ("--republish", args.republish),
        ("--lsl", args.lsl),
        ("--from", args.from_time),
        ("--to", args.to_time),
        ("--speed", parse_speed(args.speed) is not None),
    ):
        if given:
            raise HeloError(f"{flag} replays one recording; a study writes to --out")
    if args.workers is not None and args.workers < 1:
        raise HeloError(f"--workers {args.workers}: give 1 or more")
    study = Study(
        find_recordings(args.files),
        args.out,
        session_config_from(args, lsl=False, stdout=False),
        use_ray=not args.sequential,
        ray_address=args.ray_address,
        workers=args.workers,
        force=args.force,
    )
    started = time.perf_counter()
    with tqdm(total=len(study.recordings), desc="study", unit="rec") as bar:

        def report(result) -> None:
            if result.status == "failed":
                log.warning("%s: failed: %s", result.recording, result.reason)
            else:
                log.info(
                    "%s: %d windows, %d predicted (%.1f s in %.1f s)",
                    result.recording,
                    result.windows,
                    result.predicted,
                    result.recording_s,
                    result.wall_s,
                )
            bar.update()

        skipped = sum(study.done(p) is not None for p in study.recordings)
        bar.update(skipped)
        results = study.run(on_result=report)
    failed = [r for r in results if r.status == "failed"]
    log.info(
        "study of %d recording(s) in %.1f s: %d replayed, %d skipped (done before), %d failed; "
        "%s and %s in %s",
        len(results),
        time.perf_counter() - started,
        sum(r.status == "done" for r in results),
        sum(r.status == "skipped" for r in results),
        len(failed),
        "study.parquet",
        "summary.csv",
        args.out,
    )
    return 1 if failed else 0

"""``streamer record``: record LSL streams to XDF with LabRecorder, no model needed.

Records every stream on the network (or those named with ``--stream``, by name,
type or source_id) into a new file in ``--out`` (default ``recordings/``); never
overwrites. ``--device synthetic`` starts the simulated device first (its data
streams and its true-distribution stream). Stop with Ctrl-C, SIGTERM or
``--duration``. To record predictions too, use ``streamer run --record DIR``.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

import pylsl

from helo.models.errors import HeloError
from helo.streamer.recorder import (
    DEFAULT_FOLDER,
    Recorder,
    new_recording_path,
)
from helo.streamer.session import run_until_signal

log = logging.getLogger("streamer.record")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record LSL streams to XDF (LabRecorder)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="NAME|TYPE|SOURCE_ID",
        help="record only these streams (repeatable; default: all)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_FOLDER,
        help="folder for a new file, or a new .xdf file name",
    )
    p.add_argument("--device", choices=["synthetic"], help="start the synthetic device too")
    p.add_argument("--duration", type=float, dest="duration_s", help="stop after these seconds")
    p.add_argument("--resolve-timeout", type=float, default=5.0, dest="resolve_timeout_s")
    p.set_defaults(run=run)


def find_streams(wanted: list[str], timeout_s: float) -> list[pylsl.StreamInfo]:
    """All streams, or those matching ``wanted``; waits up to ``timeout_s`` for each."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = pylsl.resolve_streams(wait_time=1.0)
        if wanted:
            chosen = [i for i in infos if {i.name(), i.type(), i.source_id()} & set(wanted)]
            found = {w for w in wanted for i in chosen if w in (i.name(), i.type(), i.source_id())}
            missing = [w for w in wanted if w not in found]
        else:
            chosen, missing = infos, ([] if infos else ["any stream"])
        if not missing or time.monotonic() > deadline:
            break
    if missing:
        names = ", ".join(f"{i.name()} ({i.type()})" for i in infos) or "none"
        raise HeloError(f"no stream matches {missing} after {timeout_s:g} s; found: {names}")
    return chosen


def run(args: argparse.Namespace) -> int:
    device = None
    if args.device == "synthetic":
        from helo.devices.synthetic import SyntheticDevice

        device = SyntheticDevice().start()
        args.stream = args.stream or [
            device.source_prefix + f"-{m}" for m in (*device.modalities, "truth")
        ]
    stop = threading.Event()

    def wait() -> int:
        stop.wait(args.duration_s)
        return 0

    try:
        infos = find_streams(args.stream, args.resolve_timeout_s)
        path = args.out if args.out.suffix == ".xdf" else new_recording_path(args.out)
        with Recorder(path, infos):
            run_until_signal(wait, stop.set)
        print(f"recorded {len(infos)} stream(s) to {path}")
    finally:
        if device is not None:
            device.stop()
    return 0

"""The ``streamer`` command line: one entry point, one module per command.

User mistakes (bad files, streams, flags) end in one line on stderr and exit
status 2, never a traceback; Ctrl-C ends with status 130.
"""

from __future__ import annotations

import argparse
import logging
import sys

from helo.devices.native_output import quiet_liblsl, terminal_stream
from helo.models.errors import HeloError
from helo.streamer import __version__
from helo.streamer.commands import (
    adapt,
    bench,
    evaluate,
    gui,
    record,
    replay,
    report,
    run,
    train,
    tune,
)
from helo.streamer.process import INFERENCE_COMMANDS, configure_for_inference

COMMANDS = {
    "run": run,
    "gui": gui,
    "replay": replay,
    "record": record,
    "train": train,
    "adapt": adapt,
    "evaluate": evaluate,
    "report": report,
    "tune": tune,
    "bench": bench,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer",
        description="Real-time multimodal emotion-distribution monitor (HeLo) over LSL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def _configure_logging(verbose: bool) -> None:
    """Our lines on the terminal; native libraries' lines in the log (``-v`` shows them):
    liblsl is told to log errors only, and Python's log goes to a duplicate of stderr
    so that native output captured from descriptor 2 never swallows it."""
    if not verbose:
        quiet_liblsl()
    if logging.getLogger().handlers:  # embedded (tests, a notebook): keep theirs
        return
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=terminal_stream()
    )
    if verbose:  # our debug lines and the native ones, not every library's
        logging.getLogger("helo").setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command in INFERENCE_COMMANDS:
        configure_for_inference()
    try:
        return int(args.run(args) or 0)
    except HeloError as exc:
        print(f"streamer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"streamer {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

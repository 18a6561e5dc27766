"""The flags ``streamer run``, ``streamer replay`` and ``streamer gui`` share, and the
session settings they make (a TOML file, then the flags; flags win)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from helo.models.features.adapt import AdaptOptions
from helo.streamer.config import (
    SessionConfig,
    load_session_config,
    parse_channel_flags,
    parse_pairs,
    parse_stream_overrides,
)


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Model, hop, stream choice and terminal output: the same for live and replay."""
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
    add_input_arguments(p)
    p.add_argument(
        "--participants",
        dest="participants_select",
        metavar="auto|N|P01,P02",
        help="a group session: follow every participant found (auto), exactly N, or these; "
        "one prediction stream per participant and a group summary (docs/groups.md)",
    )
    p.add_argument(
        "--participants-by",
        dest="participants_by",
        metavar="RULE",
        help="how streams are grouped into participants: auto (default), config, desc, "
        r'hostname or name:REGEX (e.g. name:"(P\d+)")',
    )
    p.add_argument(
        "--personal",
        action="append",
        default=[],
        metavar="PARTICIPANT=MODEL",
        help="a group member's personal model (from streamer adapt), applied to their "
        "windows beside the others' in one batch; repeat for each",
    )
    p.add_argument("--quiet", action="store_true", help="no line per prediction on stdout")
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--baseline",
        type=float,
        dest="baseline_s",
        metavar="SECONDS",
        help="the first SECONDS are the participant at rest: they seed the participant's "
        "statistics and predictions are flagged calibrating until they are over",
    )


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """What a lab can say about its streams: labels, montage, units, interpolation
    (live, replay and training from recordings alike; docs/inputs.md)."""
    p.add_argument(
        "--channels",
        action="append",
        default=[],
        metavar="MODALITY=L1,L2,...",
        help="labels for a stream's channels, in order (for streams without labels)",
    )
    p.add_argument(
        "--montage",
        help="MNE standard montage of the cap: BioSemi ABC labels become 10-20 names "
        "(biosemi32, biosemi64, ...)",
    )
    p.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="MODALITY=UNIT",
        help="a stream's unit when its description gives none or a wrong one (eeg=V, gsr=kOhm)",
    )
    p.add_argument(
        "--max-interpolated",
        type=float,
        dest="max_interpolated",
        metavar="SHARE",
        help="share of the model's EEG channels that may be interpolated (default 0.25)",
    )


def input_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The input flags present on ``args`` (None: not given)."""
    return {
        "channels": parse_channel_flags(getattr(args, "channels", [])) or None,
        "units": parse_pairs(getattr(args, "units", []), "--units", "UNIT") or None,
        "montage": getattr(args, "montage", None),
        "max_interpolated": getattr(args, "max_interpolated", None),
    }


def inputs_from(args: argparse.Namespace) -> AdaptOptions:
    """The input flags as options, for commands without a session config (training)."""
    given = {k: v for k, v in input_overrides(args).items() if v is not None}
    return AdaptOptions(**given)


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """What only a live session has: waiting for streams, its files, outlet and duration."""
    p.add_argument(
        "--resolve-timeout",
        type=float,
        dest="resolve_timeout_s",
        help="seconds to wait for the streams the model needs",
    )
    p.add_argument("--jsonl", type=Path, help="also write predictions as JSON lines here")
    p.add_argument("--csv", type=Path, help="also write predictions as CSV here")
    p.add_argument("--no-lsl", action="store_true", help="no EmotionDistribution outlet")
    p.add_argument("--duration", type=float, dest="duration_s", help="stop after these seconds")


def session_config_from(args: argparse.Namespace, **fixed: Any) -> SessionConfig:
    """Settings from ``--config`` and the flags present on ``args``; ``fixed`` values are
    the command's own (None: not set)."""
    overrides: dict[str, Any] = {
        "checkpoint": getattr(args, "checkpoint", None),
        "hop_s": getattr(args, "hop_s", None),
        "resolve_timeout_s": getattr(args, "resolve_timeout_s", None),
        "jsonl": getattr(args, "jsonl", None),
        "csv": getattr(args, "csv", None),
        "accelerator": getattr(args, "accelerator", None),
        "duration_s": getattr(args, "duration_s", None),
        "baseline_s": getattr(args, "baseline_s", None),
        "participants_select": getattr(args, "participants_select", None),
        "participants_by": getattr(args, "participants_by", None),
        "personal": parse_pairs(getattr(args, "personal", []), "--personal", "MODEL", "PARTICIPANT")
        or None,
        "streams": parse_stream_overrides(getattr(args, "stream", [])) or None,
        "lsl": False if getattr(args, "no_lsl", False) else None,
        "stdout": False if getattr(args, "quiet", False) else None,
        "record": getattr(args, "record", None),
        **input_overrides(args),
    }
    overrides.update(fixed)
    return load_session_config(getattr(args, "config", None), overrides)

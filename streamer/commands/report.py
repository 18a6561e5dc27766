"""``streamer report``: HeLo against baselines and ablations, as a markdown table.

Trains every row (training-mean distribution, concatenation MLP, HeLo, HeLo
without OT, HeLo without label correlation, HeLo on each single modality) with
the same folds and settings, and writes the metrics over all test windows, the
relative improvement of HeLo over each row, HeLo's metrics per modality subset,
and the time taken. Default: the synthetic benchmark, subject-independent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from helo.models.datasets.sources import SOURCE_HELP
from helo.models.errors import HeloError
from helo.models.evaluation import PROTOCOLS
from helo.models.report import (
    ROW_SETS,
    render_markdown,
    run_report,
    variants_of,
)
from helo.streamer.commands import train as train_cmd
from helo.streamer.commands.session_args import add_input_arguments, inputs_from
from helo.streamer.demo import DEMO_TRAIN_CONFIG
from helo.streamer.distributed import add_ray_arguments, fold_map_from
from helo.streamer.process import configure_for_training

log = logging.getLogger("streamer.report")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="compare HeLo with baselines and ablations (markdown)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", help=f"data set: {SOURCE_HELP} (default: synthetic)")
    add_input_arguments(p)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML training settings (default: {DEMO_TRAIN_CONFIG.name}, the demo's)",
    )
    p.add_argument("--protocol", choices=PROTOCOLS, default="subject")
    p.add_argument("--folds", type=int, default=4)
    add_ray_arguments(p, "the rows' folds")
    p.add_argument("--out", type=Path, default=Path("docs/report.md"), help="markdown file")
    p.add_argument("--json", type=Path, help="also write the numbers as JSON")
    p.add_argument("--spec", type=Path, help="spec for labelled XDF data (JSON or checkpoint)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--normalisation",
        choices=["global", "participant"],
        help="how the main rows normalise features (the other way is a row of its own)",
    )
    p.add_argument(
        "--rows",
        choices=ROW_SETS,
        default="all",
        help="all rows; only those of the normalisation comparison (HeLo, the MLP, "
        "each both ways, and the personal rows); or only the personal rows",
    )
    p.add_argument(
        "--personal-k",
        default="2,4,8",
        metavar="K,K,...",
        help="personal adaptation rows with K labelled trials per test participant ('' for none)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(
        run=run,
        model=None,
        batch_size=None,
        lr=None,
        patience=None,
        modality_dropout=None,
        accelerator=None,
        threads=None,
        val_by=None,
    )


def run(args: argparse.Namespace) -> int:
    config = train_cmd.read_config(args.config or DEMO_TRAIN_CONFIG)
    source, data_cfg, base = train_cmd.source_and_settings(args, config)
    ks = _ks(args.personal_k)
    if args.rows == "personal" and not ks:
        raise HeloError("--rows personal: --personal-k names no k; nothing to report")
    configure_for_training(base.threads)
    data = train_cmd.load_data(source, data_cfg, train_cmd.load_spec(args.spec), inputs_from(args))
    result = run_report(
        data,
        base,
        args.protocol,
        args.folds,
        progress=not args.no_progress,
        log=log.info,
        personal_ks=ks,
        variants=variants_of(args.rows, data.spec.names, base.normalisation),
        fold_map=fold_map_from(args),
    )
    title = "HeLo on the synthetic benchmark" if source == "synthetic" else f"HeLo on {source}"
    text = render_markdown(result, title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"written to {args.out}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": result.rows,
                    "seconds": result.seconds,
                    "helo_subsets": result.helo_subsets,
                    "protocol": result.protocol,
                    "folds": result.n_folds,
                    "personal": [dataclasses.asdict(row) for row in result.personal],
                },
                indent=1,
            )
        )
    return 0


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise HeloError(f"--personal-k {text!r}: expected numbers like 2,4,8") from None
    if any(k < 1 for k in ks):
        raise HeloError(f"--personal-k {text!r}: every k must be >= 1")
    return ks

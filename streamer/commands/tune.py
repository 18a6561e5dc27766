"""``streamer tune --grid KEY=V1,V2 ...``: a small grid of settings compared by
cross-validation (by participant by default), on Ray Tune.

Every combination of the ``--grid`` values is a trial: the training settings of
``--config`` (default: the demo's) with that point applied (a training setting such
as ``lr`` or ``epochs``, or a model option such as ``d_model``), cross-validated by
the same folds and seeds. A local Ray instance by default, ``--ray-address`` (or
RAY_ADDRESS) for a cluster. Writes ``tune.csv``, ``tune.md`` and ``best.toml`` (the
best point's settings, for ``streamer train --config``) to ``--out``.

    streamer tune --grid d_model=32,64 --grid lr=1e-3,3e-4 --folds 4 --out runs/tune
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from helo.models.datasets.sources import SOURCE_HELP
from helo.models.evaluation import PROTOCOLS
from helo.models.metrics import METRICS
from helo.streamer.commands import train as train_cmd
from helo.streamer.commands.session_args import add_input_arguments, inputs_from
from helo.streamer.demo import DEMO_TRAIN_CONFIG
from helo.streamer.tuning import parse_grid, tune_grid

log = logging.getLogger("streamer.tune")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="compare a grid of settings by cross-validation (Ray Tune)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="values to try for a training setting or model option (repeatable)",
    )
    p.add_argument("--data", help=f"data set: {SOURCE_HELP} (default: the config's)")
    add_input_arguments(p)
    p.add_argument("--config", type=Path, help="TOML training settings (default: the demo's)")
    p.add_argument("--spec", type=Path, help="spec for labelled XDF data (JSON or checkpoint)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="subject")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--metric", choices=METRICS, default="kl", help="what decides the best")
    p.add_argument("--out", type=Path, default=Path("runs/tune"), help="output folder")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--model", choices=["helo", "concat_mlp", "mean"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--ray-address", help="a Ray cluster (default: RAY_ADDRESS, else local)")
    p.add_argument("--workers", type=int, help="CPUs of the local Ray instance (default: all)")
    p.set_defaults(
        run=run,
        batch_size=None,
        lr=None,
        patience=None,
        modality_dropout=None,
        accelerator=None,
        threads=None,
        val_by=None,
        normalisation=None,
    )


def run(args: argparse.Namespace) -> int:
    grid = parse_grid(args.grid)
    config = train_cmd.read_config(args.config or DEMO_TRAIN_CONFIG)
    source, data_cfg, base = train_cmd.source_and_settings(args, config)
    data = train_cmd.load_data(source, data_cfg, train_cmd.load_spec(args.spec), inputs_from(args))
    rows, best = tune_grid(
        data,
        base,
        grid,
        args.protocol,
        args.folds,
        out=args.out,
        metric=args.metric,
        address=args.ray_address,
        workers=args.workers,
    )
    print((args.out / "tune.md").read_text())
    failed = [r for r in rows if r.error]
    for row in failed:
        log.warning("grid point %s failed: %s", row.point, row.error)
    log.info("best %s: %s; its settings in %s", args.metric, best.point, args.out / "best.toml")
    return 0

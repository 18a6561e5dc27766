"""``streamer evaluate``: the six distribution metrics over all test windows.

Two uses:

- a trained checkpoint on a data set: ``streamer evaluate --checkpoint M.safetensors
  --data SOURCE`` (``--demo``: the shipped demo model on held-out simulated
  subjects it never saw), with metrics per modality subset;
- a protocol, training one model per fold: ``streamer evaluate --protocol subject
  --folds 5 --data SOURCE [training flags]`` (subject-independent: whole subjects
  per fold) or ``--protocol trial`` (subject-dependent: whole trials per fold).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from helo.models.checkpoint import load_checkpoint
from helo.models.datasets.sources import SOURCE_HELP
from helo.models.errors import HeloError
from helo.models.evaluation import PROTOCOLS, cross_validate, evaluate_subsets, predict
from helo.models.metrics import evaluate_distributions, metrics_table
from helo.models.training import resolve_device
from helo.streamer.commands import train as train_cmd
from helo.streamer.commands.session_args import add_input_arguments, inputs_from
from helo.streamer.demo import DEMO_CHECKPOINT, DEMO_TEST_DATA
from helo.streamer.distributed import add_ray_arguments, fold_map_from
from helo.streamer.process import configure_for_training

log = logging.getLogger("streamer.evaluate")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="metrics of a checkpoint, or of a protocol by folds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--checkpoint", type=Path, help="trained model (.safetensors)")
    what.add_argument(
        "--demo", action="store_true", help="the shipped demo model on held-out simulated subjects"
    )
    what.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="cross-validate: 'subject' (subject-independent) or 'trial' "
        "(subject-dependent, trial-level folds)",
    )
    p.add_argument("--data", help=f"test data: {SOURCE_HELP}")
    add_input_arguments(p)
    p.add_argument("--folds", type=int, default=5, help="number of folds for --protocol")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--accelerator", choices=["auto", "cpu", "cuda"], default="auto")
    # Training settings for --protocol (same meaning as in `streamer train`).
    p.add_argument("--config", type=Path, help="TOML training config for --protocol")
    p.add_argument("--spec", type=Path, help="spec for labelled XDF data (JSON or checkpoint)")
    p.add_argument("--model", choices=["helo", "concat_mlp", "mean"])
    p.add_argument("--normalisation", choices=["global", "participant"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true")
    add_ray_arguments(p, "the folds")
    p.set_defaults(
        run=run,
        batch_size=None,
        lr=None,
        patience=None,
        modality_dropout=None,
        threads=None,
        val_by=None,
    )


def run(args: argparse.Namespace) -> int:
    if args.protocol:
        return _run_protocol(args)
    if not args.demo and args.checkpoint is None:
        raise HeloError("give --checkpoint FILE, --demo, or --protocol subject|trial")
    path = DEMO_CHECKPOINT if args.demo else args.checkpoint
    device = resolve_device(args.accelerator)
    ckpt = load_checkpoint(path, device=device)
    if args.data:
        data = train_cmd.load_data(
            args.data, {}, ckpt.spec if args.data.startswith("xdf:") else None, inputs_from(args)
        )
    elif args.demo:
        data = train_cmd.load_data("synthetic", dict(DEMO_TEST_DATA), None)
    else:
        raise HeloError("--checkpoint needs --data (the test data set)")
    _warn_overlap(ckpt.training, data.subjects)
    pred = predict(ckpt.model, ckpt.spec, data, device)
    metrics = evaluate_distributions(pred, data.targets)
    rows = {f"{ckpt.kind} ({path.name})": metrics}
    train_mean = ckpt.training.get("data", {}).get("train_target_mean")
    if train_mean is not None and len(train_mean) == data.targets.shape[1]:
        import numpy as np

        mean_pred = np.tile(np.asarray(train_mean) / np.sum(train_mean), (len(data), 1))
        rows["training-mean distribution"] = evaluate_distributions(mean_pred, data.targets)
    subsets = evaluate_subsets(ckpt.model, ckpt.spec, data, device)
    print(f"{data.summary()}\n")
    print(metrics_table(rows))
    print("\nwith only some modalities present (others masked):\n")
    print(metrics_table(subsets, first="modalities", extra=("n",)))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "checkpoint": str(path),
                    "n": len(data),
                    "metrics": metrics,
                    "per_subset": subsets,
                    "baselines": rows,
                },
                indent=1,
            )
        )
    return 0


def _run_protocol(args: argparse.Namespace) -> int:
    config = train_cmd.read_config(args.config)
    source, data_cfg, train_cfg = train_cmd.source_and_settings(args, config)
    configure_for_training(train_cfg.threads)
    data = train_cmd.load_data(source, data_cfg, train_cmd.load_spec(args.spec), inputs_from(args))
    result = cross_validate(
        data,
        train_cfg,
        args.protocol,
        args.folds,
        subsets=True,
        progress=not args.no_progress,
        on_fold=lambda r: log.info(
            "fold %d/%d: %s",
            r.fold + 1,
            args.folds,
            ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items()),
        ),
        fold_map=fold_map_from(args),
    )
    name = {"subject": "subject-independent", "trial": "subject-dependent (trial folds)"}
    print(
        f"{data.summary()}\n{name[args.protocol]}, {args.folds} folds, "
        f"all {len(data)} test windows pooled:\n"
    )
    print(metrics_table({train_cfg.model: result.metrics}))
    print("\nwith only some modalities present (others masked):\n")
    print(metrics_table(result.per_subset, first="modalities", extra=("n",)))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=1))
    return 0


def _warn_overlap(training: dict, subjects) -> None:
    seen = set(training.get("data", {}).get("train_subjects", []))
    seen |= set(training.get("data", {}).get("validation_subjects", []))
    overlap = seen & set(map(str, subjects))
    if overlap:
        log.warning(
            "%d test subject(s) were also in the training data: %s",
            len(overlap),
            sorted(overlap)[:5],
        )

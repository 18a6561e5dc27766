"""``streamer adapt``: a personal model from one participant's labelled trials.

    streamer adapt --data xdf:session_P07.xdf [--checkpoint BASE] [--participant P07]
                   [--train inputs|head|encoders|all] [--out FILE]

Fits a copy of the model (default: the demo model) to the participant's labelled
windows (``xdf:`` recordings with an EmotionLabels stream, or one subject of any
data source). By default a scale and a shift per input feature, on every trial, on a
fixed schedule, folded into the model's encoders (``--lr``/``--epochs`` do not apply);
with ``--train head|encoders|all``, those layers are fine-tuned, holding out a
quarter of the trials (at least one) for early stopping when there are two or more.
Writes a checkpoint whose metadata names the base model,
the participant and the trials used. Without ``--out`` it goes to the personal
models folder (``HELO_PERSONAL_DIR`` or ``~/.helo/personal``), where the desktop
app's model picker lists it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from helo.models.checkpoint import load_checkpoint
from helo.models.datasets.sources import SOURCE_HELP
from helo.models.personal import MOVING, AdaptConfig, adapt_model, save_personal
from helo.streamer.commands import train as train_cmd
from helo.streamer.commands.session_args import add_input_arguments, inputs_from
from helo.streamer.demo import DEMO_CHECKPOINT, personal_dir
from helo.streamer.process import configure_for_training

log = logging.getLogger("streamer.adapt")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "adapt",
        help="a personal model from one participant's labelled trials",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", type=Path, help="base model (default: the demo model)")
    p.add_argument("--data", required=True, help=f"labelled data: {SOURCE_HELP}")
    p.add_argument("--participant", help="which participant of the data (when it holds several)")
    p.add_argument(
        "--train",
        choices=MOVING,
        default=AdaptConfig.moving,
        help="what is fitted: a scale and shift per input feature, folded into the "
        "encoders (inputs, the default), or fine-tuned layers: the head (label attention "
        "and output layers), the per-modality encoders, or all",
    )
    p.add_argument("--lr", type=float, default=AdaptConfig.lr)
    p.add_argument("--epochs", type=int, default=AdaptConfig.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hop", type=float, default=1.0, help="seconds between training windows")
    add_input_arguments(p)
    p.add_argument("--out", type=Path, help="personal checkpoint to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    configure_for_training(None)
    base = load_checkpoint(args.checkpoint or DEMO_CHECKPOINT)
    data = train_cmd.load_data(args.data, {"hop_s": args.hop}, base.spec, inputs_from(args))
    config = AdaptConfig(moving=args.train, lr=args.lr, epochs=args.epochs, seed=args.seed)
    result = adapt_model(base, data, config, participant=args.participant, log=log.debug)
    stem = Path(base.path or "model").stem
    out = args.out or personal_dir() / f"{result.participant}-{stem}.safetensors"
    path = save_personal(out, base, result, source=args.data)
    print(f"personal model: {path}")
    change = (
        f"; KL {result.checked_on()} {result.kl_before:.4f} -> {result.kl_after:.4f}"
        if result.kl_before is not None and result.kl_after is not None
        else " (no trial held out: only one)"
    )
    print(
        f"participant {result.participant}: fitted {args.train} on "
        f"{len(result.trials)} trial(s) in {result.seconds:.1f} s{change}"
    )
    return 0

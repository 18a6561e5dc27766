"""Personal models side by side in one batch: each group member's input calibration
applied to their rows before the shared base model.

A group session runs one model for everyone (one call per hop, the batch grows with
the group). A personal model made by an input calibration (``streamer adapt``'s
default) is that base model with a scale and a shift per input feature folded into its
encoders, and its metadata keeps the numbers: applied to a member's model inputs, they
give what the personal checkpoint gives (to float rounding), while the others' rows
stay the base model's. A personal model whose layers were fine-tuned (``--train
head``...) is another network and cannot share the batch; it is refused in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helo.models.checkpoint import Checkpoint, load_checkpoint, weights_digest
from helo.models.errors import HeloError
from helo.models.features.spec import spec_difference


@dataclass(frozen=True)
class PersonalInputs:
    """One member's calibration: ``x * scale + shift`` per modality, broadcast over the
    modality's feature shape (float32, like the model's inputs)."""

    path: Path
    participant: str  # whom the model was made for (its metadata)
    scale: dict[str, np.ndarray]
    shift: dict[str, np.ndarray]

    def apply(self, values: dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Calibrate ``rows`` of the batch's model inputs in place. Missing values count as
        0 first, as the model reads them: the folded encoders add the shift there too."""
        for name, scale in self.scale.items():
            part = np.nan_to_num(values[name][rows])
            values[name][rows] = part * scale + self.shift[name]


def load_personal_inputs(path: str | Path, base: Checkpoint) -> PersonalInputs:
    """The input calibration of the personal model at ``path``, made from ``base``; a
    one-line :class:`HeloError` naming the file when it cannot run beside ``base``."""
    path = Path(path)
    personal = load_checkpoint(path)
    why = spec_difference(base.spec, personal.spec)
    if why:
        raise HeloError(f"{path}: takes other inputs than the session's model: {why}")
    provenance = personal.training.get("personal") or {}
    if not provenance:
        raise HeloError(f"{path}: not a personal model (streamer adapt makes them)")
    numbers = provenance.get("input_calibration")
    if not numbers:
        moved = (provenance.get("adapt_config") or {}).get("moving", "?")
        raise HeloError(
            f"{path}: its layers were fine-tuned (--train {moved}), so it cannot share the "
            "group's batch; make it with streamer adapt --train inputs (the default)"
        )
    if provenance.get("base_weights_sha256") != weights_digest(base.model.state_dict()):
        raise HeloError(
            f"{path}: made from {provenance.get('base_model') or 'another model'}, not from "
            f"the session's model {base.path}; run the session with that model"
        )
    return _from_numbers(path, str(provenance.get("participant", "")), numbers, base)


def _from_numbers(
    path: Path, participant: str, numbers: Mapping[str, Mapping], base: Checkpoint
) -> PersonalInputs:
    scale, shift = {}, {}
    for modality in base.spec.modalities:
        entry = numbers.get(modality.name)
        if entry is None:
            continue
        shape = tuple(int(n) for n in entry["shape"])
        log_scale = np.asarray(entry["log_scale"], dtype=np.float32).reshape(shape)
        scale[modality.name] = np.exp(log_scale)
        shift[modality.name] = np.asarray(entry["shift"], dtype=np.float32).reshape(shape)
    return PersonalInputs(path, participant, scale, shift)

"""Checkpoints: one ``.safetensors`` file holding weights, feature spec and metadata.

The weights are stored with safetensors (no pickle: loading never runs code from
the file); the safetensors header's string metadata carries the format name and
version, the model kind and configuration, the feature spec (JSON) and the
training metadata (JSON), plus a SHA-256 of the weights so that a flipped byte is
caught. Every problem on load is a :class:`CheckpointError` whose one line names
the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from helo.models.baselines import ConcatMLP, MeanConfig, MeanDistribution, MLPConfig
from helo.models.errors import CheckpointError, HeloError
from helo.models.features.spec import FeatureSpec
from helo.models.helo import HeLo, HeLoConfig

FORMAT_NAME = "helo-checkpoint"
FORMAT_VERSION = 1

# The models a checkpoint can hold (each has a ``config`` with ``to_dict``).
EmotionModel = HeLo | ConcatMLP | MeanDistribution

MODEL_KINDS: dict[str, tuple[type[EmotionModel], Any]] = {
    "helo": (HeLo, HeLoConfig),
    "concat_mlp": (ConcatMLP, MLPConfig),
    "mean": (MeanDistribution, MeanConfig),
}


@dataclass
class Checkpoint:
    """A loaded model with everything it needs to run: spec, kind, config, metadata."""

    model: EmotionModel
    spec: FeatureSpec
    kind: str
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels


def model_kind(model: nn.Module) -> str:
    for kind, (cls, _) in MODEL_KINDS.items():
        if type(model) is cls:
            return kind
    raise TypeError(f"no checkpoint kind for {type(model).__name__}")


def build_model(kind: str, config: Any) -> EmotionModel:
    cls, _ = MODEL_KINDS[kind]
    return cls(config)


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: EmotionModel,
    spec: FeatureSpec,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with its spec and metadata to ``path`` (``.safetensors``)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = model_kind(model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_kind": kind,
        "model_config": json.dumps(model.config.to_dict()),
        "spec": spec.to_json(),
        "training": json.dumps(training or {}),
        "weights_sha256": weights_digest(tensors),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)  # never leave a half-written checkpoint under the real name
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint for inference (``eval()`` mode, on ``device``)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a .safetensors checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint, corrupt or truncated ({reason})"
        ) from None
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a HeLo checkpoint (no '{FORMAT_NAME}' format tag)")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path}: unreadable format version") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {version} is newer than this build reads ({FORMAT_VERSION}); "
            "update helo-streamer"
        )
    kind = metadata.get("model_kind", "")
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r}")
    if metadata.get("weights_sha256") != weights_digest(tensors):
        raise CheckpointError(f"{path}: weights are corrupt (checksum mismatch)")
    try:
        spec = FeatureSpec.from_json(metadata["spec"])
        config = MODEL_KINDS[kind][1].from_dict(json.loads(metadata["model_config"]))
        training = json.loads(metadata.get("training", "{}"))
    except HeloError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad metadata ({exc})") from None
    model = build_model(kind, config)
    _check_weights(path, model, tensors)
    model.load_state_dict(tensors)
    model.eval().to(device)
    return Checkpoint(model=model, spec=spec, kind=kind, training=training, path=path)


def _check_weights(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{path}: weights do not match the model configuration "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{path}: weight {name!r} has shape {list(tensor.shape)}, "
                f"the model configuration needs {list(expected[name].shape)}"
            )

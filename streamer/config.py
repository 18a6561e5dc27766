"""Session settings: a TOML file and command-line flags, flags winning.

```toml
[session]
checkpoint = "models/demo/helo_synthetic_demo.safetensors"  # default: the demo model
hop_s = 0.25              # default: the checkpoint's
max_wait_s = 0.3          # how long a window waits for the slowest stream
stale_s = 2.0             # older newest sample: the modality is masked
resolve_timeout_s = 10.0
allow_missing = true      # go on without modalities the model can do without
accelerator = "auto"      # auto | cpu | cuda

[streams]                 # which stream feeds a modality (name, source_id or type)
eeg = "BioSemi"

[outputs]
stdout = true
jsonl = "out/predictions.jsonl"
csv = "out/predictions.csv"
lsl = true                # EmotionDistribution outlet
lsl_name = "HeLo"
record = "recordings"     # record the session's streams and predictions to XDF here
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from helo.models.errors import HeloError

_SECTIONS = {"session", "streams", "outputs"}


@dataclass
class SessionConfig:
    checkpoint: Path | None = None
    hop_s: float | None = None
    max_wait_s: float = 0.3
    stale_s: float = 2.0
    resolve_timeout_s: float = 10.0
    buffer_s: float = 30.0
    allow_missing: bool = True
    accelerator: str = "auto"
    streams: dict[str, str] = field(default_factory=dict)
    stdout: bool = True
    jsonl: Path | None = None
    csv: Path | None = None
    lsl: bool = True
    lsl_name: str = "HeLo"
    record: Path | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        for key in ("checkpoint", "jsonl", "csv", "record"):
            if getattr(self, key) is not None:
                setattr(self, key, Path(getattr(self, key)))
        for key in ("max_wait_s", "stale_s", "resolve_timeout_s", "buffer_s"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or value <= 0:
                raise HeloError(f"session config: {key} must be a number > 0, got {value!r}")
        if self.hop_s is not None and not self.hop_s > 0:
            raise HeloError(f"session config: hop_s must be > 0, got {self.hop_s!r}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise HeloError(f"--duration must be > 0 seconds, got {self.duration_s!r}")
        if self.accelerator not in ("auto", "cpu", "cuda"):
            raise HeloError(
                f"session config: accelerator must be auto, cpu or cuda, got {self.accelerator!r}"
            )


def load_session_config(path: Path | None, overrides: dict[str, Any]) -> SessionConfig:
    """Settings from ``path`` (TOML), then ``overrides`` (flags; None means not given)."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise HeloError(f"{path}: cannot read session config ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise HeloError(f"{path}: not valid TOML ({exc})") from None
        unknown = sorted(set(data) - _SECTIONS)
        if unknown:
            raise HeloError(f"{path}: unknown section(s) {unknown}; use {sorted(_SECTIONS)}")
        values.update(data.get("session", {}))
        values.update(data.get("outputs", {}))
        values["streams"] = {str(k): str(v) for k, v in data.get("streams", {}).items()}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "streams":
            values.setdefault("streams", {}).update(value)
        else:
            values[key] = value
    known = {f.name for f in fields(SessionConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise HeloError(f"session config: unknown setting(s) {unknown}")
    return SessionConfig(**values)


def parse_stream_overrides(items: list[str]) -> dict[str, str]:
    """``--stream eeg=BioSemi`` flags -> ``{"eeg": "BioSemi"}``."""
    out = {}
    for item in items:
        modality, sep, stream = item.partition("=")
        if not sep or not modality or not stream:
            raise HeloError(
                f"--stream {item!r}: expected MODALITY=STREAM (name, source_id or type)"
            )
        out[modality.strip()] = stream.strip()
    return out

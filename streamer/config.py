"""Session settings: a TOML file and command-line flags, flags winning.

```toml
[session]
checkpoint = "models/demo/helo_synthetic_demo.safetensors"  # default: the demo model
hop_s = 0.25              # default: the checkpoint's
max_wait_s = 0.3          # how long a window waits for the slowest stream
stale_s = 2.0             # older newest sample: the modality is masked
align_ends = true         # live window ends where the devices' packets arrive soonest
follow_ends = true        # live: a window takes in the packet that completed it (<= hop/10)
resolve_timeout_s = 10.0
allow_missing = true      # go on without modalities the model can do without
accelerator = "auto"      # auto | cpu | cuda
baseline_s = 60           # the first 60 s are the participant at rest (calibrating)

truth_stream = "MyTruth"  # a stream with a known distribution: recorded, drawn (optional)
labels_stream = "Stimuli" # EmotionLabels of the trials: recorded, and a personal model from them

[streams]                 # which stream feeds a modality (name, source_id or type)
eeg = "BioSemi"

[inputs]                  # what the lab knows of its streams (see docs/inputs.md)
montage = "biosemi64"     # translate BioSemi ABC labels (A1..B32) to 10-20 names
max_interpolated = 0.25   # share of the model's EEG channels that may be interpolated
channels.eeg = "Fp1,Fp2,F3,F4,C3,C4,P3,P4"  # labels for a stream that has none
units.eeg = "V"           # the stream's unit, when its description says none or wrong

[participants.P01]        # a group session: who wears which stream (docs/groups.md)
eeg = "EEG-P01"           # modality = stream name or source_id; also truth, labels
gsr = "GSR-P01"
model = "~/.helo/personal/P01-demo.safetensors"  # their personal model (optional)
[participants.P02]
eeg = "EEG-P02"

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

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helo.models.errors import HeloError
from helo.models.features.adapt import AdaptOptions
from helo.models.features.channels import parse_channel_list
from helo.streamer.grouping import GroupingRule, Selection
from helo.streamer.lsl_reader import BUFFER_S
from helo.streamer.scheduler import MAX_WAIT_S, STALE_S

_SECTIONS = {"session", "streams", "inputs", "outputs", "participants"}
_INPUT_KEYS = {"montage", "max_interpolated", "channels", "units"}
if TYPE_CHECKING:  # devices import the runtime; the config only reads what they started
    from helo.devices.start import StartedDevices

RESOLVE_TIMEOUT_S = 10.0


@dataclass
class SessionConfig:
    """What a session (live or replay) runs with; one default per setting."""

    checkpoint: Path | None = None
    hop_s: float | None = None
    max_wait_s: float = MAX_WAIT_S
    stale_s: float = STALE_S
    align_ends: bool = True  # live: window ends placed by the packets' arrival (hop_phase)
    # live: a window ends at the newest instant every stream has sent when it is cut, at
    # most a tenth of a hop past its place on the grid (scheduler._followed_end)
    follow_ends: bool = True
    resolve_timeout_s: float = RESOLVE_TIMEOUT_S
    buffer_s: float = BUFFER_S
    allow_missing: bool = True
    accelerator: str = "auto"
    threads: int | None = None  # CPU threads for batched inference (None: every core)
    streams: dict[str, str] = field(default_factory=dict)
    inputs: AdaptOptions = field(default_factory=AdaptOptions)
    truth_stream: str | None = None  # source_id or name of a stream of true distributions
    labels_stream: str | None = None  # source_id or name of the session's EmotionLabels
    stdout: bool = True
    jsonl: Path | None = None
    csv: Path | None = None
    lsl: bool = True
    lsl_name: str = "HeLo"
    record: Path | None = None
    duration_s: float | None = None
    baseline_s: float = 0.0  # the first seconds are the participant's rest (calibrating)
    # a group session: participant -> {modality | "truth" | "labels": stream name or id}
    participants: dict[str, dict[str, str]] = field(default_factory=dict)
    participants_select: str | None = None  # --participants auto|N|P01,P02 (None: one person)
    participants_by: str | None = None  # --participants-by auto|config|desc|hostname|name:RE
    # a group member's personal model (input calibration) beside the group's model
    personal: dict[str, str] = field(default_factory=dict)  # participant -> checkpoint

    @property
    def group(self) -> bool:
        """Whether the session follows a group (one prediction stream per participant)."""
        return self.participants_select is not None or bool(self.participants)

    def __post_init__(self) -> None:
        for key in ("checkpoint", "jsonl", "csv", "record"):
            if getattr(self, key) is not None:
                setattr(self, key, Path(getattr(self, key)))
        for key in ("max_wait_s", "stale_s", "resolve_timeout_s", "buffer_s"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or value <= 0:
                raise HeloError(f"session config: {key} must be a number > 0, got {value!r}")
        for key in ("align_ends", "follow_ends"):
            if not isinstance(getattr(self, key), bool):
                raise HeloError(
                    f"session config: {key} must be true or false, got {getattr(self, key)!r}"
                )
        if self.hop_s is not None and not self.hop_s > 0:
            raise HeloError(f"session config: hop_s must be > 0, got {self.hop_s!r}")
        if not isinstance(self.baseline_s, int | float) or not 0 <= self.baseline_s < 3600:
            raise HeloError(f"--baseline must be seconds in [0, 3600), got {self.baseline_s!r}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise HeloError(f"--duration must be > 0 seconds, got {self.duration_s!r}")
        if not 0.0 <= self.inputs.max_interpolated < 1.0:
            raise HeloError(
                "session config: max_interpolated must be a share in [0, 1), got "
                f"{self.inputs.max_interpolated!r}"
            )
        self.selection = Selection.parse(self.participants_select)  # one-line errors, now
        self.grouping_rule = GroupingRule.parse(self.participants_by)
        if self.accelerator not in ("auto", "cpu", "cuda"):
            raise HeloError(
                f"session config: accelerator must be auto, cpu or cuda, got {self.accelerator!r}"
            )

    def with_devices(self, devices: StartedDevices) -> SessionConfig:
        """These settings reading the streams the devices started (by source_id: no
        other stream on the network gets mixed in); a simulated group is grouped by
        the device's own table of participants."""
        if devices.participants:
            return dataclasses.replace(
                self,
                participants={**devices.participants, **self.participants},
                participants_select=self.participants_select or str(len(devices.participants)),
                participants_by=self.participants_by or "config",
            )
        return dataclasses.replace(
            self,
            streams={**devices.streams, **self.streams},
            truth_stream=self.truth_stream or devices.truth,
            labels_stream=self.labels_stream or devices.labels,
        )


def load_session_config(path: Path | None, overrides: dict[str, Any]) -> SessionConfig:
    """Settings from ``path`` (TOML), then ``overrides`` (flags; None means not given)."""
    values: dict[str, Any] = {}
    inputs: dict[str, Any] = {"channels": {}, "units": {}}
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
        if "participants" in data:
            tables = _read_participants(path, data["participants"])
            personal = {p: table.pop("model") for p, table in tables.items() if "model" in table}
            values["participants"] = tables
            values["personal"] = personal
        _read_inputs(path, data.get("inputs", {}), inputs)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("streams", "personal"):
            values.setdefault(key, {}).update(value)
        elif key in ("channels", "units"):
            inputs[key].update(value)
        elif key in _INPUT_KEYS:
            inputs[key] = value
        else:
            values[key] = value
    values["inputs"] = AdaptOptions(**inputs)
    known = {f.name for f in fields(SessionConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise HeloError(f"session config: unknown setting(s) {unknown}")
    return SessionConfig(**values)


def _read_participants(path: Path, section: Any) -> dict[str, dict[str, str]]:
    """``[participants.P01] eeg = "..."`` tables -> ``{"P01": {"eeg": "..."}}``."""
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise HeloError(
            f"{path}: [participants] holds one table per participant: "
            '[participants.P01] eeg = "stream name or source_id"'
        )
    return {str(p): {str(k): str(v) for k, v in t.items()} for p, t in section.items()}


def _read_inputs(path: Path, section: dict[str, Any], inputs: dict[str, Any]) -> None:
    unknown = sorted(set(section) - _INPUT_KEYS)
    if unknown:
        raise HeloError(f"{path}: [inputs] unknown key(s) {unknown}; use {sorted(_INPUT_KEYS)}")
    for key in ("montage", "max_interpolated"):
        if key in section:
            inputs[key] = section[key]
    for modality, labels in dict(section.get("channels", {})).items():
        inputs["channels"][str(modality)] = parse_channel_list(
            labels, f"{path}: [inputs] channels.{modality}"
        )
    inputs["units"].update({str(k): str(v) for k, v in dict(section.get("units", {})).items()})


def parse_pairs(items: list[str], flag: str, what: str, key: str = "MODALITY") -> dict[str, str]:
    """``--units eeg=V`` style flags -> ``{"eeg": "V"}``."""
    out = {}
    for item in items:
        modality, sep, value = item.partition("=")
        if not sep or not modality.strip() or not value.strip():
            raise HeloError(f"{flag} {item!r}: expected {key}={what}")
        out[modality.strip()] = value.strip()
    return out


def parse_channel_flags(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``--channels eeg=Fp1,Fp2,...`` flags -> ``{"eeg": ("Fp1", "Fp2", ...)}``."""
    return {
        modality: parse_channel_list(labels, f"--channels {modality}")
        for modality, labels in parse_pairs(items, "--channels", "LABEL,LABEL,...").items()
    }


def parse_stream_overrides(items: list[str]) -> dict[str, str]:
    """``--stream eeg=BioSemi`` flags -> ``{"eeg": "BioSemi"}``."""
    return parse_pairs(items, "--stream", "STREAM (name, source_id or type)")


@dataclass(frozen=True)
class TimePoint:
    """A point of a recording: seconds after its start, or an LSL time (``lsl:4512.5``)."""

    value: float
    lsl: bool = False

    @classmethod
    def parse(cls, text: str, flag: str) -> TimePoint:
        lsl = text.strip().lower().startswith("lsl:")
        number = text.strip()[4:] if lsl else text.strip()
        try:
            value = float(number)
        except ValueError:
            raise HeloError(
                f"{flag} {text!r}: give seconds into the recording (e.g. 120) "
                "or an LSL time (e.g. lsl:4512.5)"
            ) from None
        if not math.isfinite(value) or (value < 0 and not lsl):
            raise HeloError(f"{flag} {text!r}: must be a finite time >= 0")
        return cls(value, lsl)

    def resolve(self, start_s: float) -> float:
        """The LSL time this point stands for in a recording starting at ``start_s``."""
        return self.value if self.lsl else start_s + self.value


@dataclass
class ReplayOptions:
    """How a recording is played: the CLI's ``streamer replay`` flags and the app's
    replay controls are the same settings."""

    file: Path
    speed: float | None = None  # times real time; None: as fast as possible
    times: str = "hop"  # hop: every hop; recorded: at the predictions recorded in the file
    start: TimePoint | None = None  # first window end (--from)
    end: TimePoint | None = None  # last window end (--to)
    republish: bool = False  # the replayed streams back on LSL (paced replays)

    def __post_init__(self) -> None:
        self.file = Path(self.file)
        if self.speed is not None and not self.speed > 0:
            raise HeloError(f"--speed {self.speed!r}: must be > 0 (or max)")
        if self.times not in ("hop", "recorded"):
            raise HeloError(f"--times {self.times!r}: use hop or recorded")


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible), else a factor of real time > 0."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise HeloError(f"--speed {text!r}: use max or a number > 0 (1 = real time)") from None
    if not speed > 0 or not math.isfinite(speed):
        raise HeloError(f"--speed {text!r}: must be > 0")
    return speed

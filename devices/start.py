"""Starting the producers a session asks for: typed options in, a handle out.

The command line (``streamer run --device synthetic,webcam ...``) and the desktop app
start devices the same way. The handle says which stream feeds which modality (stream
overrides by source_id, so that the session reads these streams and no others), which
stream carries a known true distribution, and stops everything it started.

With the webcam, the face comes from the camera (or a video) and the synthetic device
simulates only the physiology. With ``--participants N`` (N >= 2) the synthetic device
is a group of N simulated participants, each with its own streams; the handle then
maps each participant to its streams (``participants``) instead of filling
``streams``, ``truth`` and ``labels``. A group is simulated only: no webcam joins it.

A webcam that cannot be opened is an error, unless the model can go on without the
face (``allow_missing``) and other streams exist, in which case it is a warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from helo.models.errors import HeloError
from helo.models.streams import LABELS_SOURCE_SUFFIX, TRUTH_SOURCE_SUFFIX

if TYPE_CHECKING:  # the webcam pulls in OpenCV and MediaPipe: imported when started
    from helo.devices.webcam import WebcamDevice

log = logging.getLogger(__name__)

DEVICES = ("synthetic", "lsl", "webcam")
MAX_PARTICIPANTS = 64  # a simulated group's size, at most


class Device(Protocol):
    def stop(self) -> None: ...


@dataclass(frozen=True)
class DeviceOptions:
    """Which producers to start and how. ``lsl`` starts nothing: the streams are already
    on the network."""

    devices: tuple[str, ...] = ("synthetic",)
    camera: int = 0  # webcam: camera index
    video: str | Path | None = None  # webcam: a video file instead of a camera
    loop_video: bool = False
    fps_cap: float | None = None
    face_model: str | Path | None = None  # default: the shipped Face Landmarker
    faults: tuple[str, ...] = ()  # synthetic device: "eeg:nan:20-22", ...
    style: str = ""  # synthetic device: a lab's stream shape, "eeg_rate=500,eeg_unit=V"
    rest_s: float = 0.0  # synthetic device: the participant rests first (a session baseline)
    allow_missing: bool = True  # a webcam that fails is a warning when others stream
    participants: int = 0  # synthetic device: 0 or 1 one participant, N >= 2 a group of N

    def __post_init__(self) -> None:
        unknown = sorted(set(self.devices) - set(DEVICES))
        if unknown or not self.devices:
            raise HeloError(
                f"--device: unknown device(s) {unknown or '(none given)'}; "
                f"choose from {list(DEVICES)}"
            )
        if not 0 <= self.participants <= MAX_PARTICIPANTS:
            raise HeloError(
                f"--participants {self.participants}: give 0 to {MAX_PARTICIPANTS} "
                "simulated participants (0 or 1: one)"
            )
        if self.participants >= 2 and "webcam" in self.devices:
            raise HeloError(
                f"--participants {self.participants}: a group is simulated only; "
                "use --device synthetic without webcam"
            )


def parse_devices(text: str) -> tuple[str, ...]:
    """``"synthetic,webcam"`` -> ``("synthetic", "webcam")``."""
    return tuple(d.strip() for d in text.split(",") if d.strip())


@dataclass
class StartedDevices:
    """What was started: the streams it offers (modality -> source_id), the source_id of
    its true distribution (if any), the webcam (for a preview), and :meth:`stop`. A
    simulated group fills ``participants`` instead of ``streams``, ``truth`` and
    ``labels``."""

    streams: dict[str, str] = field(default_factory=dict)
    truth: str | None = None
    labels: str | None = None  # source_id of its EmotionLabels stream (if any)
    # participant -> modality, "truth" or "labels" -> source_id (a simulated group)
    participants: dict[str, dict[str, str]] = field(default_factory=dict)
    webcam: WebcamDevice | None = None
    started: list[Device] = field(default_factory=list)

    def stop(self) -> None:
        """Stop everything, each on its own: one that fails does not keep the others."""
        for device in reversed(self.started):
            try:
                device.stop()
            except Exception:
                log.exception("stopping %s failed", type(device).__name__)
        self.started.clear()

    def __enter__(self) -> StartedDevices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_devices(options: DeviceOptions) -> StartedDevices:
    """Start the producers of ``options``; on any failure, what was already started is
    stopped before the error goes on."""
    handle = StartedDevices()
    try:
        if "webcam" in options.devices:
            _start_webcam(options, handle)
        if "synthetic" in options.devices:
            _start_synthetic(options, handle)
    except BaseException:
        handle.stop()
        raise
    return handle


def _start_webcam(options: DeviceOptions, handle: StartedDevices) -> None:
    from helo.devices.webcam import WebcamDevice

    source = options.video if options.video is not None else options.camera
    webcam = WebcamDevice(
        source,
        fps_cap=options.fps_cap,
        face_model=options.face_model,
        loop=options.loop_video,
        source_id=f"helo-webcam-{os.getpid()}",
        wait_for_reader=True,
    )
    try:
        handle.started.append(webcam.start())
    except HeloError as exc:
        if not options.allow_missing or options.devices == ("webcam",):
            raise
        log.warning("%s; going on without the face", exc)
        return
    handle.webcam = webcam
    handle.streams["face"] = webcam.source_id


def _start_synthetic(options: DeviceOptions, handle: StartedDevices) -> None:
    from helo.devices.synthetic import Fault, StreamStyle, SyntheticDevice

    try:
        faults = tuple(Fault.parse(text) for text in options.faults)
    except ValueError as exc:
        raise HeloError(f"--fault: {exc}") from None
    try:
        style = StreamStyle.parse(options.style)
    except ValueError as exc:
        raise HeloError(f"--style {options.style!r}: {exc}") from None
    if options.participants >= 2:
        from helo.devices.synthetic_group import SyntheticGroup

        group = SyntheticGroup(
            options.participants, faults=faults, style=style, rest_s=options.rest_s
        ).start()
        handle.started.append(group)
        handle.participants = group.participants
        return
    simulated = (
        ("eeg", "gsr", "ppg") if "webcam" in options.devices else ("eeg", "gsr", "ppg", "face")
    )
    device = SyntheticDevice(
        faults=faults, modalities=simulated, style=style, rest_s=options.rest_s
    ).start()
    handle.started.append(device)
    for modality in device.modalities:
        handle.streams.setdefault(modality, f"{device.source_prefix}-{modality}")
    handle.truth = device.source_prefix + TRUTH_SOURCE_SUFFIX
    handle.labels = device.source_prefix + LABELS_SOURCE_SUFFIX

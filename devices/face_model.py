"""The MediaPipe Face Landmarker: 52 blendshape scores and head pose from a video frame.

The model bundle ships inside the project (``models/assets/face_landmarker.task``,
Apache-2.0, Google) and is checked against its SHA-256 before use, so a lab
without internet works out of the box and a damaged file is caught at once.
It runs in VIDEO mode: MediaPipe tracks the face from frame to frame (faster than
detecting it anew) and needs increasing timestamps.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import helo.models
from helo.devices.native_output import native_output_to_log
from helo.models.errors import HeloError
from helo.models.features.face import BLENDSHAPE_NAMES

FACE_MODEL = Path(helo.models.__file__).resolve().parent / "assets" / "face_landmarker.task"
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"


class FaceModelError(HeloError):
    """The face model file is missing, damaged or not a Face Landmarker bundle."""


def check_face_model(path: str | Path, expected_sha256: str | None = FACE_MODEL_SHA256) -> Path:
    """The model path if it exists and (for the shipped one) has the right checksum."""
    path = Path(path)
    if not path.is_file():
        raise FaceModelError(f"{path}: face model not found (use --face-model PATH)")
    if expected_sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected_sha256:
            raise FaceModelError(
                f"{path}: face model is damaged (sha256 {digest[:12]}..., "
                f"expected {expected_sha256[:12]}...)"
            )
    return path


@dataclass
class FaceFrame:
    """What one frame gives: scores are NaN when no face was found."""

    scores: np.ndarray  # [52] blendshape scores 0..1, or NaN
    present: bool
    yaw_deg: float = float("nan")
    pitch_deg: float = float("nan")
    roll_deg: float = float("nan")
    landmarks: np.ndarray | None = None  # [478, 2] pixel coordinates, for the preview

    def sample(self) -> list[float]:
        """The LSL sample: 52 scores, facePresent, headYaw, headPitch, headRoll."""
        return [
            *self.scores.tolist(),
            1.0 if self.present else 0.0,
            self.yaw_deg,
            self.pitch_deg,
            self.roll_deg,
        ]


def head_pose_deg(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll (degrees) from MediaPipe's 4x4 facial transformation matrix
    (rotation R = Rz(roll) Ry(yaw) Rx(pitch), camera looking at the face)."""
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2])))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


class FaceLandmarker:
    """MediaPipe Face Landmarker in VIDEO mode (one face), frames in, :class:`FaceFrame` out."""

    def __init__(self, model_path: str | Path | None = None, min_confidence: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision

        path = check_face_model(
            model_path or FACE_MODEL, FACE_MODEL_SHA256 if model_path is None else None
        )
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            with native_output_to_log(2, "mediapipe"):
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise FaceModelError(
                f"{path}: not a usable Face Landmarker model ({str(exc).splitlines()[0]})"
            ) from None
        self._last_ms = -1
        self._frames = 0

    def process(self, rgb: np.ndarray, timestamp_ms: int, landmarks: bool = False) -> FaceFrame:
        """Blendshapes and pose of ``rgb`` (``[H, W, 3]`` uint8, RGB order); the 478
        landmark points too when ``landmarks`` (for a preview)."""
        import mediapipe as mp

        timestamp_ms = max(int(timestamp_ms), self._last_ms + 1)  # VIDEO mode: increasing
        self._last_ms = timestamp_ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        first = self._frames == 0  # TF Lite greets the terminal on the first frame
        self._frames += 1
        with native_output_to_log(2, "mediapipe") if first else contextlib.nullcontext():
            result = self._landmarker.detect_for_video(image, timestamp_ms)
        if not result.face_blendshapes:
            return FaceFrame(np.full(len(BLENDSHAPE_NAMES), np.nan), False)
        categories = result.face_blendshapes[0]
        scores = np.full(len(BLENDSHAPE_NAMES), np.nan)
        for category in categories:
            if category.category_name in _INDEX:
                scores[_INDEX[category.category_name]] = category.score
        yaw, pitch, roll = (
            head_pose_deg(result.facial_transformation_matrixes[0])
            if result.facial_transformation_matrixes
            else (np.nan,) * 3
        )
        points = None
        if landmarks:
            height, width = rgb.shape[:2]
            points = np.array([[p.x * width, p.y * height] for p in result.face_landmarks[0]])
        return FaceFrame(scores, True, yaw, pitch, roll, points)

    def close(self) -> None:
        self._landmarker.close()


_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}

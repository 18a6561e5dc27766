"""Short videos of real faces (scikit-image's astronaut, matplotlib's Grace Hopper): the
webcam device's input in tests and in `streamer bench`, where no camera can be assumed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def face_image(name: str) -> np.ndarray:
    """RGB uint8 photo: "astronaut" (smiling) or "grace_hopper"."""
    if name == "astronaut":
        import skimage.data

        return skimage.data.astronaut()
    import matplotlib.cbook
    import matplotlib.image

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(matplotlib.image.imread(str(path), format="jpg"))


def write_video(
    path: Path,
    image: np.ndarray | None,
    n_frames: int = 45,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Path:
    """An MJPG video of ``image`` moving and zooming a little (None: a blank grey scene)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    rng = np.random.default_rng(seed)
    for i in range(n_frames):
        if image is None:
            frame = np.full((height, width, 3), 120, np.uint8)
        else:
            scale = 0.9 + 0.1 * np.sin(i / 7.0)
            dx, dy = rng.integers(-12, 13, size=2)
            h, w = image.shape[:2]
            fit = min(width / w, height / h) * scale
            resized = cv2.resize(image[:, :, :3], (int(w * fit), int(h * fit)))
            frame = np.full((height, width, 3), 40, np.uint8)
            y0 = max(0, (height - resized.shape[0]) // 2 + int(dy))
            x0 = max(0, (width - resized.shape[1]) // 2 + int(dx))
            crop = resized[: height - y0, : width - x0]
            frame[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        writer.write(frame if image is None else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path

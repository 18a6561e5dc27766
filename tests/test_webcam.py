"""The webcam device on real faces (from video files), its LSL stream, its failures."""

from __future__ import annotations

import shutil
import time
import uuid

import numpy as np
import pylsl
import pytest

from helo.devices.face_model import FACE_MODEL, FaceLandmarker, FaceModelError, check_face_model
from helo.devices.face_video import face_image, write_video
from helo.devices.webcam import CameraError, WebcamDevice
from helo.models.features.face import BLENDSHAPE_NAMES, FACE_STREAM_CHANNELS
from helo.models.streams import describe_lsl

SMILE = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]
PRESENT = FACE_STREAM_CHANNELS.index("facePresent")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        name: write_video(folder / f"{name}.avi", face_image(name) if name != "blank" else None)
        for name in ("astronaut", "grace_hopper", "blank")
    }


def _run_file(path, **kwargs) -> tuple[np.ndarray, np.ndarray, WebcamDevice, pylsl.StreamInfo]:
    """Every sample the device publishes for a video file read once, as fast as it goes."""
    device = WebcamDevice(
        path, realtime=False, source_id=f"test-{uuid.uuid4().hex[:8]}", **kwargs
    ).open()
    info = pylsl.resolve_byprop("source_id", device.source_id, timeout=5.0)[0]
    inlet = pylsl.StreamInlet(info)
    inlet.open_stream(timeout=5.0)
    with device:
        assert device.wait_until_done(timeout_s=60)
        time.sleep(0.3)
        data, stamps = inlet.pull_chunk(timeout=1.0, max_samples=10_000)
        full = inlet.info(timeout=5.0)
    return np.asarray(data), np.asarray(stamps), device, full


def test_a_smiling_face_in_every_frame(videos):
    data, stamps, device, info = _run_file(videos["astronaut"])
    assert len(data) == 45  # one sample per frame
    assert (data[:, PRESENT] == 1).all()
    assert data[:, SMILE].mean() > 0.6
    assert np.isfinite(data[:, : len(BLENDSHAPE_NAMES)]).all()
    assert np.all(np.diff(stamps) > 0)  # stamped at capture, in order
    described = describe_lsl(info)
    assert described.type == "FaceBlendshapes"
    assert described.channels == FACE_STREAM_CHANNELS
    assert info.desc().child_value("can_drop_samples") == "true"
    stats = device.stats()
    assert stats.processed == 45
    assert stats.no_face == 0


def test_another_face_is_found_and_does_not_smile(videos):
    data, _, _, _ = _run_file(videos["grace_hopper"])
    assert (data[:, PRESENT] == 1).all()
    assert data[:, SMILE].mean() < 0.3


def test_a_blank_scene_gives_no_face_and_nan_scores(videos):
    data, _, device, _ = _run_file(videos["blank"])
    assert len(data) == 45
    assert (data[:, PRESENT] == 0).all()
    assert np.isnan(data[:, : len(BLENDSHAPE_NAMES)]).all()
    assert np.isnan(data[:, PRESENT + 1 :]).all()  # no head pose either
    assert device.stats().no_face == 45


def test_frames_are_dropped_and_counted_when_processing_falls_behind(tmp_path):
    fast = write_video(tmp_path / "fast.avi", face_image("astronaut"), n_frames=240, fps=240.0)
    device = WebcamDevice(fast, realtime=True, source_id=f"test-{uuid.uuid4().hex[:8]}")
    with device:
        assert device.wait_until_done(timeout_s=60)
        stats = device.stats()
    assert stats.dropped > 0  # 240 frames/s is more than the face model does here
    assert stats.captured == 240
    assert stats.processed + stats.dropped == stats.captured


def test_the_preview_is_drawn_only_while_someone_looks(videos):
    device = WebcamDevice(
        videos["astronaut"], realtime=True, loop=True, source_id=f"test-{uuid.uuid4().hex[:8]}"
    )
    with device:
        time.sleep(0.5)
        assert device._preview is None  # nobody asked: nothing drawn
        frame = None
        deadline = time.monotonic() + 5
        while frame is None and time.monotonic() < deadline:
            frame = device.preview()
            time.sleep(0.05)
    assert frame is not None
    assert frame.shape == (480, 640, 3)
    assert frame.dtype == np.uint8


def test_sources_and_models_that_cannot_be_used_are_one_line_errors(tmp_path):
    with pytest.raises(CameraError, match=r"missing\.avi: no such video file"):
        WebcamDevice(tmp_path / "missing.avi").open()
    with pytest.raises(CameraError, match="cannot open camera 7"):
        WebcamDevice(7).open()
    broken = tmp_path / "face_landmarker.task"
    shutil.copy(FACE_MODEL, broken)
    with broken.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    with pytest.raises(FaceModelError, match="face model is damaged"):
        check_face_model(broken)
    junk = tmp_path / "junk.task"
    junk.write_bytes(b"not a model")
    with pytest.raises(FaceModelError, match=r"junk\.task: not a usable Face Landmarker model"):
        FaceLandmarker(junk)
    with pytest.raises(FaceModelError, match="face model not found"):
        FaceLandmarker(tmp_path / "nope.task")


@pytest.mark.parametrize("fps", [30.0, 23.976])
def test_webcam_face_and_synthetic_physiology_give_predictions_with_the_face(videos, tmp_path, fps):
    """At the model's 30 fps and at film's 23.976: the device declares the video's rate,
    the session reads the frames on the model's grid."""
    from helpers import session_config

    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.session import LiveSession
    from helo.streamer.sinks import MemorySink

    memory = MemorySink()
    video = videos["astronaut"]
    if fps != 30.0:
        video = write_video(tmp_path / "film.avi", face_image("astronaut"), n_frames=72, fps=fps)
    webcam = WebcamDevice(video, loop=True, source_id=f"test-cam-{uuid.uuid4().hex[:8]}")
    assert webcam.open().srate_hz == pytest.approx(fps, abs=0.01)
    body = SyntheticDevice(
        modalities=("eeg", "gsr", "ppg"), source_prefix=f"test-{uuid.uuid4().hex[:8]}"
    )
    with webcam, body:
        config = session_config(body, duration_s=7.0, lsl=False)
        config.streams["face"] = webcam.source_id
        with LiveSession(config, [memory]) as session:
            session.run()
    full = [r for r in memory.records if r.present == ("eeg", "gsr", "ppg", "face")]
    assert len(full) >= 4
    happiness = full[-1].labels.index("happiness")
    assert all(r.distribution[happiness] > 0.2 for r in full)  # the astronaut smiles

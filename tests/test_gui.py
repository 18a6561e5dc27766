"""The desktop app with real widgets (offscreen), a real session behind them, and once
under a real X server (Xvfb) with a screenshot whose pixels are checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import settled

from helo.streamer.demo import DEMO_CHECKPOINT
from helo.ui.health import COLUMNS
from helo.ui.qt_env import prepare_qt_environment
from helo.ui.runner import SourceChoice

DEMO_RECORDING = Path(__file__).parents[1] / "recordings" / "demo_synthetic_session.xdf"


def _stop_and_wait(qtbot, win) -> None:
    win.stop_session()
    qtbot.waitUntil(lambda: win.start_button.isEnabled(), timeout=20_000)
    # the session's thread ends just after it hands the window back (under load, later)
    qtbot.waitUntil(lambda: not win.runner.running, timeout=10_000)


def test_live_synthetic_session_fills_bars_timeline_traces_and_health(qtbot, window):
    window.start_session()
    qtbot.waitUntil(
        lambda: window.predictions >= 6 and window.last_record.distribution is not None,
        timeout=40_000,
    )
    record = window.last_record
    assert window.bars.labels == record.labels
    np.testing.assert_allclose(window.bars.values, record.distribution, atol=1e-6)
    assert window.bars.values.sum() == pytest.approx(1.0, abs=1e-4)
    assert window.bars.headline.text().split()[0] == record.dominant
    qtbot.wait(600)  # a few redraws and one health refresh
    xs, _ys = window.timeline.lines[0].getData()
    assert xs is not None
    assert len(xs) >= 3
    assert xs.max() <= 0.5
    tx, _ = window.timeline.truth_lines[0].getData()  # the device publishes the truth
    assert tx is not None
    assert len(tx) > 0
    assert window.traces.n_curves == 8  # 3 EEG channels, GSR, PPG, 3 face blendshapes
    for _, curves in window.traces.rows:  # every row has its first curve drawn
        assert curves[0].getData()[0] is not None
    table = window.health_table
    assert table.rowCount() == 4
    status = COLUMNS.index("status")
    streams = {table.item(r, 0).text(): table.item(r, status).text() for r in range(4)}
    assert all(text == "ok" for text in streams.values()), streams
    adapted = COLUMNS.index("adapted")
    assert {table.item(r, adapted).text() for r in range(4)} == {"-"}  # our own shape
    assert "latency" in window.latency_label.text()
    _stop_and_wait(qtbot, window)


def test_eeg_traces_follow_the_chosen_labels_and_recording_from_the_window(qtbot, window, tmp_path):
    window.eeg_edit.setText("Cz, pz, nonsense")
    window.record_box.setChecked(True)
    window.record_edit.setText(str(tmp_path))
    window.start_session()
    qtbot.waitUntil(lambda: window.predictions >= 4, timeout=40_000)
    _, _, names = window.traces.sources[0]
    assert names == ["Cz", "Pz"]
    assert len(window.traces.rows[0][1]) == 2
    _stop_and_wait(qtbot, window)
    recordings = list(tmp_path.glob("*.xdf"))
    assert len(recordings) == 1
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(recordings[0]))
    types = {s["info"]["type"][0] for s in streams}
    assert {"EEG", "GSR", "PPG", "FaceBlendshapes", "EmotionDistribution"} <= types


def test_streams_picked_from_discovery_feed_the_model(qtbot, window):
    """Two EEG streams on the network: matching by type cannot choose, the table can."""
    import uuid

    import pylsl
    from PySide6 import QtCore

    from helo.devices.synthetic import SyntheticDevice

    decoy = pylsl.StreamOutlet(
        pylsl.StreamInfo("decoy EEG", "EEG", 32, 256.0, pylsl.cf_float32, "decoy-eeg")
    )
    with SyntheticDevice(source_prefix=f"gui-{uuid.uuid4().hex[:8]}") as device:
        window.source_box.setCurrentIndex(1)  # LSL streams on the network
        qtbot.mouseClick(window.discover_button, QtCore.Qt.MouseButton.LeftButton)
        table = window.stream_map
        qtbot.waitUntil(lambda: "found" in window.discovered_label.text(), timeout=10_000)
        assert [table.item(r, 0).text() for r in range(table.rowCount())] == [
            "eeg",
            "gsr",
            "ppg",
            "face",
        ]
        eeg_box = table.cellWidget(0, 1)
        eeg_choices = [eeg_box.itemData(i) for i in range(eeg_box.count())]
        assert eeg_choices[0] == ""  # automatic first, then the EEG streams
        assert {"decoy-eeg", f"{device.source_prefix}-eeg"} <= set(eeg_choices[1:4])
        for modality in device.modalities:
            table.choose(modality, f"{device.source_prefix}-{modality}")
        assert window.choice().streams == {
            m: f"{device.source_prefix}-{m}" for m in device.modalities
        }
        window.start_session()
        qtbot.waitUntil(
            lambda: window.last_record is not None and len(window.last_record.present) == 4,
            timeout=40_000,
        )
        _stop_and_wait(qtbot, window)
    del decoy


def test_webcam_preview_shows_the_face_with_its_landmarks(qtbot, window, tmp_path):
    """A video of a real face stands in for the camera; the window shows the annotated
    frames beside the bars, and the predictions use the face."""
    from PySide6 import QtGui

    from helo.devices.face_video import face_image, write_video

    video = write_video(tmp_path / "astronaut.mp4", face_image("astronaut"), n_frames=60)
    window.source_box.setCurrentIndex(2)  # webcam or video + synthetic physiology
    window.camera_edit.setText(str(video))
    window.start_session()
    qtbot.waitUntil(
        lambda: window.last_record is not None and "face" in window.last_record.present,
        timeout=60_000,
    )
    assert window.preview.isVisible()
    pixmap = window.preview.pixmap()
    assert not pixmap.isNull()
    assert pixmap.width() == window.preview.width()
    image = pixmap.toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine()
    )[:, : 3 * image.width()]
    rgb = pixels.reshape(image.height(), image.width(), 3).astype(int)
    green = (rgb[..., 1] > 200) & (rgb[..., 0] < 80) & (rgb[..., 2] < 80)
    assert green.sum() > 20  # the landmark dots on the face
    _stop_and_wait(qtbot, window)


def test_replay_draws_prediction_and_recorded_truth_with_pause_seek_and_speed(qtbot, window):
    window.source_box.setCurrentIndex(3)  # XDF recording
    window.xdf_edit.setText(str(DEMO_RECORDING))
    window.speed_box.setCurrentText("10x")
    window.start_session()
    qtbot.waitUntil(lambda: window.predictions >= 8, timeout=30_000)
    window.pause_button.setChecked(True)
    # the windows cut before the pause still come (under load the worker was 38 behind)
    paused_at = settled(
        lambda: window.predictions,
        quiet_s=0.5,
        timeout_s=20.0,
        wait=lambda s: qtbot.wait(int(s * 1000)),
    )
    qtbot.wait(800)
    assert window.predictions <= paused_at + 2  # paused: nothing new is cut
    slider = window.position_slider
    assert slider.maximum() > 600  # tenths of a second of a 90-s recording
    assert 0 < slider.value() < 500  # where it paused: early, before the seek to 60 s
    tx, _ = window.timeline.truth_lines[0].getData()
    assert tx is not None
    assert len(tx) > 0
    # Drag the position to 60 s while paused: the replay waits there.
    slider.setSliderDown(True)
    slider.setValue(600)
    slider.setSliderDown(False)  # released: the seek
    qtbot.waitUntil(lambda: window.position_label.text().startswith("60."), timeout=5_000)
    window.speed_box.setCurrentText("max")
    window.pause_button.setChecked(False)
    qtbot.waitUntil(lambda: window.start_button.isEnabled(), timeout=60_000)
    assert window.message.text() == ""
    clock_start = window.last_record.t_end - window.runner.position()[0]
    times = [t for t, _ in window.timeline.history]
    assert times[0] >= clock_start + 60.0  # after the jump, nothing from before it
    assert window.last_record.t_end - clock_start > 85.0  # then on to the end
    # before the pause (8, and up to the worker's queue of 64 under load) + the last 30 s
    # every 0.25 s (120): not all 360
    assert 100 < window.predictions < 200 + 64


def test_a_bad_model_file_is_a_message_in_the_window(qtbot, window, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    window.model_edit.setText(str(bad))
    window.start_session()
    qtbot.waitUntil(lambda: window.start_button.isEnabled(), timeout=20_000)
    assert str(bad) in window.message.text()
    assert "Traceback" not in window.message.text()


def test_the_model_picker_lists_personal_models_and_a_replay_shows_calibration(
    qtbot, tmp_path, monkeypatch
):
    """A personal model (made as ``streamer adapt`` makes them) is in the picker; a
    participant model counts down its calibration while the replay warms it up."""
    from helo.models.checkpoint import load_checkpoint, save_checkpoint
    from helo.ui.main_window import MainWindow

    folder = tmp_path / "personal"
    monkeypatch.setenv("HELO_PERSONAL_DIR", str(folder))
    demo = load_checkpoint(DEMO_CHECKPOINT)
    spec = demo.spec.with_normalisation("participant")
    provenance = {"personal": {"participant": "P07", "base_model": str(DEMO_CHECKPOINT)}}
    personal = save_checkpoint(folder / "P07-demo.safetensors", demo.model, spec, provenance)
    win = MainWindow(timeline_s=30.0)
    qtbot.addWidget(win)
    win.show()
    items = [win.personal.model_box.itemText(i) for i in range(win.personal.model_box.count())]
    assert str(personal) in items
    assert not win.personal.personal_button.isEnabled()  # no session, no labelled trials
    win.personal.model_box.setCurrentIndex(items.index(str(personal)))
    assert win.model_edit.text() == str(personal)
    win.source_box.setCurrentIndex(3)  # XDF recording
    win.xdf_edit.setText(str(DEMO_RECORDING))
    win.speed_box.setCurrentText("2x")
    win.start_session()
    qtbot.waitUntil(lambda: win.predictions >= 3, timeout=30_000)
    assert win.last_record.calibrating
    assert win.calibration_label.text().startswith("calibrating: ")
    assert win.calibration_label.text().endswith("left of 60 s")
    assert not win.personal.personal_button.isEnabled()  # a replay: no session to adapt
    _stop_and_wait(qtbot, win)


def test_a_missing_recording_is_a_message_in_the_window(qtbot, window, tmp_path):
    window.source_box.setCurrentIndex(3)
    window.xdf_edit.setText(str(tmp_path / "nowhere.xdf"))
    window.start_session()
    qtbot.waitUntil(lambda: window.start_button.isEnabled(), timeout=20_000)
    assert "nowhere.xdf" in window.message.text()


def test_cv2_plugin_path_is_dropped_but_a_users_own_path_is_kept(monkeypatch):
    import cv2

    cv2_dir = str(Path(cv2.__file__).parent / "qt" / "plugins")
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", cv2_dir)
    prepare_qt_environment()
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", "/opt/lab-qt/plugins")
    prepare_qt_environment()
    assert os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] == "/opt/lab-qt/plugins"


def test_source_choice_defaults_to_the_synthetic_device():
    assert SourceChoice().kind == "synthetic"
    assert DEMO_CHECKPOINT.exists()


def _streamer(args: list[str], env: dict, prelude: str = "") -> subprocess.CompletedProcess:
    """``streamer ARGS`` in a fresh interpreter, after ``prelude`` (imports to test)."""
    code = prelude + "import sys\nfrom streamer.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_streamer_run_gui_starts_the_session_at_once(tmp_path):
    stats = tmp_path / "stats.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    jsonl = tmp_path / "p.jsonl"  # a headless flag, honoured in the app too
    args = ["run", "--device", "synthetic", "--gui", "--quit-after", "9", "--stats", str(stats)]
    result = _streamer([*args, "--jsonl", str(jsonl)], env)
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    figures = json.loads(stats.read_text())
    assert figures["predictions"] > 5
    assert figures["error"] is None
    assert figures["traces"] == 8
    assert len(jsonl.read_text().splitlines()) >= figures["predictions"]


def test_streamer_replay_gui_takes_the_replay_flags(tmp_path):
    """The app replays with the command line's replay options: span, pace, output."""
    import json

    from helo.models.xdf import read_recording

    stats, out = tmp_path / "stats.json", tmp_path / "p.jsonl"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    args = ["replay", str(DEMO_RECORDING), "--gui", "--speed", "10", "--from", "60"]
    args += ["--output", str(out), "--quit-after", "6", "--stats", str(stats)]
    result = _streamer(args, env)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(stats.read_text())
    assert figures["error"] is None
    assert figures["predictions"] > 5
    start = min(float(s.times[0]) for s in read_recording(DEMO_RECORDING) if len(s.times))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) >= figures["predictions"]
    # the first window end from 60 s on, on the grid of the session the file recorded
    assert start + 60.0 - 1e-6 <= rows[0]["t_end_lsl"] < start + 60.25
    recorded = [
        s.times[0]
        for s in read_recording(DEMO_RECORDING)
        if s.description.type == "EmotionDistribution"
    ]
    hops = (rows[0]["t_end_lsl"] - recorded[0]) / 0.25
    assert abs(hops - round(hops)) < 1e-6


# ------------------------------------------------------------------ a real X server


def _free_display() -> int:
    for number in range(90, 140):
        if (
            not Path(f"/tmp/.X11-unix/X{number}").exists()
            and not Path(f"/tmp/.X{number}-lock").exists()
        ):
            return number
    raise RuntimeError("no free X display number")


@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.fail(
            "Xvfb is not installed: scripts/test.sh installs Debian's xvfb and Qt's xcb "
            "libraries when it can (apt-get as root)"
        )
    number = _free_display()
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None, "Xvfb exited"
        assert time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    yield f":{number}"
    server.terminate()
    server.wait(10)


def _colour_pixels(image: np.ndarray, hex_colour: str, tolerance: int = 12) -> np.ndarray:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(image[..., :3].astype(int) - rgb) <= tolerance).all(axis=-1)


def test_streamer_gui_under_xvfb_draws_bars_and_traces(xvfb, tmp_path):
    """The app as a user starts it, on a real X display, with cv2 imported first (the
    plugin-path clash), screenshot from the X server."""
    shot = tmp_path / "gui.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["DISPLAY"] = xvfb
    args = ["gui", "--start", "--quit-after", "12", "--screenshot", str(shot)]
    result = _streamer(args, env, prelude="import cv2\n")  # cv2 sets its Qt plugin path
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists(), result.stderr[-2000:]
    import matplotlib.image

    image = (matplotlib.image.imread(shot) * 255).astype(np.uint8)
    h, w = image.shape[:2]
    assert w >= 1000
    assert h >= 700
    from helo.ui.plots import PALETTE

    # Bars: the upper right quarter holds a solid block of every label's colour.
    bars = image[: h // 2, w // 3 :]
    for colour in PALETTE[:6]:
        assert _colour_pixels(bars, colour).sum() > 200, f"no bar drawn in {colour}"
    # Traces: the lowest third holds curve pixels (the plot background is white).
    traces = image[2 * h // 3 :, w // 2 :]
    coloured = ~(traces[..., :3] > 235).all(axis=-1) & ~(traces[..., :3] < 20).all(axis=-1)
    assert coloured.sum() > 2000

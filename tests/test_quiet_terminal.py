"""The terminal shows our lines only: native libraries' output goes to the log."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from helo.devices.face_video import face_image, write_video
from helo.devices.native_output import native_output_to_log

OUR_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR) helo\.[\w.]+: ")
PREDICTION_LINE = re.compile(r"^t=\d+\.\d\d  ")
QUICK = ("--resolve-timeout", "2")  # the webcam alone: do not wait long for EEG & co.


def test_native_writes_become_log_records_and_python_prints_stay(capfd, caplog):
    with caplog.at_level(logging.DEBUG, logger="helo.native"):
        with native_output_to_log(2, "lib"):
            os.write(2, b"W0000 00:00:17.1 some_graph.cc:181] chatter\n")
            os.write(2, b"E0000 00:00:17.2 some_graph.cc:9] it broke\n")
        with native_output_to_log(1, "recorder"):
            os.write(1, b"Opened the stream X.\n")
            print("t=1.00  ours", flush=True)
    out, err = capfd.readouterr()
    assert "chatter" not in err
    assert "Opened the stream" not in out
    assert "t=1.00  ours" in out  # Python's stdout keeps its terminal
    levels = {r.getMessage(): r.levelno for r in caplog.records if r.name == "helo.native"}
    assert levels == {
        "lib: W0000 00:00:17.1 some_graph.cc:181] chatter": logging.DEBUG,
        "lib: E0000 00:00:17.2 some_graph.cc:9] it broke": logging.WARNING,
        "recorder: Opened the stream X.": logging.DEBUG,
    }


def _streamer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}
    return subprocess.run(
        [sys.executable, "-m", "helo.streamer.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _foreign_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    err = [line for line in done.stderr.splitlines() if not OUR_LOG_LINE.match(line)]
    out = [line for line in done.stdout.splitlines() if not PREDICTION_LINE.match(line)]
    return err + out


def test_a_recorded_synthetic_session_prints_only_our_lines(tmp_path):
    done = _streamer(
        "run", "--device", "synthetic", "--duration", "3", "--record", "rec", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert _foreign_lines(done) == []  # no liblsl INFO, no LabRecorder progress
    assert "recording closed" in done.stderr
    assert any(PREDICTION_LINE.match(line) for line in done.stdout.splitlines())


def test_the_webcam_device_prints_only_our_lines_and_plays_the_video_to_the_session(tmp_path):
    video = write_video(tmp_path / "face.avi", face_image("astronaut"), n_frames=60, fps=30)
    done = _streamer(
        "run", "--device", "webcam", "--video", str(video), "--duration", "3", *QUICK, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert _foreign_lines(done) == []  # no MediaPipe/TensorFlow Lite glog lines
    # the video waits for the session, which looks for its other streams first
    assert re.search(r"HeLo-webcam-face: [1-9]\d* samples", done.stderr), done.stderr
    verbose = _streamer(
        "-v",
        "run",
        "--device",
        "webcam",
        "--video",
        str(video),
        "--duration",
        "1",
        *QUICK,
        cwd=tmp_path,
    )
    assert "helo.native: mediapipe:" in verbose.stderr  # -v shows what was hidden

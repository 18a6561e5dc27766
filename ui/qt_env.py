"""Make PySide6 find its own Qt plugins whatever was imported before it.

``import cv2`` (opencv-contrib-python, pulled in by mediapipe) points
``QT_QPA_PLATFORM_PLUGIN_PATH`` at the Qt plugins bundled inside cv2. PySide6
then loads the wrong ``libqxcb`` and the app dies on a real display ("could not
load the Qt platform plugin xcb"). Qt reads the variable when the application
object is created, so clearing it just before that is enough, in either import
order; an explicit path the user set to something else is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def _points_into_cv2(path: str) -> bool:
    return any(part.lower().startswith("cv2") for part in Path(path).parts)


def prepare_qt_environment() -> None:
    """Drop cv2's plugin paths from the environment (call before QApplication)."""
    for key in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_PLUGIN_PATH"):
        value = os.environ.get(key)
        if value and all(_points_into_cv2(p) for p in value.split(os.pathsep) if p):
            del os.environ[key]
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")


def application(argv: list[str] | None = None):
    """The one QApplication, created after the environment is put right."""
    prepare_qt_environment()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or ["streamer-gui"])
        app.setApplicationName("HeLo emotion monitor")
    return app

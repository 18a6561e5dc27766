"""The model picker and the personal model made from the running session.

The picker lists the demo model and every personal model in the personal models
folder (``streamer adapt`` and this panel write there), newest first; any other
checkpoint can be typed or browsed. After two or more labelled trials in a live
session (its EmotionLabels stream), "Make personal model" fine-tunes the session's
model on them off the GUI thread and the session goes on with it, without
reopening a stream or losing the participant's statistics.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets
from safetensors import safe_open

from helo.models.errors import HeloError
from helo.streamer.demo import personal_dir
from helo.ui.runner import SessionRunner


def personal_models(folder: Path | None = None) -> list[tuple[Path, str]]:
    """``(path, description)`` of the personal models in ``folder``, newest first."""
    folder = folder or personal_dir()
    found = []
    for path in sorted(folder.glob("*.safetensors"), key=lambda p: -p.stat().st_mtime):
        try:
            with safe_open(str(path), framework="pt") as handle:
                training = json.loads((handle.metadata() or {}).get("training", "{}"))
        except (OSError, ValueError, RuntimeError):
            continue  # not a checkpoint we can read: not listed
        personal = training.get("personal") or {}
        who = personal.get("participant", "?")
        base = Path(personal.get("base_model") or "model").stem
        found.append(
            (path, f"{who}: personal, from {base}, {len(personal.get('trials', []))} trials")
        )
    return found


class _Signals(QtCore.QObject):
    made = QtCore.Signal(str, str)  # path, summary line
    failed = QtCore.Signal(str)


class PersonalPanel(QtWidgets.QWidget):
    """Model picker (``model_edit`` is its text) and the personal model button."""

    def __init__(self, checkpoint: Path | None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.model_box = QtWidgets.QComboBox()
        self.model_box.setEditable(True)
        self.model_box.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.model_edit = QtWidgets.QLineEdit()
        self.model_box.setLineEdit(self.model_edit)
        self.model_edit.setPlaceholderText("the demo model (synthetic)")
        self.refresh_models()
        self.model_edit.setText(str(checkpoint or ""))
        browse = QtWidgets.QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.personal_button = QtWidgets.QPushButton("Make personal model")
        self.personal_button.setToolTip(
            "fine-tune the model on this session's labelled trials and go on with it"
        )
        self.personal_button.setEnabled(False)
        self.personal_button.clicked.connect(self.make_personal_model)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.model_box, 0, 0)
        layout.addWidget(browse, 0, 1)
        layout.addWidget(self.personal_button, 1, 0, 1, 2)
        layout.addWidget(self.status, 2, 0, 1, 2)
        self.runner: SessionRunner | None = None
        self._busy = False
        self._signals = _Signals()
        self._signals.made.connect(self._made)
        self._signals.failed.connect(self._failed)

    def refresh_models(self) -> None:
        text = self.model_edit.text()
        self.model_box.clear()
        self.model_box.addItem("")  # the demo model
        for path, description in personal_models():
            self.model_box.addItem(str(path))
            self.model_box.setItemData(
                self.model_box.count() - 1, description, QtCore.Qt.ItemDataRole.ToolTipRole
            )
        self.model_edit.setText(text)

    def labelled_trials(self) -> int:
        session = self.runner.session if self.runner is not None else None
        reader = session.label_reader if session is not None else None
        return sum(not s[2].baseline for s in reader.spans()) if reader is not None else 0

    def refresh(self, runner: SessionRunner | None) -> None:
        """Enable the button when the running live session has 2 or more labelled trials."""
        self.runner = runner
        running = runner is not None and runner.running and not runner.is_replay
        trials = self.labelled_trials() if running else 0
        self.personal_button.setEnabled(running and trials >= 2 and not self._busy)
        if running and not self._busy and not self.status.text().startswith("personal"):
            self.status.setText(f"{trials} labelled trial(s) in this session" if trials else "")

    def make_personal_model(self) -> None:
        runner = self.runner
        if runner is None or runner.session is None or self._busy:
            return
        from helo.streamer.personal_session import make_personal_model

        session = runner.session
        self._busy = True
        self.personal_button.setEnabled(False)
        self.status.setText("making the personal model ...")

        def work() -> None:
            try:
                path, result = make_personal_model(session)
            except HeloError as exc:
                self._signals.failed.emit(str(exc))
                return
            except Exception as exc:  # a bug: one line, the session goes on
                self._signals.failed.emit(f"personal model failed: {type(exc).__name__}: {exc}")
                return
            change = (
                f", KL {result.checked_on()} {result.kl_before:.3f} -> {result.kl_after:.3f}"
                if result.kl_before is not None and result.kl_after is not None
                else ""
            )
            self._signals.made.emit(
                str(path),
                f"personal model for {result.participant} from {len(result.trials)} trial(s) "
                f"in {result.seconds:.0f} s{change}; now predicting with it",
            )

        threading.Thread(target=work, name="personal-model", daemon=True).start()

    def _made(self, path: str, summary: str) -> None:
        self._busy = False
        self.refresh_models()
        self.model_edit.setText(path)
        self.status.setText(summary)

    def _failed(self, text: str) -> None:
        self._busy = False
        self.status.setText(text)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Model", "models", "HeLo checkpoint (*.safetensors)"
        )
        if path:
            self.model_edit.setText(path)

"""The main window: pick a source and a model, start, watch, record.

The window owns at most one :class:`ui.runner.SessionRunner`. Predictions come
from the runtime's worker thread through a Qt signal (queued onto the GUI
thread); everything else the window draws, it reads on a timer from the
session's ring buffers and health snapshots, so the GUI thread never waits for
the runtime, and the runtime never waits for drawing.

A group session (records with a ``participant``) adds the participant grid above
the plots, which then become the detail view of the participant selected in the
grid; a one-person session (participant ``""``) never shows the grid.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from helo.models.features.spec import FeatureSpec
from helo.models.streams import StreamDescription, describe_lsl
from helo.streamer.config import ReplayOptions, SessionConfig
from helo.streamer.worker import PredictionRecord
from helo.ui.group_view import GroupGrid, ParticipantHistory
from helo.ui.health import HealthTable
from helo.ui.personal import PersonalPanel
from helo.ui.plots import DistributionBars, SignalTraces, Timeline
from helo.ui.runner import SessionRunner, SourceChoice
from helo.ui.stream_map import StreamMapTable

SOURCE_TITLES = {
    "synthetic": "Synthetic device (simulated EEG, GSR, PPG, face)",
    "lsl": "LSL streams on the network",
    "webcam": "Webcam or video (face) + synthetic physiology",
    "xdf": "XDF recording (replay)",
}
SPEEDS = {"1x": 1.0, "2x": 2.0, "5x": 5.0, "10x": 10.0, "max": None}


class RuntimeBridge(QtCore.QObject):
    """Carries the runtime's callbacks (any thread) onto the GUI thread."""

    prediction = QtCore.Signal(object)
    error = QtCore.Signal(str)
    finished = QtCore.Signal()
    streams_found = QtCore.Signal(list)  # of StreamDescription
    model_inputs = QtCore.Signal(object)  # FeatureSpec of the chosen model, or an error line


class FrameStats:
    """Redraws per second, the longest gap between event-loop turns, and how many gaps
    were longer than ``STALL_MS`` (a soak's figure: one slow turn an hour is not a
    pattern, one a minute is)."""

    STALL_MS = 50.0

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.started = time.perf_counter()
        self.last_tick = self.started
        self.max_gap_ms = 0.0
        self.stalls = 0

    def tick(self) -> None:
        now = time.perf_counter()
        gap_ms = (now - self.last_tick) * 1e3
        self.max_gap_ms = max(self.max_gap_ms, gap_ms)
        self.stalls += gap_ms > self.STALL_MS
        self.last_tick = now

    def fps(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


class MainWindow(QtWidgets.QMainWindow):
    def __init__(
        self,
        source: SourceChoice | None = None,
        *,
        checkpoint: Path | None = None,
        record_dir: Path | None = None,
        timeline_s: float = 60.0,
        base_config: SessionConfig | None = None,
    ):
        super().__init__()
        self.base_config = base_config
        self.setWindowTitle("HeLo emotion monitor")
        self.resize(1400, 900)
        pg.setConfigOptions(antialias=False, background="w", foreground="k")
        self.runner: SessionRunner | None = None
        self.bridge = RuntimeBridge()
        self.bridge.prediction.connect(self._on_prediction)
        self.bridge.error.connect(self.show_error)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.streams_found.connect(self._show_streams)
        self.bridge.model_inputs.connect(self._show_model_inputs)
        self.predictions = 0
        self.last_record: PredictionRecord | None = None
        self.latencies_ms: list[float] = []
        self.stats = FrameStats()
        self._views_ready = False
        self.initial = source or SourceChoice()
        self._build_controls(self.initial, checkpoint, record_dir)
        self._build_views(timeline_s)
        self._redraw_timer = timer(self, 33, self.redraw)
        self._health_timer = timer(self, 500, self._refresh_health)
        self._loop_probe = timer(self, 10, self.stats.tick)
        self._loop_probe.start()

    # ------------------------------------------------------------------ layout

    def _build_controls(
        self, source: SourceChoice, checkpoint: Path | None, record_dir: Path | None
    ) -> None:
        """The session panel, docked on the left: source, replay, model and recording,
        start/stop, then what the session reports."""
        panel = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(panel)
        self._build_source_controls(form, source)
        self._build_replay_controls(form, source)
        self._build_session_controls(form, checkpoint, record_dir)
        self._build_report_controls(form)
        dock = QtWidgets.QDockWidget("Session", self)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        dock.setWidget(panel)
        dock.setMinimumWidth(430)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self._source_changed()

    def _build_source_controls(self, form: QtWidgets.QFormLayout, source: SourceChoice) -> None:
        self.source_box = QtWidgets.QComboBox()
        for key, title in SOURCE_TITLES.items():
            self.source_box.addItem(title, key)
        self.source_box.setCurrentIndex(list(SOURCE_TITLES).index(source.kind))
        self.source_box.currentIndexChanged.connect(self._source_changed)
        form.addRow("Source", self.source_box)

        self.discover_button = QtWidgets.QPushButton("Discover LSL streams")
        # not connect(self.discover_streams): Qt would pass `checked` (False) as wait_s
        self.discover_button.clicked.connect(lambda: self.discover_streams())
        self.discovered_label = QtWidgets.QLabel("")
        form.addRow(_row(self.discover_button, self.discovered_label))
        self.stream_map = StreamMapTable()
        self.stream_map.setMaximumHeight(150)
        self.stream_map.setToolTip("which stream feeds which input of the model")
        form.addRow(self.stream_map)

        video = source.devices.video
        self.camera_edit = QtWidgets.QLineEdit(str(video or source.devices.camera))
        self.camera_edit.setToolTip("camera index (0, 1, ...) or a video file")
        form.addRow("Camera / video", self.camera_edit)

    def _build_replay_controls(self, form: QtWidgets.QFormLayout, source: SourceChoice) -> None:
        xdf = source.replay.file if source.replay is not None else Path()
        self.xdf_edit = QtWidgets.QLineEdit("" if xdf == Path() else str(xdf))
        xdf_browse = QtWidgets.QPushButton("Browse...")
        xdf_browse.clicked.connect(self._browse_xdf)
        form.addRow("XDF file", _row(self.xdf_edit, xdf_browse))
        self.speed_box = QtWidgets.QComboBox()
        self.speed_box.addItems(list(SPEEDS))
        speed = source.replay.speed if source.replay is not None else 1.0
        speed_name = next((k for k, v in SPEEDS.items() if v == speed), "1x")
        self.speed_box.setCurrentText(speed_name)
        self.speed_box.currentTextChanged.connect(self._speed_changed)
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        form.addRow("Speed", _row(self.speed_box, self.pause_button))
        self.position_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.position_slider.setToolTip("drag (or click) to jump in the recording")
        self.position_slider.setPageStep(100)  # tenths of a second: 10 s a click
        self.position_slider.sliderReleased.connect(self._seek_to_slider)
        self.position_slider.actionTriggered.connect(self._slider_action)
        self.position_label = QtWidgets.QLabel("-")
        form.addRow("Position", _row(self.position_slider, self.position_label))

    def _build_session_controls(
        self, form: QtWidgets.QFormLayout, checkpoint: Path | None, record_dir: Path | None
    ) -> None:
        self.personal = PersonalPanel(checkpoint)
        self.model_edit = self.personal.model_edit
        form.addRow("Model", self.personal)

        self.record_box = QtWidgets.QCheckBox("Record to XDF in")
        self.record_box.setChecked(record_dir is not None)
        self.record_edit = QtWidgets.QLineEdit(str(record_dir or "recordings"))
        form.addRow(self.record_box, self.record_edit)

        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.clicked.connect(self.start_session)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_session)
        self.stop_button.setEnabled(False)
        form.addRow(_row(self.start_button, self.stop_button))

    def _build_report_controls(self, form: QtWidgets.QFormLayout) -> None:
        self.message = QtWidgets.QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00000; font-weight: bold")
        form.addRow(self.message)

        self.eeg_edit = QtWidgets.QLineEdit("")
        self.eeg_edit.setPlaceholderText("the first 3; or labels, e.g. Fz, Cz, Pz")
        self.eeg_edit.editingFinished.connect(self._eeg_channels_changed)
        form.addRow("EEG traces", self.eeg_edit)

        self.health_table = HealthTable()
        form.addRow(QtWidgets.QLabel("Streams"))
        form.addRow(self.health_table)
        self.latency_label = QtWidgets.QLabel("latency: -")
        form.addRow(self.latency_label)
        self.calibration_label = QtWidgets.QLabel("")
        self.calibration_label.setStyleSheet("color: #a05000; font-weight: bold")
        form.addRow(self.calibration_label)

    def _build_views(self, timeline_s: float) -> None:
        self.bars = DistributionBars()
        self.preview = QtWidgets.QLabel()
        self.preview.setFixedWidth(320)
        self.preview.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.preview.hide()
        top = _row(self.bars, self.preview)
        self.timeline = Timeline(timeline_s)
        self.traces = SignalTraces()
        # A group session: the participants above, the plots below show the selected one.
        self.group = GroupGrid()
        self.group.hide()
        self.group.selected.connect(self._show_participant)
        self.group_history = ParticipantHistory(timeline_s)
        self._group_mode = False
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        for widget, stretch in ((self.group, 4), (top, 3), (self.timeline, 2), (self.traces, 3)):
            splitter.addWidget(widget)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        self.views = splitter
        self.setCentralWidget(splitter)
        self.statusBar().showMessage("ready: pick a source and press Start")

    # ------------------------------------------------------------------ controls

    def _source_changed(self) -> None:
        kind = self.source_box.currentData()
        self.discover_button.setEnabled(kind in ("lsl", "webcam"))
        self.stream_map.setEnabled(kind in ("lsl", "webcam"))
        self.camera_edit.setEnabled(kind == "webcam")
        for widget in (self.xdf_edit, self.speed_box, self.pause_button, self.position_slider):
            widget.setEnabled(kind == "xdf")

    def _browse_xdf(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Recording", "recordings", "XDF (*.xdf *.xdfz)"
        )
        if path:
            self.xdf_edit.setText(path)

    def discover_streams(self, wait_s: float = 1.0) -> None:
        """Find the streams on the network and read the chosen model's inputs, in a
        thread: the GUI must not freeze for the second resolving takes."""
        import threading

        import pylsl

        from helo.models.checkpoint import load_checkpoint
        from helo.models.errors import HeloError
        from helo.streamer.demo import DEMO_CHECKPOINT

        self.discover_button.setEnabled(False)
        self.discovered_label.setText("looking ...")
        model = self.model_edit.text().strip()

        def work() -> None:
            try:
                spec: object = load_checkpoint(model or DEMO_CHECKPOINT).spec
            except HeloError as exc:
                spec = str(exc)
            self.bridge.model_inputs.emit(spec)
            infos = pylsl.resolve_streams(wait_time=wait_s)
            self.bridge.streams_found.emit([describe_lsl(i) for i in infos])

        threading.Thread(target=work, daemon=True).start()

    def _show_model_inputs(self, spec: object) -> None:
        if isinstance(spec, FeatureSpec):
            self.stream_map.set_spec(spec)
        else:
            self.show_error(str(spec))

    def _show_streams(self, found: list[StreamDescription]) -> None:
        self.stream_map.set_streams(found)
        self.discovered_label.setText(f"{len(found)} stream(s) found")
        self._source_changed()

    def _speed_changed(self, text: str) -> None:
        if self.runner is not None:
            self.runner.set_speed(SPEEDS[text])

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Play" if paused else "Pause")
        if self.runner is not None:
            self.runner.set_paused(paused)

    def _slider_action(self, action: int) -> None:
        if action != QtWidgets.QAbstractSlider.SliderAction.SliderMove.value:
            # clicks and keys: the slider takes its new value after this signal
            QtCore.QTimer.singleShot(0, self._seek_to_slider)

    def _seek_to_slider(self) -> None:
        self.seek(self.position_slider.value() / 10.0)

    def seek(self, seconds: float) -> None:
        """Replay: jump to ``seconds`` after the start of the recording."""
        if self.runner is not None and self.runner.running:
            self.runner.seek(seconds)
            self.timeline.restart()
            self.group_history.clear()

    def eeg_channels(self) -> int | list[str]:
        labels = [x.strip() for x in self.eeg_edit.text().split(",") if x.strip()]
        return labels or 3

    def _eeg_channels_changed(self) -> None:
        if self._views_ready and self.runner is not None:
            self.traces.set_traces(self.runner.traces, self.eeg_channels())

    def choice(self) -> SourceChoice:
        """The source as picked; what the panel does not show (faults, a replay's span,
        ...) comes from the choice the window was opened with."""
        initial = self.initial
        camera_text = self.camera_edit.text().strip() or "0"
        devices = dataclasses.replace(
            initial.devices,
            camera=int(camera_text) if camera_text.isdigit() else 0,
            video=None if camera_text.isdigit() else camera_text,
        )
        xdf = Path(self.xdf_edit.text().strip())
        speed = SPEEDS[self.speed_box.currentText()]
        replay = (
            dataclasses.replace(initial.replay, file=xdf, speed=speed)
            if initial.replay is not None
            else ReplayOptions(xdf, speed=speed)
        )
        return SourceChoice(
            kind=self.source_box.currentData(),
            devices=devices,
            replay=replay,
            streams={**initial.streams, **self.stream_map.overrides()},
        )

    # ------------------------------------------------------------------ session

    def start_session(self) -> None:
        if self.runner is not None and self.runner.running:
            return
        self.message.setText("")
        model = self.model_edit.text().strip()
        record = Path(self.record_edit.text().strip()) if self.record_box.isChecked() else None
        self.predictions, self.latencies_ms, self.last_record = 0, [], None
        self._leave_group_mode()
        self.runner = SessionRunner(
            self.choice(),
            checkpoint=Path(model) if model else None,
            record_dir=record,
            on_prediction=self.bridge.prediction.emit,
            on_error=self.bridge.error.emit,
            on_finished=self.bridge.finished.emit,
            base_config=self.base_config,
        ).start()
        self._views_ready = False
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.statusBar().showMessage("starting: finding the streams the model needs ...")
        self.stats.reset()
        self._redraw_timer.start()
        self._health_timer.start()

    def stop_session(self) -> None:
        if self.runner is None:
            return
        self.statusBar().showMessage("stopping ...")
        runner = self.runner
        runner.stop(timeout_s=0.0)  # ask; the finished signal comes when it has stopped

    def _on_finished(self) -> None:
        self._redraw_timer.stop()
        self._health_timer.stop()
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.statusBar().showMessage(f"stopped after {self.predictions} predictions")

    def show_error(self, text: str) -> None:
        self.message.setText(text)
        self.statusBar().showMessage("error: see the session panel")

    def _on_prediction(self, record: PredictionRecord) -> None:
        if not self._views_ready:
            self._prepare_views()
        self._adopt_labels(record.labels)
        self.predictions += 1
        self.last_record = record
        if record.latency_ms is not None:
            self.latencies_ms.append(record.latency_ms)
            if len(self.latencies_ms) > 20_000:  # a long session: the recent ones suffice
                del self.latencies_ms[:10_000]
        if record.participant:
            self._add_group_record(record)
            if record.participant != self.group.selected_participant:
                return  # on its tile only
        self._show_detail(record)
        self.timeline.add(record.t_end, record.distribution)

    def _show_detail(self, record: PredictionRecord) -> None:
        """The bars and the calibration line for ``record`` (a group: the selected
        participant's, named in the headline)."""
        note = "missing: " + ", ".join(record.missing) if record.missing else ""
        self.bars.show_distribution(record.distribution, note or "no modality present")
        if record.participant:
            self.bars.headline.setText(f"{record.participant}:  {self.bars.headline.text()}")
        self.calibration_label.setText(self._calibration_text(record))

    def _adopt_labels(self, labels: tuple[str, ...]) -> None:
        """Labels from the records when no session gave them (records fed directly)."""
        if tuple(labels) != self.bars.labels:
            self.bars.set_labels(labels)
            self.timeline.set_labels(labels)
            self.group.set_labels(labels)

    def _add_group_record(self, record: PredictionRecord) -> None:
        """Every record goes to the grid and the per-participant history; the first one
        shows the grid and selects its participant for the detail view."""
        if not self._group_mode:
            self._group_mode = True
            session = self.runner.session if self.runner is not None else None
            self.group.set_personal(set(session.personal) if session is not None else set())
            self.group.show()
            height = sum(self.views.sizes()) or self.views.height()
            self.views.setSizes([int(height * f) for f in (0.4, 0.2, 0.15, 0.25)])
        if self.group.selected_participant is None:
            self.group.select(record.participant)  # nothing to show yet: the caller shows it
        self.group.add(record)
        self.group_history.add(record)

    def _show_participant(self, participant: str) -> None:
        """A tile was clicked: the detail view switches to that participant, with the
        history kept for them (the timeline shows their last ``span_s`` seconds at once)."""
        self.timeline.restart()
        for t_end, values in self.group_history.of(participant):
            self.timeline.add(t_end, values)
        latest = self.group.latest(participant)
        if latest is not None:
            self._show_detail(latest)

    def _leave_group_mode(self) -> None:
        """A new session starts as a one-person one until a participant shows up."""
        self._group_mode = False
        self.group.hide()
        self.group.clear()
        self.group_history.clear()

    def _calibration_text(self, record: PredictionRecord) -> str:
        """A countdown while the participant's statistics (or the baseline) settle."""
        runner = self.runner
        session = runner.session if runner is not None else None
        normaliser = session.normaliser if session is not None else None
        if not record.calibrating or normaliser is None:
            return ""
        seen = normaliser.state(record.participant).seen
        left = max(0.0, normaliser.warmup_s - seen)
        what = "baseline (rest)" if normaliser.baseline_s >= normaliser.warmup_s else "calibrating"
        return f"{what}: {left:.0f} s left of {normaliser.warmup_s:.0f} s"

    def _prepare_views(self) -> None:
        runner = self.runner
        if runner is None or not runner.ready.is_set():
            return
        self.bars.set_labels(runner.labels)
        self.timeline.set_labels(runner.labels)
        self.group.set_labels(runner.labels)
        self.traces.set_traces(runner.traces, self.eeg_channels())
        self.preview.setVisible(runner.webcam is not None)
        self._views_ready = True
        self.stats.reset()  # building the plots is a one-off: measure the steady state
        self.statusBar().showMessage("running")

    # ------------------------------------------------------------------ drawing

    def redraw(self) -> None:
        if self._group_mode:
            self.group.redraw()
        runner = self.runner
        if runner is None:  # records fed without a session (tests, the group benchmark)
            if self.last_record is not None:
                self.timeline.redraw(self.last_record.t_end)
                self.stats.frames += 1
            return
        if not runner.ready.is_set():
            return
        if not self._views_ready:
            self._prepare_views()
        now = runner.now()
        who = self.group.selected_participant if self._group_mode else None
        self.timeline.redraw(now, runner.truth(now - self.timeline.span_s, now, who))
        self.traces.redraw(now)
        position = runner.position()
        if position is not None:
            played, total = max(0.0, position[0]), position[1]
            self.position_slider.setMaximum(int(total * 10))
            if not self.position_slider.isSliderDown():
                self.position_slider.setValue(int(played * 10))
            self.position_label.setText(f"{played:.1f} / {total:.1f} s")
        if runner.webcam is not None:
            self._draw_preview(runner.webcam.preview())
        self.stats.frames += 1

    def _draw_preview(self, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        h, w = frame.shape[:2]
        image = QtGui.QImage(frame.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
        self.preview.setPixmap(
            QtGui.QPixmap.fromImage(image).scaledToWidth(
                self.preview.width(), QtCore.Qt.TransformationMode.FastTransformation
            )
        )

    def _refresh_health(self) -> None:
        self.personal.refresh(self.runner)
        if self.runner is None:
            return
        self.health_table.show_health(self.runner.health())
        if self.latencies_ms:
            recent = np.asarray(self.latencies_ms[-200 * max(1, len(self.group.participants)) :])
            self.latency_label.setText(
                f"latency (newest sample -> prediction): p50 {np.median(recent):.1f} ms, "
                f"p99 {np.percentile(recent, 99):.1f} ms; redraw {self.stats.fps():.0f}/s, "
                f"longest GUI stall {self.stats.max_gap_ms:.0f} ms"
            )

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self.runner is not None:
            self.runner.stop()
        super().closeEvent(event)


def timer(parent: QtCore.QObject, interval_ms: int, slot: Callable[[], object]) -> QtCore.QTimer:
    """A repeating timer calling ``slot`` (not started)."""
    made = QtCore.QTimer(parent)
    made.setInterval(interval_ms)
    made.timeout.connect(slot)
    return made


def _row(*widgets: QtWidgets.QWidget) -> QtWidgets.QWidget:
    box = QtWidgets.QWidget()
    layout = QtWidgets.QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QtWidgets.QLineEdit) else 0)
    return box

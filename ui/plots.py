"""The plots of the main window: distribution bars, timeline, signal traces.

Each widget is fed plain numbers by the window (which owns the session) and
never touches the runtime itself, so that each can be tested with made-up data
and redraws cost only drawing. Colours are fixed per label, so that a label
keeps its colour between bars and timeline, and across sessions.
"""

from __future__ import annotations

import warnings
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

if TYPE_CHECKING:  # the plots get plain data; the type only names its fields
    from helo.ui.runner import Trace

# Colour-blind-safe (Okabe-Ito) first, then pyqtgraph's hues.
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"]


def label_colour(i: int) -> QtGui.QColor:
    if i < len(PALETTE):
        return QtGui.QColor(PALETTE[i])
    return pg.intColor(i, hues=12)


class DistributionBars(QtWidgets.QWidget):
    """One bar per emotion and, above them, the dominant emotions in large type."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.headline = QtWidgets.QLabel("no prediction yet")
        font = self.headline.font()
        font.setPointSize(26)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.plot = pg.PlotWidget()
        self.plot.setYRange(0.0, 1.0)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(y=True, alpha=0.3)
        self.bars: pg.BarGraphItem | None = None
        self.labels: tuple[str, ...] = ()
        self.values = np.zeros(0)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.plot, 1)

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self.labels = tuple(labels)
        self.values = np.zeros(len(labels))
        self.plot.clear()
        x = np.arange(len(labels))
        self.bars = pg.BarGraphItem(
            x=x,
            height=self.values,
            width=0.7,
            brushes=[label_colour(i) for i in range(len(labels))],
        )
        self.plot.addItem(self.bars)
        axis = self.plot.getAxis("bottom")
        axis.setTicks([list(zip(x.tolist(), labels, strict=True))])
        font = axis.label.font()
        font.setPointSize(13)
        axis.setStyle(tickFont=font)
        self.plot.setXRange(-0.6, len(labels) - 0.4)

    def show_distribution(self, values: np.ndarray | None, note: str = "") -> None:
        """``None``: no modality was present for this window; bars go empty, never stale."""
        if self.bars is None:
            return
        if values is None:
            self.values = np.zeros(len(self.labels))
            self.headline.setText(note or "no data for this window")
        else:
            self.values = np.asarray(values, dtype=float)
            top = np.argsort(self.values)[::-1][:2]
            self.headline.setText("   ".join(f"{self.labels[i]} {self.values[i]:.0%}" for i in top))
        self.bars.setOpts(height=self.values)


class Timeline(pg.PlotWidget):
    """The distribution over the last ``span_s`` seconds: a line per label (solid),
    and the true distribution (dashed) when the source publishes one."""

    def __init__(self, span_s: float = 60.0, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.span_s = span_s
        self.setYRange(0.0, 1.0)
        self.setXRange(-span_s, 0.0)
        self.setLabel("bottom", "seconds before now")
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.addLegend(offset=(5, 5))
        self.history: deque[tuple[float, np.ndarray]] = deque()
        self.lines: list[pg.PlotDataItem] = []
        self.truth_lines: list[pg.PlotDataItem] = []

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self.clear()
        self.history.clear()
        self.lines, self.truth_lines = [], []
        for i, label in enumerate(labels):
            colour = label_colour(i)
            self.lines.append(self.plot([], [], pen=pg.mkPen(colour, width=2.5), name=label))
            self.truth_lines.append(
                self.plot(
                    [], [], pen=pg.mkPen(colour, width=1.5, style=QtCore.Qt.PenStyle.DashLine)
                )
            )

    def restart(self) -> None:
        """Forget the history (a replay jumped elsewhere)."""
        self.history.clear()
        for line in self.lines:
            line.setData([], [])

    def add(self, t_end: float, values: np.ndarray | None) -> None:
        """Append a prediction; one earlier than the last starts the timeline afresh
        (predictions still in flight when a replay jumped back)."""
        if values is None:
            return
        if self.history and t_end <= self.history[-1][0]:
            self.restart()
        self.history.append((t_end, np.asarray(values, dtype=float)))

    def redraw(self, now: float, truth: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        while self.history and self.history[0][0] < now - self.span_s - 1.0:
            self.history.popleft()
        if self.history:
            times = np.fromiter((t for t, _ in self.history), float, len(self.history)) - now
            values = np.stack([v for _, v in self.history])
            for k, line in enumerate(self.lines):
                line.setData(times, values[:, k])
        if truth is not None and len(truth[0]):
            t_times, t_values = truth
            for k, line in enumerate(self.truth_lines[: t_values.shape[1]]):
                line.setData(t_times - now, t_values[:, k])


def pick_channels(names: list[str], wanted: int | list[str]) -> list[int]:
    """Indices of the wanted labels (case-insensitive; unknown ones ignored), or of the
    first ``wanted`` channels; never empty."""
    if isinstance(wanted, int):
        return list(range(max(1, min(wanted, len(names)))))
    lower = [name.lower() for name in names]
    chosen = [lower.index(w.lower()) for w in wanted if w.lower() in lower]
    return chosen or [0]


class SignalTraces(pg.GraphicsLayoutWidget):
    """Scrolling traces: a few EEG channels, GSR, PPG, the strongest face blendshapes."""

    def __init__(self, span_s: float = 10.0, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.span_s = span_s
        self.rows: list[tuple[pg.PlotItem, list[pg.PlotDataItem]]] = []
        self.sources: list[tuple[Trace, list[int], list[str]]] = []  # trace, channels, names

    def set_traces(
        self, traces: list[Trace], eeg_channels: int | list[str] = 3, face_top: int = 3
    ) -> None:
        """``traces``: :class:`ui.runner.Trace` objects; one row per modality.
        ``eeg_channels``: how many EEG channels (the first ones), or their labels."""
        self.clear()
        self.rows, self.sources = [], []
        for trace in traces:
            n = trace.buffer.n_channels
            labels = list(trace.channels) + [""] * (n - len(trace.channels))
            names = [label or f"ch{i}" for i, label in enumerate(labels[:n])]
            if trace.modality == "eeg":
                chosen = pick_channels(names, eeg_channels)
            elif trace.modality == "face":
                chosen = list(range(min(52, n)))  # the strongest are picked when drawn
            else:
                chosen = [0]
            plot = self.addPlot(row=len(self.rows), col=0)
            plot.setLabel("left", trace.modality)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setXRange(-self.span_s, 0.0)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            shown = face_top if trace.modality == "face" else len(chosen)
            curves = [
                plot.plot([], [], pen=pg.mkPen(label_colour(i), width=1)) for i in range(shown)
            ]
            self.rows.append((plot, curves))
            self.sources.append((trace, chosen, [names[c] for c in chosen]))

    @property
    def n_curves(self) -> int:
        return sum(len(curves) for _, curves in self.rows)

    def redraw(self, now: float) -> None:
        for (plot, curves), (trace, chosen, names) in zip(self.rows, self.sources, strict=True):
            times, data = trace.buffer.read_span(now - self.span_s, now + 1.0)
            if not len(times):
                continue
            t = times - now
            data = data[:, chosen]
            if trace.modality == "face":
                # The strongest blendshapes over the visible span: a stable choice, so
                # a curve does not jump from one blendshape to another every frame.
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    strength = np.nan_to_num(np.nanmean(data, axis=0), nan=-1.0)
                strength[[name.startswith("_") for name in names]] = -1.0  # _neutral
                order = np.argsort(strength)[::-1][: len(curves)]
                for curve, idx in zip(curves, order, strict=False):
                    curve.setData(t, data[:, idx])
                plot.setTitle(", ".join(names[i] for i in order[: len(curves)]), size="9pt")
            elif trace.modality == "eeg":
                offsets = np.nanstd(data, axis=0)
                spacing = 4.0 * float(np.nanmax(offsets)) if len(offsets) else 1.0
                for i, curve in enumerate(curves):
                    curve.setData(t, data[:, i] - np.nanmean(data[:, i]) + i * spacing)
            else:
                curves[0].setData(t, data[:, 0])

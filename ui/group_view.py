"""The group view: one tile per participant and, above the tiles, the group as a whole.

A tile shows whose it is, small bars of the participant's latest distribution, the
top emotion, a health colour (green: every modality present; amber: some modality
missing; red: no prediction, or no record for more than ``STALE_S`` seconds of
record time) and whether the participant is still calibrating. The band above
the tiles shows the mean distribution and the agreement (mean pairwise
Jensen-Shannon similarity, :func:`helo.streamer.group.group_state`).

Why one widget painted by hand: sixteen pyqtgraph plots cost tens of milliseconds a
frame; a tile here is a few rectangles and three lines of text. Records are only
stored when they arrive (``add``); ``redraw`` (on the window's frame timer) asks Qt
to repaint the tiles whose participant had news or whose health changed, and only
those, so a frame without news costs nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from helo.streamer.group import GroupState, group_state
from helo.streamer.worker import PredictionRecord
from helo.ui.plots import label_colour

STALE_S = 3.0  # record time without a record after which a participant counts as lost

OK, PARTIAL, LOST = "green", "amber", "red"
HEALTH_COLOURS = {OK: "#1a9641", PARTIAL: "#f0a30a", LOST: "#d7191c"}
CALIBRATING_COLOUR = "#a05000"  # the main window's calibration label
SELECTED_COLOUR = "#1f3fbf"

SUMMARY_H = 72  # pixels of the group band above the tiles
TILE_MIN_H = 64  # pixels: name, top emotion and bars still readable
TILE_HINT_H = 96
GAP = 4  # pixels between tiles
STRIPE_W = 7  # the health stripe on a tile's left edge


def grid_columns(n: int) -> int:
    """Columns for ``n`` tiles: a square-ish grid (16 -> 4 x 4, 3 -> 2 x 2)."""
    return max(1, math.ceil(math.sqrt(n)))


def tile_health(record: PredictionRecord | None, newest_t_end: float) -> str:
    """``"red"`` without a prediction or when the record is older than ``STALE_S`` s of
    record time (the newest record of anyone); ``"amber"`` with a modality missing;
    ``"green"`` otherwise."""
    if record is None or record.distribution is None:
        return LOST
    if newest_t_end - record.t_end > STALE_S:
        return LOST
    return PARTIAL if record.missing else OK


def top_text(record: PredictionRecord | None) -> str:
    """The line a tile shows under the name: the top emotion and its probability."""
    if record is None or record.distribution is None:
        return "no prediction"
    top = int(np.argmax(record.distribution))
    return f"{record.labels[top]} {float(record.distribution[top]):.0%}"


@dataclass
class ParticipantTile:
    """What one tile shows, and where it is in the widget."""

    name: str
    record: PredictionRecord | None = None
    health: str = LOST
    rect: QtCore.QRect = field(default_factory=QtCore.QRect)

    @property
    def top_text(self) -> str:
        return top_text(self.record)

    @property
    def calibrating(self) -> bool:
        return self.record is not None and self.record.calibrating


class GroupGrid(QtWidgets.QWidget):
    """Participant tiles in a grid, the group summary above them; a click selects a
    tile (``selected`` is emitted with the participant's name)."""

    selected = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.labels: tuple[str, ...] = ()
        self._colours: list[QtGui.QColor] = []
        self._tiles: dict[str, ParticipantTile] = {}
        self._order: list[str] = []  # participants sorted by name: the tiles' order
        self._pending: dict[str, PredictionRecord] = {}  # arrived since the last redraw
        self._newest_t_end = -math.inf
        self._selected: str | None = None
        self._personal: set[str] = set()  # participants predicted by their personal model
        self.summary: GroupState | None = None
        self._summary_rect = QtCore.QRect()
        self._fonts = _Fonts(self.font())
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding
        )
        self._relayout()

    # ------------------------------------------------------------------ the API

    def set_labels(self, labels: tuple[str, ...]) -> None:
        """The emotion labels, in the model's order: one bar each, in the app's colours."""
        self.labels = tuple(labels)
        self._colours = [label_colour(i) for i in range(len(self.labels))]
        self.update()

    def set_personal(self, participants: set[str]) -> None:
        """Those whose personal model the session runs: their tiles say so."""
        self._personal = set(participants)
        self.update()

    def title(self, participant: str) -> str:
        """What a tile's first line names: the participant, and a personal model."""
        return participant + (" (personal)" if participant in self._personal else "")

    def add(self, record: PredictionRecord) -> None:
        """Keep ``record`` for the next redraw (cheap: called for every record)."""
        if not self.labels:
            self.set_labels(record.labels)
        self._pending[record.participant] = record

    def clear(self) -> None:
        """Forget every participant (a new session)."""
        self._tiles.clear()
        self._personal.clear()
        self._order.clear()
        self._pending.clear()
        self._newest_t_end = -math.inf
        self._selected = None
        self.summary = None
        self._relayout()
        self.update()

    def select(self, participant: str) -> None:
        """Highlight ``participant``'s tile and emit ``selected`` (when it changes). A
        participant not seen yet is highlighted once its first record is drawn."""
        if participant == self._selected:
            return
        for name in (self._selected, participant):
            if name in self._tiles:
                self.update(self._tiles[name].rect)
        self._selected = participant
        self.selected.emit(participant)

    @property
    def selected_participant(self) -> str | None:
        return self._selected

    @property
    def participants(self) -> tuple[str, ...]:
        """The participants with a tile, in the tiles' order (by name)."""
        return tuple(self._order)

    def tile(self, participant: str) -> ParticipantTile:
        return self._tiles[participant]

    def tile_rect(self, participant: str) -> QtCore.QRect:
        """Where ``participant``'s tile is, in this widget's coordinates."""
        return QtCore.QRect(self._tiles[participant].rect)

    def latest(self, participant: str) -> PredictionRecord | None:
        """The newest record of ``participant``, drawn or not yet."""
        pending = self._pending.get(participant)
        if pending is not None:
            return pending
        tile = self._tiles.get(participant)
        return tile.record if tile is not None else None

    def redraw(self) -> list[str]:
        """Take the records stored since the last call and schedule a repaint of the
        tiles that changed (news, or a health that changed with time); returns their
        participants."""
        changed: set[str] = set()
        new_tiles = False
        for name, record in self._pending.items():
            if name not in self._tiles:
                self._tiles[name] = ParticipantTile(name)
                new_tiles = True
            self._tiles[name].record = record
            self._newest_t_end = max(self._newest_t_end, record.t_end)
            changed.add(name)
        self._pending.clear()
        for name, tile in self._tiles.items():
            health = tile_health(tile.record, self._newest_t_end)
            if health != tile.health:
                tile.health = health
                changed.add(name)
        if new_tiles:
            self._order = sorted(self._tiles)
            self._relayout()
            self.update()
        if changed:
            self.summary = self._group_state()
            if not new_tiles:
                self.update(self._summary_rect)
                for name in changed:
                    self.update(self._tiles[name].rect)
        return sorted(changed)

    # ------------------------------------------------------------------ state

    def _group_state(self) -> GroupState:
        """The group from each participant's latest prediction; a participant lost for
        more than ``STALE_S`` s counts as without one."""
        distributions = [
            None if tile.health == LOST or tile.record is None else tile.record.distribution
            for tile in self._tiles.values()
        ]
        return group_state(self._newest_t_end, distributions)

    def _relayout(self) -> None:
        n = len(self._order)
        columns = grid_columns(n)
        rows = math.ceil(n / columns) if n else 0
        self.setMinimumHeight(SUMMARY_H + rows * TILE_MIN_H)
        self.updateGeometry()
        width = self.width()
        self._summary_rect = QtCore.QRect(0, 0, width, SUMMARY_H - GAP)
        if not n:
            return
        tile_w = (width - GAP * (columns - 1)) / columns
        tile_h = (self.height() - SUMMARY_H - GAP * (rows - 1)) / rows
        for i, name in enumerate(self._order):
            row, col = divmod(i, columns)
            x = round(col * (tile_w + GAP))
            y = round(SUMMARY_H + row * (tile_h + GAP))
            self._tiles[name].rect = QtCore.QRect(
                x, y, max(1, round(tile_w)), max(1, round(tile_h))
            )

    def sizeHint(self) -> QtCore.QSize:
        n = len(self._order)
        rows = math.ceil(n / grid_columns(n)) if n else 0
        return QtCore.QSize(800, SUMMARY_H + rows * TILE_HINT_H)

    # ------------------------------------------------------------------ Qt events

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        self._relayout()
        super().resizeEvent(event)

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        point = event.position().toPoint()
        for name in self._order:
            if self._tiles[name].rect.contains(point):
                self.select(name)
                return
        super().mousePressEvent(event)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        region = event.region()
        painter = QtGui.QPainter(self)
        try:
            if region.intersects(self._summary_rect):
                self._paint_summary(painter, self._summary_rect)
            for name in self._order:
                tile = self._tiles[name]
                if region.intersects(tile.rect):
                    self._paint_tile(painter, tile)
        finally:
            painter.end()

    # ------------------------------------------------------------------ painting

    def _paint_summary(self, painter: QtGui.QPainter, rect: QtCore.QRect) -> None:
        painter.fillRect(rect, QtGui.QColor("#f2f2f2"))
        state = self.summary
        text_w = min(300, rect.width() // 3)
        lines = ["group: no prediction yet", ""]
        if state is not None:
            agreement = "-" if state.agreement is None else f"{state.agreement:.2f}"
            lines = [
                f"group: {state.predicted} / {len(self._order)} predicted",
                f"agreement (JS similarity) {agreement}",
            ]
        painter.setPen(QtGui.QColor("#202020"))
        painter.setFont(self._fonts.name)
        line_h = rect.height() // 2
        for i, line in enumerate(lines):
            box = QtCore.QRect(rect.left() + 8, rect.top() + 4 + i * (line_h - 4), text_w, line_h)
            painter.drawText(box, _LEFT_MIDDLE, line)
        bars = QtCore.QRect(rect.left() + text_w + 16, rect.top() + 4, 0, rect.height() - 8)
        bars.setRight(rect.right() - 8)
        mean = None if state is None else state.mean
        self._paint_bars(painter, bars, mean, with_labels=True)

    def _paint_tile(self, painter: QtGui.QPainter, tile: ParticipantTile) -> None:
        rect = tile.rect
        chosen = tile.name == self._selected
        painter.fillRect(rect, QtGui.QColor("#eef2ff" if chosen else "#fafafa"))
        painter.fillRect(
            QtCore.QRect(rect.left(), rect.top(), STRIPE_W, rect.height()),
            QtGui.QColor(HEALTH_COLOURS[tile.health]),
        )
        if chosen:
            pen = QtGui.QPen(QtGui.QColor(SELECTED_COLOUR), 3)
        else:
            pen = QtGui.QPen(QtGui.QColor("#c8c8c8"), 1)
        painter.setPen(pen)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        painter.drawRect(rect.adjusted(1, 1, -2, -2))
        inner = rect.adjusted(STRIPE_W + 5, 3, -5, -4)
        line_h = self._fonts.line_h
        head = QtCore.QRect(inner.left(), inner.top(), inner.width(), line_h)
        painter.setFont(self._fonts.name)
        painter.setPen(QtGui.QColor("#202020"))
        painter.drawText(head, _LEFT_MIDDLE, self.title(tile.name))
        state = self._tile_state(tile)
        if state:
            painter.setFont(self._fonts.small)
            colour = CALIBRATING_COLOUR if state == "calibrating" else HEALTH_COLOURS[LOST]
            painter.setPen(QtGui.QColor(colour))
            painter.drawText(head, _RIGHT_MIDDLE, state)
        painter.setFont(self._fonts.text)
        painter.setPen(QtGui.QColor("#202020"))
        top = QtCore.QRect(inner.left(), head.bottom() + 1, inner.width(), line_h)
        painter.drawText(top, _LEFT_MIDDLE, tile.top_text)
        bars = QtCore.QRect(inner.left(), top.bottom() + 3, inner.width(), 0)
        bars.setBottom(inner.bottom())
        record = tile.record
        self._paint_bars(painter, bars, None if record is None else record.distribution)

    def _tile_state(self, tile: ParticipantTile) -> str:
        """The note on the right of a tile's name: lost, or still calibrating."""
        record = tile.record
        if record is not None and self._newest_t_end - record.t_end > STALE_S:
            return f"no record > {STALE_S:.0f} s"
        return "calibrating" if tile.calibrating else ""

    def _paint_bars(
        self,
        painter: QtGui.QPainter,
        rect: QtCore.QRect,
        values: np.ndarray | None,
        *,
        with_labels: bool = False,
    ) -> None:
        """One bar per label in its colour, full height = probability 1."""
        k = len(self.labels)
        if k == 0 or rect.height() < 4 or rect.width() < k:
            return
        label_h = self._fonts.small_h if with_labels else 0
        plot_h = rect.height() - label_h
        slot = rect.width() / k
        bar_w = max(1, round(slot * 0.7))
        baseline = rect.top() + plot_h
        painter.setPen(QtGui.QColor("#b0b0b0"))
        painter.drawLine(rect.left(), baseline, rect.right(), baseline)
        if with_labels:
            painter.setFont(self._fonts.small)
        for i in range(k):
            x = round(rect.left() + i * slot + (slot - bar_w) / 2)
            if values is not None:
                h = round(float(np.clip(values[i], 0.0, 1.0)) * (plot_h - 1))
                if h > 0:
                    painter.fillRect(QtCore.QRect(x, baseline - h, bar_w, h), self._colours[i])
            if with_labels:
                painter.setPen(QtGui.QColor("#404040"))
                box = QtCore.QRect(
                    round(rect.left() + i * slot), baseline + 1, round(slot), label_h
                )
                text = self.labels[i]
                if values is not None:
                    text += f" {float(values[i]):.0%}"
                painter.drawText(box, _CENTRE, text)


class ParticipantHistory:
    """The last ``span_s`` seconds of every participant's predictions, so the detail
    timeline can show a participant's recent past as soon as their tile is clicked."""

    def __init__(self, span_s: float):
        self.span_s = span_s
        self._history: dict[str, deque[tuple[float, np.ndarray | None]]] = {}

    def add(self, record: PredictionRecord) -> None:
        """Append; a record earlier than the participant's last starts their history
        afresh (a replay jumped back)."""
        history = self._history.setdefault(record.participant, deque())
        if history and record.t_end <= history[-1][0]:
            history.clear()
        history.append((record.t_end, record.distribution))
        while history[0][0] < record.t_end - self.span_s - 1.0:
            history.popleft()

    def of(self, participant: str) -> list[tuple[float, np.ndarray | None]]:
        return list(self._history.get(participant, ()))

    def clear(self) -> None:
        self._history.clear()


class _Fonts:
    """The fonts of the tiles, made once (a QFont per paint is measurable at 16 tiles)."""

    def __init__(self, base: QtGui.QFont):
        self.name = QtGui.QFont(base)
        self.name.setBold(True)
        self.text = QtGui.QFont(base)
        self.small = QtGui.QFont(base)
        self.small.setPointSizeF(max(6.0, base.pointSizeF() * 0.85))
        self.line_h = QtGui.QFontMetrics(self.name).height()
        self.small_h = QtGui.QFontMetrics(self.small).height()


_LEFT_MIDDLE = QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter
_RIGHT_MIDDLE = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
_CENTRE = QtCore.Qt.AlignmentFlag.AlignCenter

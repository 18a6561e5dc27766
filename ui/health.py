"""The stream health panel: one row per stream, coloured when something is wrong."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from helo.streamer.lsl_reader import StreamHealth

COLUMNS = (
    "stream",
    "type",
    "rate (Hz)",
    "newest (s)",
    "gaps",
    "drift (ms/min)",
    "adapted",
    "status",
)
OK_COLOUR = QtGui.QColor("#d9f2d9")
PROBLEM_COLOUR = QtGui.QColor("#f8c8c8")


def health_cells(h: StreamHealth) -> list[str]:
    age = "-" if h.newest_age_s is None else f"{h.newest_age_s:.2f}"
    drift = "-" if h.drift_ms_per_min is None else f"{h.drift_ms_per_min:+.2f}"
    nominal = "irregular" if h.nominal_srate_hz <= 0 else f"{h.nominal_srate_hz:g}"
    rate = f"{h.effective_srate_hz:.1f} / {nominal}"
    adapted = "; ".join(h.adapted) or "-"
    status = "; ".join(h.problems()) or "ok"
    return [h.name, h.type, rate, age, str(h.gaps), drift, adapted, status]


class HealthTable(QtWidgets.QTableWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setStretchLastSection(True)

    def show_health(self, health: list[StreamHealth]) -> None:
        self.setRowCount(len(health))
        for row, h in enumerate(health):
            colour = PROBLEM_COLOUR if h.problems() else OK_COLOUR
            for col, text in enumerate(health_cells(h)):
                item = self.item(row, col)
                if item is None:
                    item = QtWidgets.QTableWidgetItem()
                    self.setItem(row, col, item)
                item.setText(text)
                item.setBackground(colour)
        self.resizeColumnsToContents()

"""Which LSL stream feeds which input of the model: picked from the discovered streams.

A lab network often carries more than one stream of a type (two EEG amplifiers, a
test outlet left running), and then matching by type alone is ambiguous. The
table lists the model's inputs, one row each with what the checkpoint's spec
needs, and lets the researcher pick the stream for it from those discovered;
"automatic" keeps the runtime's own matching by type. A pick becomes a stream
override of the session (the same as ``--stream eeg=SOURCE_ID``), by source_id
when the outlet has one, since names are not unique across machines.
"""

from __future__ import annotations

from PySide6 import QtWidgets

from helo.models.features.mapping import describe_need
from helo.models.features.spec import FeatureSpec
from helo.models.streams import StreamDescription

AUTOMATIC = ""


def _describe(stream: StreamDescription) -> str:
    """The stream as a line of the picker: names repeat across machines, so the host too."""
    host = f" on {stream.hostname}" if stream.hostname else ""
    return stream.describe() + host


class StreamMapTable(QtWidgets.QTableWidget):
    """One row per model input: what it needs, and a choice of stream."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["Model input", "Stream"])
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().hide()
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.spec: FeatureSpec | None = None
        self.found: list[StreamDescription] = []

    def set_spec(self, spec: FeatureSpec) -> None:
        """The model's inputs; the picks of inputs it still has are kept."""
        kept = self.overrides()
        self.spec = spec
        self.setRowCount(len(spec.modalities))
        for row, mod in enumerate(spec.modalities):
            need = QtWidgets.QTableWidgetItem(mod.name)
            need.setToolTip(f"needs {describe_need(mod)}")
            self.setItem(row, 0, need)
            self.setCellWidget(row, 1, QtWidgets.QComboBox())
        self._fill(kept)

    def set_streams(self, found: list[StreamDescription]) -> None:
        """The streams discovery found; picks of streams still there are kept."""
        kept = self.overrides()
        self.found = sorted(found, key=lambda s: (s.type.lower(), s.name.lower()))
        self._fill(kept)

    def _fill(self, kept: dict[str, str]) -> None:
        if self.spec is None:
            return
        for row, mod in enumerate(self.spec.modalities):
            box = self._box(row)
            box.clear()
            box.addItem(f"automatic (type {mod.stream_type})", AUTOMATIC)
            same_type = [s for s in self.found if s.type.lower() == mod.stream_type.lower()]
            others = [s for s in self.found if s not in same_type]
            for stream in same_type + others:  # the likely ones first
                box.addItem(_describe(stream), stream.key)
            index = box.findData(kept.get(mod.name, AUTOMATIC))
            box.setCurrentIndex(max(index, 0))
        self.resizeColumnToContents(0)

    def choose(self, modality: str, key: str) -> None:
        """Pick the stream ``key`` (source_id or name) for ``modality``."""
        box = self._box(self._row(modality))
        index = box.findData(key)
        if index < 0:
            raise KeyError(f"no discovered stream {key!r}")
        box.setCurrentIndex(index)

    def overrides(self) -> dict[str, str]:
        """Modality -> stream key for every input not left automatic."""
        if self.spec is None:
            return {}
        picks = {}
        for row, mod in enumerate(self.spec.modalities):
            box = self._box(row)
            if box.currentData():
                picks[mod.name] = box.currentData()
        return picks

    def _box(self, row: int) -> QtWidgets.QComboBox:
        """The stream picker of a row (set_spec puts one in each)."""
        box = self.cellWidget(row, 1)
        assert isinstance(box, QtWidgets.QComboBox)
        return box

    def _row(self, modality: str) -> int:
        names = [mod.name for mod in self.spec.modalities] if self.spec else []
        if modality not in names:
            raise KeyError(f"the model has no input {modality!r}")
        return names.index(modality)

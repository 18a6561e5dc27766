"""The desktop application (PySide6 + pyqtgraph) over the streaming runtime."""

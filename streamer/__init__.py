"""The HeLo streaming runtime and the ``streamer`` command line."""

__version__ = "0.1.0"

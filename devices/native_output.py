"""What native libraries print goes to our log, not to the user's terminal.

liblsl, MediaPipe (through absl/glog and TensorFlow Lite) and the LabRecorder
bindings write start-up and progress lines straight to the process's file
descriptors 1 and 2, past Python's logging; environment variables such as
``GLOG_minloglevel`` do not reach MediaPipe's bundled absl. So:

* liblsl reads its log level from ``lsl_api.cfg``: :func:`quiet_liblsl` points
  ``LSLAPICFG`` at a generated file with ``[log] level = -2`` (errors only), unless
  the lab has its own configuration, which is then left untouched. Every copy of
  liblsl in the process reads it (pylsl's and the one inside ``labrecorder``).
* For the others, :func:`native_output_to_log` swaps a descriptor for a pipe while
  the noisy call runs and, when it is over, logs each line on the ``helo.native``
  logger: at DEBUG (shown with ``streamer -v``), or at WARNING when the line reads as
  an error. Logged afterwards, not as they come: a log handler that writes to the
  captured descriptor would otherwise feed its own pipe.
  Python's own writes keep going to the terminal: the command line logs to a
  duplicate of stderr (:func:`terminal_stream`) and ``sys.stdout`` is re-pointed
  for the span.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

log = logging.getLogger("helo.native")

LIBLSL_QUIET_LEVEL = -2  # liblsl/loguru: -3 off, -2 errors, -1 warnings, 0 info
_ERROR_LINE = re.compile(r"^(?:[EF]\d{4} |ERROR|FATAL|Error|terminate called)")
MAX_LINES = 1000  # kept per capture: native chatter, not a data channel
_locks = {1: threading.Lock(), 2: threading.Lock()}


def liblsl_config_in_use() -> Path | None:
    """The ``lsl_api.cfg`` liblsl would read, in its own search order, if any."""
    candidates = [os.environ.get("LSLAPICFG", ""), "lsl_api.cfg"]
    candidates += [str(Path.home() / "lsl_api" / "lsl_api.cfg"), "/etc/lsl_api/lsl_api.cfg"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def quiet_liblsl() -> Path | None:
    """Make liblsl log errors only; returns the generated configuration, or None when
    the lab's own ``lsl_api.cfg`` decides. Call before liblsl is first used."""
    if liblsl_config_in_use() is not None:
        return None
    folder = Path(tempfile.gettempdir()) / f"helo-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(exist_ok=True)
    path = folder / "lsl_api.cfg"
    path.write_text(f"[log]\nlevel = {LIBLSL_QUIET_LEVEL}\n")
    os.environ["LSLAPICFG"] = str(path)
    return path


def terminal_stream() -> TextIO:
    """A line-buffered text stream on a duplicate of stderr: Python's log lines written
    to it reach the terminal even while descriptor 2 is lent to a pipe."""
    try:
        return os.fdopen(os.dup(2), "w", buffering=1)
    except OSError:  # no stderr (a service without one): nothing to protect
        return sys.stderr


def _writes_to(stream: TextIO, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (OSError, ValueError, AttributeError):  # a test's capture, a closed stream
        return False


def _collect(reader: TextIO, lines: list[str]) -> None:
    for line in reader:
        if line.strip() and len(lines) < MAX_LINES:
            lines.append(line.rstrip())


def _log_lines(lines: list[str], name: str) -> None:
    for line in lines:
        level = logging.WARNING if _ERROR_LINE.match(line) else logging.DEBUG
        log.log(level, "%s: %s", name, line)


@contextlib.contextmanager
def native_output_to_log(fd: int, name: str) -> Iterator[None]:
    """Lines native code writes to ``fd`` (1 or 2) while the block runs are logged on
    ``helo.native`` as ``name: line``. Nested or concurrent uses of one descriptor let
    the first one capture; ``sys.stdout`` keeps writing to the real stdout."""
    lock = _locks[fd]
    if not lock.acquire(blocking=False):
        yield
        return
    try:
        try:
            (sys.stdout if fd == 1 else sys.stderr).flush()
            saved = os.dup(fd)
            read_end, write_end = os.pipe()
        except (OSError, ValueError):  # no such descriptor: nothing to capture
            yield
            return
        reader = os.fdopen(read_end, "r", errors="replace")
        lines: list[str] = []
        collector = threading.Thread(target=_collect, args=(reader, lines), daemon=True)
        collector.start()
        original_stdout = sys.stdout
        repoint = fd == 1 and _writes_to(original_stdout, 1)
        os.dup2(write_end, fd)
        os.close(write_end)
        if repoint:
            sys.stdout = os.fdopen(os.dup(saved), "w", buffering=1)
        try:
            yield
        finally:
            if repoint:
                sys.stdout.flush()
                sys.stdout.close()
                sys.stdout = original_stdout
            os.dup2(saved, fd)  # closes the pipe's last write end: the collector ends
            os.close(saved)
            collector.join(timeout=2.0)
            reader.close()
            _log_lines(list(lines), name)
    finally:
        lock.release()

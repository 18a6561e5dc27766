"""Process-wide settings, made once at program start by the command line (never by a
constructor: a library user's process, the app included, keeps its own).

- Inference (``run``, ``replay``, ``gui``, ``bench``): torch runs one thread per
  operation, because HeLo's many small operations scale better across windows (the
  predictor's chunks in parallel threads) than inside one; and glibc's allocator keeps
  freed blocks in the heap: above its mmap threshold it returns them straight to the
  kernel, so every batch re-allocated its activation tensors through fresh,
  page-faulting mmaps. Measured here: +10-20 % batched HeLo throughput. Harmless
  where it does not apply (not glibc): nothing happens.
- Training (``train``, ``evaluate``, ``report``): torch's threads, all cores unless
  the training config says otherwise.
- A live session, once open (:func:`settled_heap`): what is alive then (modules, the
  model, readers, buffers; some 200,000 objects) lives as long as the session, so it
  is moved out of the garbage collector's sight. Each full collection walked all of
  them with the interpreter locked, 70-90 ms every 15-20 s, which every participant's
  predictions of that hop waited for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

INFERENCE_COMMANDS = ("run", "replay", "gui", "bench")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator(threshold_bytes: int = 256 << 20) -> bool:
    """Keep allocations below ``threshold_bytes`` in the heap (once per process)."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * threshold_bytes)
    )
    _done = ok
    log.debug("malloc thresholds %s", "set" if ok else "unchanged")
    return ok


def configure_for_inference() -> None:
    """One torch thread per operation, and the allocator kept warm (see the module)."""
    import torch

    torch.set_num_threads(1)
    tune_allocator()


def configure_for_training(threads: int | None) -> None:
    """Torch's thread count for training: ``threads``, else every core."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


@contextmanager
def settled_heap() -> Iterator[None]:
    """Inside the block, what was alive at its start is out of the garbage collector's
    sight (``gc.freeze``, after one collection): collections walk only newer objects.
    For a live session once it is open (see the module). On leaving, it is handed back
    (``gc.unfreeze``): a closed session's readers and buffers hold reference cycles that
    only the collector frees, and an app starts and stops many sessions."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def rss_mb() -> float:
    """Resident set size of this process now (Linux /proc; elsewhere the peak), for the
    memory figures of benchmarks and soaks."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def anon_mb() -> float:
    """Anonymous resident memory (the heap: what the process needs, without the pages of
    mapped files, which the kernel drops and reads again at will); Linux, else the RSS."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return rss_mb()

"""Process-level settings that make CPU inference faster.

glibc returns freed blocks above its mmap threshold straight to the kernel, so
every batch re-allocates its activation tensors through fresh, page-faulting
mmaps; pinning the threshold (and the trim threshold) keeps that memory in the
heap for reuse. Measured here: +10-20 % batched HeLo throughput. Harmless where
it does not apply (not glibc): nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import resource

log = logging.getLogger(__name__)

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


def rss_mb() -> float:
    """Resident set size of this process now (Linux /proc; elsewhere the peak), for the
    memory figures of benchmarks and soaks."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3

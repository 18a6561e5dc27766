"""Process-wide settings: the frozen heap of a live session is handed back after it."""

from __future__ import annotations

import gc
import weakref

from helo.streamer.process import settled_heap


class _Node:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_settled_heap_is_frozen_inside_and_collectable_after():
    node = _Node()
    alive = weakref.ref(node)
    with settled_heap():
        assert gc.get_freeze_count() > 0
        del node  # a closed session's cycle: unreachable, but frozen
        gc.collect()
        assert alive() is not None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None

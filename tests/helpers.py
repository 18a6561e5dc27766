"""Helpers shared by the runtime tests."""

from __future__ import annotations

import time
from collections.abc import Callable

HOP_S = 0.25


def settled(
    count: Callable[[], int],
    quiet_s: float = 0.3,
    timeout_s: float = 5.0,
    wait: Callable[[float], None] = time.sleep,
) -> int:
    """``count()`` once it has not changed for ``quiet_s`` (at most ``timeout_s``): what
    was sent or queued before a test's action has all come (under CI's load a chunk came
    after the count was read). ``wait`` sleeps between looks (a Qt test passes
    ``qtbot.wait``-like so that the event loop keeps running)."""
    value, since = count(), time.monotonic()
    deadline = since + timeout_s
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        wait(0.05)
        now = count()
        if now != value:
            value, since = now, time.monotonic()
    return value


def session_config(device, **kwargs):
    """A quiet session on exactly the streams of ``device`` (a SyntheticDevice)."""
    from helo.streamer.config import SessionConfig

    streams = {m: f"{device.source_prefix}-{m}" for m in device.modalities}
    return SessionConfig(
        streams=streams, stdout=False, hop_s=HOP_S, resolve_timeout_s=5.0, **kwargs
    )


def read_prediction_outlet(session) -> list[str]:
    import pylsl

    source_id = session.lsl_sink.info.source_id()
    info = pylsl.resolve_byprop("source_id", source_id, timeout=5.0)[0]
    inlet = pylsl.StreamInlet(info)
    full = inlet.info(timeout=5.0)
    labels = []
    channel = full.desc().child("channels").child("channel")
    while not channel.empty():
        labels.append(channel.child_value("label"))
        channel = channel.next_sibling("channel")
    assert full.type() == "EmotionDistribution"
    return labels

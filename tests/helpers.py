"""Helpers shared by the runtime tests."""

from __future__ import annotations

HOP_S = 0.25


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

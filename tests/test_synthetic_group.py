"""A synthetic group on LSL: every participant's own streams, named and described as
theirs, one shared script felt a little differently by each, and its start options."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pylsl
import pytest

from helo.devices.start import DeviceOptions, start_devices
from helo.devices.synthetic import synthetic_stream_info, truth_stream_info
from helo.devices.synthetic_group import SyntheticGroup
from helo.models.datasets.synthetic import SYNTHETIC_STREAMS, SyntheticSession
from helo.models.errors import HeloError
from helo.models.streams import LABELS_TYPE, TRUTH_TYPE

STREAM_TYPES = {m: spec.stream_type for m, spec in SYNTHETIC_STREAMS.items()}
STREAM_TYPES.update(truth=TRUTH_TYPE, labels=LABELS_TYPE)


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def _resolve(source_id: str) -> pylsl.StreamInfo:
    found = pylsl.resolve_byprop("source_id", source_id, 1, 5.0)
    assert found, f"no stream with source_id {source_id!r} on LSL"
    return found[0]


def _pull(inlet: pylsl.StreamInlet, n: int) -> tuple[np.ndarray, np.ndarray]:
    samples: list = []
    stamps: list = []
    deadline = time.monotonic() + 10.0
    while len(samples) < n and time.monotonic() < deadline:
        chunk, ts = inlet.pull_chunk(timeout=0.5)
        samples += chunk
        stamps += ts
    assert len(samples) >= n, f"got {len(samples)} of {n} samples"
    return np.array(samples[:n]), np.array(stamps[:n])


def test_every_participant_publishes_its_own_streams_named_and_described_as_theirs():
    prefix = _prefix()
    with SyntheticGroup(3, source_prefix=prefix) as group:
        streams = group.participants
        found = pylsl.resolve_bypred(f"starts-with(source_id,'{prefix}-')", 3 * 6, 10.0)
        # liblsl finds at most half its port range of outlets per machine when it
        # resolves by unicast (the tests' loopback scope): 18 need PortRange >= 36.
        assert len(found) == 3 * 6, f"found {len(found)} of the group's 18 streams on LSL"
        by_source = {info.source_id(): info for info in found}
        assert list(streams) == ["P01", "P02", "P03"]
        for participant, sources in streams.items():
            assert set(sources) == {"eeg", "gsr", "ppg", "face", "truth", "labels"}
            for stream, source_id in sources.items():
                info = by_source[source_id]
                assert info.type() == STREAM_TYPES[stream]
                assert info.name().endswith(f"-{participant}")
                full = pylsl.StreamInlet(info).info(timeout=5.0)
                assert full.desc().child_value("participant") == participant
    assert len(by_source) == 3 * 6
    subjects = [device.subject for device in group.devices.values()]
    assert subjects == [101, 102, 103]


def test_a_lone_device_keeps_its_stream_names_and_no_participant():
    eeg = synthetic_stream_info("eeg", "lone")
    assert eeg.name() == "HeLo-synthetic-EEG"
    assert eeg.desc().child_value("participant") == ""
    assert truth_stream_info("lone").name() == "HeLo-synthetic-truth"
    assert truth_stream_info("x", participant="P07").name() == "HeLo-synthetic-truth-P07"


def test_participants_feel_the_shared_script_each_a_little_differently():
    rest_s, session_s = 5.0, 60.0
    group = SyntheticGroup(
        3, source_prefix=_prefix(), rest_s=rest_s, modalities=("gsr",), labels=False
    ).start_outlets()  # pushed here, faster than real time
    try:
        inlets = []
        for sources in group.participants.values():
            inlet = pylsl.StreamInlet(_resolve(sources["truth"]))
            inlet.open_stream(timeout=5.0)
            inlets.append(inlet)
        group.push_until(session_s)
        n = int(session_s * 10) + 1  # 10 Hz from time 0 to session_s included
        pulled = [_pull(inlet, n) for inlet in inlets]
    finally:
        group.stop()
    truths = np.stack([samples for samples, _ in pulled])  # [participant, time, emotion]
    times = pulled[0][1] - pulled[0][1][0]
    for _, stamps in pulled[1:]:  # one session time 0 for everyone
        np.testing.assert_allclose(stamps, pulled[0][1], atol=1e-6)
    resting = times < rest_s
    assert np.ptp(truths[:, resting], axis=0).max() < 1e-6  # the rest is everyone's
    differences = [np.abs(truths[a] - truths[b]).mean() for a, b in ((0, 1), (0, 2), (1, 2))]
    assert all(0.0 < d < 0.3 for d in differences), differences
    shared = group.script.at(times)
    assert all(np.abs(truth - shared).mean() < 0.3 for truth in truths)
    for device in group.devices.values():
        starts = device.script.starts_s
        assert np.all(np.diff(starts) > 0)
        assert starts[0] >= rest_s
        assert np.abs(starts - group.script.starts_s).max() <= 1.5


def test_a_participants_signals_are_those_of_a_lone_subject_whatever_the_chunk():
    group = SyntheticGroup(2, seed=4, modalities=("eeg",))
    device = group.devices["P02"]
    lone = SyntheticSession(device.script, subject=102, seed=6, modalities=("eeg",))
    in_group = np.concatenate([device.session.read("eeg", t)[1] for t in np.arange(1, 41) * 0.05])
    alone = np.concatenate([lone.read("eeg", t)[1] for t in np.arange(1, 101) * 0.02])
    np.testing.assert_allclose(in_group, alone, atol=1e-9)


def test_start_devices_starts_a_group_and_maps_each_participant_to_its_streams():
    with start_devices(DeviceOptions(participants=3)) as started:
        assert list(started.participants) == ["P01", "P02", "P03"]
        assert started.streams == {}
        assert started.truth is None
        assert started.labels is None
        for sources in started.participants.values():
            assert set(sources) == {"eeg", "gsr", "ppg", "face", "truth", "labels"}
        assert _resolve(started.participants["P01"]["eeg"]).name() == "HeLo-synthetic-EEG-P01"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"participants": -1}, "--participants -1: give 0 to 64"),
        ({"participants": 65}, "--participants 65: give 0 to 64"),
        ({"participants": 2, "devices": ("synthetic", "webcam")}, "simulated only"),
    ],
)
def test_device_options_refuse_a_group_they_cannot_start(options, message):
    with pytest.raises(HeloError, match=message) as raised:
        DeviceOptions(**options)
    assert "\n" not in str(raised.value)

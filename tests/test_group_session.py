"""Group sessions: streams grouped into participants, one batched worker, outputs per
participant, a group summary, replay of a group recording.

The live tests run real LSL outlets on loopback: three simulated participants, each a
:class:`SyntheticDevice` with its own subject and source_id. Participant names carry a
tag of the test run, and sessions name whom they follow, so that streams of any other
process on this machine never join a test's group.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pylsl
import pytest

from helo.models.streams import StreamDescription
from helo.streamer.config import SessionConfig
from helo.streamer.grouping import GroupingError, GroupingRule, Selection, group_streams

HOP_S = 0.25
WANTED = ("eeg", "gsr", "ppg", "faceblendshapes")
NO_CAMERA = ("eeg", "gsr", "ppg")


def _stream(name, kind="EEG", *, participant="", hostname="lab", source_id=""):
    return StreamDescription(
        name, kind, ("Fz",), 256.0, source_id or name, hostname=hostname, participant=participant
    )


# ----------------------------------------------------------------------------- grouping rules


def test_auto_grouping_prefers_the_description_then_hostname_then_name():
    by_desc = [_stream(f"EEG-{i}", participant=p) for i, p in enumerate(["A", "B"])]
    assert group_streams(by_desc, wanted_types=WANTED).members == {"A": [0], "B": [1]}
    by_host = [_stream(f"EEG-{i}", hostname=h) for i, h in enumerate(["pc2", "pc1"])]
    grouping = group_streams(by_host, wanted_types=WANTED)
    assert grouping.members == {"pc1": [1], "pc2": [0]}
    assert grouping.rule == "hostname"
    by_name = [_stream(n) for n in ("EEG-P10", "GSR P2", "EEG-P2")]
    grouping = group_streams(by_name, wanted_types=WANTED)
    assert grouping.members == {"P2": [1, 2], "P10": [0]}  # natural order: P2 before P10


def test_a_name_pattern_and_a_config_table_group_as_told():
    streams = [_stream("amp01_eeg"), _stream("amp02_eeg"), _stream("other", kind="Audio")]
    rule = GroupingRule.parse(r"name:amp(\d+)")
    assert group_streams(streams, rule=rule, wanted_types=WANTED).members == {
        "01": [0],
        "02": [1],
    }
    configured = {"left": {"eeg": "amp02_eeg"}, "right": {"eeg": "amp01_eeg"}}
    grouping = group_streams(streams, configured=configured, wanted_types=WANTED)
    assert grouping.members == {"left": [1], "right": [0]}
    assert grouping.rule == "the session config"


def test_ambiguous_groupings_are_one_line_errors_listing_them():
    partly = [_stream("EEG-a", participant="P01"), _stream("EEG-b")]
    with pytest.raises(GroupingError, match=r"'EEG-b' belong\(s\) to no participant") as err:
        group_streams(partly, wanted_types=WANTED)
    assert "\n" not in str(err.value)
    assert "P01: 1 stream(s)" in str(err.value)
    twice = {"P01": {"eeg": "EEG-a"}, "P02": {"gsr": "EEG-a"}}
    with pytest.raises(GroupingError, match="'EEG-a' matches P01 and P02"):
        group_streams(partly, configured=twice, wanted_types=WANTED)
    both = [_stream("EEG-a", participant="P01"), _stream("EEG-b", participant="P02")]
    with pytest.raises(GroupingError, match=r"2 participant\(s\) found .*, 3 asked"):
        group_streams(both, selection=Selection.parse("3"), wanted_types=WANTED)
    with pytest.raises(GroupingError, match="no streams for P07"):
        group_streams(both, selection=Selection.parse("P01,P07"), wanted_types=WANTED)
    assert group_streams(both, selection=Selection.parse("P02")).members == {"P02": [1]}
    for bad in ("0", "P01,P01", ""):
        with pytest.raises(GroupingError, match="--participants"):
            SessionConfig(participants_select=bad or ",")
    with pytest.raises(GroupingError, match="--participants-by"):
        SessionConfig(participants_by="colour")


def test_two_streams_of_one_modality_in_one_participant_name_the_participant(spec):
    from helo.streamer.group_streams import map_participants

    streams = [
        StreamDescription(
            f"EEG-{k}",
            "EEG",
            tuple(spec.modality("eeg").channels),
            256.0,
            f"eeg-{k}",
            units=("microvolts",) * len(spec.modality("eeg").channels),
            participant="P01",
        )
        for k in "ab"
    ]
    found = map_participants(spec, streams, SessionConfig(participants_select="auto"))
    assert found.errors
    assert found.errors[0].startswith("P01: eeg: 2 streams fit")


# ----------------------------------------------------------------------------- live


def _names(tag: str, n: int) -> list[str]:
    return [f"{tag}-P{i + 1:02d}" for i in range(n)]


def _devices(n: int, tag: str, participant: bool = True, kinds: dict | None = None):
    """``n`` simulated participants; ``kinds``: the devices of some of them, by index
    (keyword arguments of :class:`SyntheticDevice`: a lab's amplifier, no camera)."""
    from helo.devices.synthetic import SyntheticDevice

    return [
        SyntheticDevice(
            subject=100 + i,
            seed=i,
            source_prefix=f"{tag}-{i + 1:02d}",
            participant=name if participant else "",
            labels=False,
            **(kinds or {}).get(i, {}),
        )
        for i, name in enumerate(_names(tag, n))
    ]


def _lab_kinds() -> dict[int, dict]:
    """A group unlike our own device: P02 has no camera; P03 wears another lab's cap
    (500 Hz, volts, its own labels, two of the model's electrodes missing and 32 more
    it does not use, skin resistance in kOhm, a 24-fps camera, 40-ms packets)."""
    from helo.devices.synthetic import StreamStyle

    lab = StreamStyle(
        eeg_rate_hz=500.0,
        eeg_labels="prefixed",
        eeg_missing=("O1", "Fz"),
        eeg_extra=32,
        eeg_unit="volts",
        gsr_unit="kiloohms",
        face_rate_hz=24.0,
    )
    return {1: {"modalities": NO_CAMERA}, 2: {"style": lab, "chunk_s": 0.04}}


def _group_config(**kwargs) -> SessionConfig:
    return SessionConfig(**{"stdout": False, "hop_s": HOP_S, "resolve_timeout_s": 8.0, **kwargs})


@pytest.fixture(scope="module")
def group_run(tmp_path_factory):
    """Three participants grouped by their description field, each on other devices
    (:func:`_lab_kinds`), recorded; P02's device is killed after 3 s and restarted 4 s
    later (same source_id) while the others go on."""
    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.session import LiveSession
    from helo.streamer.sinks import MemorySink

    out = tmp_path_factory.mktemp("group")
    tag = f"grp-{uuid.uuid4().hex[:6]}"
    devices = [d.start() for d in _devices(3, tag, kinds=_lab_kinds())]
    memory = MemorySink()
    p01, p02, p03 = _names(tag, 3)
    config = _group_config(
        participants_select=f"{p01},{p02},{p03}",
        duration_s=14.0,
        jsonl=out / "p.jsonl",
        csv=out / "p.csv",
        record=out / "group.xdf",
    )
    session = LiveSession(config, subscribers=[memory])
    events: dict[str, float] = {}

    def kill_and_restart():
        while not memory.records:
            time.sleep(0.05)
        time.sleep(3.0)
        devices[1].stop()
        events["killed"] = pylsl.local_clock()
        time.sleep(4.0)
        devices[1] = SyntheticDevice(
            subject=101,
            seed=1,
            source_prefix=f"{tag}-02",
            participant=p02,
            labels=False,
            modalities=NO_CAMERA,
        ).start()
        events["restarted"] = pylsl.local_clock()

    try:
        with session:
            outlets = _outlets_of(session)
            chaos = threading.Thread(target=kill_and_restart, daemon=True)
            chaos.start()
            session.run()
            chaos.join(10.0)
            summary = session.group_summary
    finally:
        for device in devices:
            device.stop()
    return {
        "names": [p01, p02, p03],
        "records": memory.records,
        "out": out,
        "events": events,
        "outlets": outlets,
        "summary": summary,
        "participants": session.participants,
        "by_participant": session.latency.by_participant,
        "worker": session.pipeline.worker if session.pipeline else None,
    }


def _outlets_of(session) -> dict[str, str]:
    """source_id -> participant field of every outlet the session opened."""
    found = {}
    for info in session.outputs.outlets:
        inlet = pylsl.StreamInlet(
            pylsl.resolve_byprop("source_id", info.source_id(), timeout=5.0)[0]
        )
        full = inlet.info(timeout=5.0)
        found[full.source_id()] = (full.type(), full.desc().child_value("participant"))
    return found


def test_every_participant_is_predicted_every_hop_in_one_batch(group_run):
    records, names = group_run["records"], group_run["names"]
    assert group_run["participants"] == names
    by_index: dict[int, set[str]] = {}
    for r in records:
        by_index.setdefault(r.index, set()).add(r.participant)
    assert all(who == set(names) for who in by_index.values())
    for p in (names[0], names[2]):  # the others go on while P02's device is away
        mine = [r for r in records if r.participant == p]
        assert sum(r.distribution is not None for r in mine) >= 0.9 * len(mine)
    worker = group_run["worker"]
    assert worker.batches <= len(by_index) + 2  # a hop's three windows: one model call
    counts = group_run["by_participant"]  # the terminal's per-participant summary
    for p in names:
        mine = [r for r in records if r.participant == p]
        assert counts[p] == (sum(r.distribution is not None for r in mine), len(mine))


def test_a_killed_participant_is_masked_then_recovers(group_run):
    events, records = group_run["events"], group_run["records"]
    assert "restarted" in events, "the device was not restarted in time"
    p02 = [r for r in records if r.participant == group_run["names"][1]]
    away = [r for r in p02 if events["killed"] + 2.5 < r.t_end < events["restarted"]]
    assert away
    assert all("eeg" not in r.present for r in away)
    assert any("stale" in why for r in away for why in r.missing.values())
    back = [r for r in p02 if r.t_end > events["restarted"] + 3.0]
    assert back
    assert back[-1].distribution is not None
    assert "eeg" in back[-1].present


def test_one_outlet_per_participant_and_a_group_summary(group_run):
    outlets = group_run["outlets"]
    kinds = sorted(outlets.values())
    assert kinds == [
        *(("EmotionDistribution", name) for name in group_run["names"]),
        ("EmotionGroupSummary", ""),
    ]
    summary = group_run["summary"]
    assert summary.published > 10
    state = summary.latest
    assert state.participants == 3
    assert 0.0 <= state.agreement <= 1.0
    assert np.isclose(state.mean.sum(), 1.0, atol=1e-4)


def test_files_name_the_participant_of_every_row(group_run):
    import csv

    from helo.streamer.sinks import read_jsonl

    names = set(group_run["names"])
    rows = read_jsonl(group_run["out"] / "p.jsonl")
    assert {r["participant"] for r in rows} == names
    with open(group_run["out"] / "p.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows)
    assert {r["participant"] for r in table} == names


def test_the_recording_replays_participant_by_participant_identically_twice(group_run):
    import pyxdf

    from helo.streamer.config import ReplayOptions
    from helo.streamer.replay_session import ReplaySession
    from helo.streamer.sinks import MemorySink

    path = group_run["out"] / "group.xdf"
    streams, _ = pyxdf.load_xdf(str(path))
    types = sorted(s["info"]["type"][0] for s in streams)
    assert types.count("EEG") == 3
    assert types.count("EmotionDistribution") == 3
    assert types.count("EmotionGroupSummary") == 1
    assert types.count("EmotionTruth") == 3
    runs = []
    for _ in range(2):
        memory = MemorySink()
        config = SessionConfig(stdout=False, lsl=False)  # a group recording is found as one
        with ReplaySession(config, ReplayOptions(path), [memory]) as session:
            session.run()
            assert session.participants == group_run["names"]
        runs.append(memory.records)
    first, second = runs
    assert len(first) == len(second) > 30
    assert {r.participant for r in first} == set(group_run["names"])
    for a, b in zip(first, second, strict=True):
        assert (a.participant, a.t_end) == (b.participant, b.t_end)
        if a.distribution is None:
            assert b.distribution is None
        else:
            np.testing.assert_array_equal(a.distribution, b.distribution)


def test_each_participant_is_read_as_their_own_devices_send(group_run):
    """One batch for a group of different devices: P02 without a camera is predicted
    from the rest, P03's cap is adapted (rate, volts, labels, two electrodes filled in)
    without changing anyone else's inputs."""
    records, (p01, p02, p03) = group_run["records"], group_run["names"]
    full = ("eeg", "gsr", "ppg", "face")
    predicted = {
        p: [r for r in records if r.participant == p and r.distribution is not None]
        for p in (p01, p02, p03)
    }
    assert all(predicted.values())
    assert {r.present for r in predicted[p01][-5:]} == {full}
    assert all("face" not in r.present for r in predicted[p02])
    assert all(r.missing.get("face") == "face: no stream" for r in predicted[p02])
    assert {r.present for r in predicted[p03][-5:]} == {full}
    assert set(predicted[p03][-1].interpolated["eeg"]) == {"O1", "Fz"}
    assert not any(r.interpolated for r in predicted[p01])


def _replay(path, participants: str = "", times: str = "hop") -> list:
    from helo.streamer.config import ReplayOptions
    from helo.streamer.replay_session import ReplaySession
    from helo.streamer.sinks import MemorySink

    memory = MemorySink()
    config = SessionConfig(stdout=False, lsl=False, participants_select=participants or None)
    with ReplaySession(config, ReplayOptions(path, times=times), [memory]) as session:
        session.run()
    return memory.records


def test_a_replay_gives_the_live_predictions_and_a_participant_alone_the_same(group_run):
    """The replay's windows end where the live session's did (each participant's own
    ends, as recorded), so its predictions are the live ones up to the timestamp
    processing once the participant's statistics settled (the one-person tolerance and
    rule, runtime.md, test_personal); a participant replayed alone gets exactly what
    they get beside the others."""
    from helo.models.xdf import read_recording

    path = group_run["out"] / "group.xdf"
    together = _replay(path)
    data = [s for s in read_recording(path) if s.description.type in ("EEG", "GSR", "PPG")]
    # the recorder's clock synchronisation moves the ends by microseconds
    live = {(r.participant, round(r.t_end, 3)): r for r in group_run["records"]}
    for p in (group_run["names"][0], group_run["names"][2]):  # P02's device was away
        mine = [r for r in together if r.participant == p]
        starts = max(s.times[0] for s in data if s.description.participant == p)
        diffs = []
        for r in mine:
            twin = live.get((p, round(r.t_end, 3)))
            if twin is None or r.distribution is None or twin.distribution is None:
                continue
            if r.t_end - 5.0 < starts:  # began before every stream did (as test_personal)
                continue
            if r.missing or twin.missing:  # live cut it short (a late packet under load)
                continue
            assert r.present == twin.present
            assert r.calibrating == twin.calibrating
            if twin.calibrating:  # recomputed from a recording that began late: close only
                continue
            diffs.append(float(np.abs(r.distribution - twin.distribution).max()))
        assert len(diffs) > 10  # how many are left depends on the load live ran under
        assert max(diffs) < 0.05
        assert np.median(diffs) < 0.002
        # each participant's windows end where their own live ones did (they followed
        # that participant's packets), microseconds apart through the clock sync
        own = np.array([r.t_end for r in mine])
        lived = np.array(
            [
                r.t_end
                for r in group_run["records"]
                if r.participant == p and r.distribution is not None  # recorded
            ]
        )
        lived = lived[(lived > own[0] + 1e-3) & (lived < own[-1] - 1e-3)]
        assert np.abs(lived[:, None] - own[None, :]).min(axis=1).max() < 1e-4
    p03 = group_run["names"][2]
    alone = _replay(path, p03)
    beside = [r for r in together if r.participant == p03]
    # The same grid; alone, the replay spans P03's own data, which can begin a hop after
    # the group's first window and end a hop or two before its last (each device's
    # streams start and stop at their own moments).
    ends = [r.t_end for r in beside]
    first = ends.index(alone[0].t_end)
    beside = beside[first : first + len(alone)]
    assert first <= 1
    assert len(ends) - len(alone) - first <= 2
    assert [r.t_end for r in alone] == [r.t_end for r in beside]
    for a, b in zip(alone, beside, strict=True):
        assert a.present == b.present
        if a.distribution is not None:
            np.testing.assert_array_equal(a.distribution, b.distribution)


def test_at_the_recorded_times_each_participant_is_cut_once_a_hop_at_their_own_end(group_run):
    """``--times recorded`` on a group whose windows followed each participant's packets:
    one window set a hop, each participant's at their own recorded end."""
    path = group_run["out"] / "group.xdf"
    replayed = _replay(path, times="recorded")
    p01 = group_run["names"][0]
    mine = np.array([r.t_end for r in replayed if r.participant == p01])
    assert len(mine) > 10
    assert np.diff(mine).min() > 0.25 * 0.8  # one a hop, not one per participant's end
    lived = np.array(
        [
            r.t_end
            for r in group_run["records"]
            if r.participant == p01 and r.distribution is not None
        ]
    )
    assert np.abs(mine[:, None] - lived[None, :]).min(axis=1).max() < 1e-4


def test_config_tables_and_a_name_pattern_group_live_streams():
    """Streams without a participant field: grouped by the session's tables, then by a
    name pattern on streams that do say whose they are in their names."""
    from helo.streamer.session import LiveSession
    from helo.streamer.sinks import MemorySink

    tag = f"cfg-{uuid.uuid4().hex[:6]}"
    devices = [d.start() for d in _devices(3, tag, participant=False)]
    try:
        tables = {
            name: {m: f"{tag}-{i + 1:02d}-{m}" for m in ("eeg", "gsr", "ppg", "face")}
            for i, name in enumerate(["ana", "ben", "cem"])
        }
        memory = MemorySink()
        config = _group_config(participants=tables, duration_s=1.5, lsl=False)
        with LiveSession(config, subscribers=[memory]) as session:
            session.run()
            assert session.participants == ["ana", "ben", "cem"]
            assert session.group_feeds["ben"]["eeg"].buffer is not None
        assert {r.participant for r in memory.records} == {"ana", "ben", "cem"}
    finally:
        for device in devices:
            device.stop()
    tag += "n"
    devices = [d.start() for d in _devices(3, tag)]
    p01, _, p03 = _names(tag, 3)
    try:
        memory = MemorySink()
        config = _group_config(
            participants_select=f"{p01},{p03}",
            participants_by=f"name:({tag}-P0\\d)$",
            duration_s=1.5,
            lsl=False,
        )
        with LiveSession(config, subscribers=[memory]) as session:
            session.run()
            assert session.participants == [p01, p03]
            feeds = session.group_feeds[p03]
            assert feeds["eeg"].stream_name == f"HeLo-synthetic-EEG-{p03}"
        assert {r.participant for r in memory.records} == {p01, p03}
    finally:
        for device in devices:
            device.stop()


def test_an_ambiguous_network_is_refused_before_the_session_starts():
    """Two participants' streams, and one stream nobody claims: one clear line."""
    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.session import LiveSession

    tag = f"amb-{uuid.uuid4().hex[:6]}"
    devices = [d.start() for d in _devices(2, tag)]
    stray = SyntheticDevice(source_prefix=f"{tag}-x", modalities=("gsr",), labels=False)
    stray.start()
    try:
        config = _group_config(participants_select="auto", resolve_timeout_s=2.0)
        with pytest.raises(GroupingError, match=r"belong\(s\) to no participant") as err:
            LiveSession(config).open()
        assert "\n" not in str(err.value)
    finally:
        stray.stop()
        for device in devices:
            device.stop()

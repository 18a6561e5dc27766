"""A study of recordings replayed with Ray (a local instance with 2 CPUs) and without:
the same table, a corrupt recording reported while the others complete, a rerun that
skips what is done, the table's schema.

Two short recordings of the synthetic device are made with LabRecorder (different
simulated subjects); the study holds six: those two, copies of them in other folders
(same name: the outputs must not collide), and a truncated file.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helo.streamer.config import SessionConfig
from helo.streamer.study import Study, find_recordings, output_names


def _record(path: Path, subject: int, seconds: float = 24.0) -> Path:
    """``seconds`` of one simulated subject, pushed 20x faster than real time."""
    import time
    import uuid

    from helo.devices.synthetic import SyntheticDevice
    from helo.streamer.recorder import Recorder, resolve_by_source_id

    prefix = f"study-{uuid.uuid4().hex[:8]}"
    device = SyntheticDevice(source_prefix=prefix, subject=subject, seed=subject, labels=False)
    device.start_outlets()
    infos = [resolve_by_source_id(f"{prefix}-{m}") for m in device.modalities]
    recorder = Recorder(path, infos).start()
    time.sleep(1.5)  # LabRecorder subscribes
    session_s = 0.0
    while session_s < seconds:
        session_s += 0.5
        device.push_until(session_s)
        time.sleep(0.025)
    recorder.stop(drain_s=2.0)
    device.stop()
    return path


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("study")
    data = root / "data"
    (data / "site-a").mkdir(parents=True)
    (data / "site-b").mkdir()
    a = _record(data / "site-a" / "sub-01.xdf", 101)
    b = _record(data / "site-a" / "sub-02.xdf", 102)
    for name, source in (("sub-01", a), ("sub-02", b), ("sub-03", a)):
        shutil.copy(source, data / "site-b" / f"{name}.xdf")
    corrupt = data / "site-b" / "sub-04.xdf"
    corrupt.write_bytes(a.read_bytes()[:5000])  # a recording cut short: a crashed PC
    return {"root": root, "data": data, "paths": find_recordings([data])}


def _config() -> SessionConfig:
    return SessionConfig(stdout=False, lsl=False)


@pytest.fixture(scope="module")
def sequential(recordings) -> dict:
    out = recordings["root"] / "sequential"
    results = Study(recordings["paths"], out, _config(), use_ray=False).run()
    return {"out": out, "results": results}


@pytest.fixture(scope="module")
def with_ray(recordings) -> dict:
    out = recordings["root"] / "ray"
    results = Study(recordings["paths"], out, _config(), use_ray=True, workers=2).run()
    return {"out": out, "results": results}


def test_recordings_are_found_in_folders_patterns_and_lists(recordings, tmp_path):
    paths = recordings["paths"]
    assert len(paths) == 6
    names = output_names(paths)
    assert sorted(names.values()) == [
        "site-a_sub-01",
        "site-a_sub-02",
        "site-b_sub-01",
        "site-b_sub-02",
        "site-b_sub-03",
        "site-b_sub-04",
    ]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two\n{paths[0]}\n{paths[1]}  # the second\n")
    assert find_recordings([f"@{listing}"]) == paths[:2]
    pattern = str(recordings["data"] / "**" / "sub-0[12].xdf")
    assert len(find_recordings([pattern])) == 4


def test_ray_gives_the_sequential_results(sequential, with_ray):
    assert [r.status for r in with_ray["results"]] == [r.status for r in sequential["results"]]
    one = pq.read_table(sequential["out"] / "study.parquet")
    two = pq.read_table(with_ray["out"] / "study.parquet")
    assert one.num_rows == two.num_rows > 100
    assert one.equals(two)
    for result in sequential["results"]:
        if result.status == "done":
            name = f"{result.name}.jsonl"
            assert _predictions(with_ray["out"] / name) == _predictions(sequential["out"] / name)


def _predictions(path: Path) -> list[dict]:
    """A JSONL file's rows without the compute time (the one field that is a timing)."""
    from helo.streamer.sinks import read_jsonl

    return [{k: v for k, v in row.items() if k != "compute_ms"} for row in read_jsonl(path)]


def test_a_corrupt_recording_is_reported_and_the_rest_complete(with_ray):
    results = {Path(r.recording).name: r for r in with_ray["results"]}
    assert [r.status for r in with_ray["results"]].count("done") == 5
    failed = [r for r in with_ray["results"] if r.status == "failed"]
    assert len(failed) == 1
    assert failed[0].recording.endswith("sub-04.xdf")
    assert "\n" not in failed[0].reason
    assert failed[0].reason
    with open(with_ray["out"] / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    by_name = {Path(r["recording"]).name: r for r in rows}
    assert by_name["sub-04.xdf"]["status"] == "failed"
    assert by_name["sub-04.xdf"]["reason"] == failed[0].reason
    assert int(by_name["sub-02.xdf"]["windows"]) == results["sub-02.xdf"].windows > 50
    assert float(by_name["sub-02.xdf"]["share_masked"]) < 0.1
    means = [
        float(by_name["sub-02.xdf"][k]) for k in by_name["sub-02.xdf"] if k.startswith("mean_")
    ]
    assert len(means) == 6
    assert abs(sum(means) - 1.0) < 1e-3
    assert not list(with_ray["out"].glob("*.partial"))  # nothing half-written is left


def test_a_rerun_skips_finished_recordings_unless_forced(recordings, sequential, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(sequential["out"], out)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")}
    again = Study(recordings["paths"], out, _config(), use_ray=False).run()
    statuses = [r.status for r in again]
    assert statuses.count("skipped") == 5
    assert statuses.count("failed") == 1  # a failed recording is tried again
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")} == before
    table = pq.read_table(out / "study.parquet")
    assert table.num_rows == pq.read_table(sequential["out"] / "study.parquet").num_rows
    forced = Study(recordings["paths"][:1], out, _config(), use_ray=False, force=True).run()
    assert forced[0].status == "done"


def test_the_study_table_schema(sequential):
    schema = pq.read_schema(sequential["out"] / "study.parquet")
    labels = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    assert schema.names == [
        "recording",
        "participant",
        "window_end_lsl",
        "t_s",
        *labels,
        "predicted",
        "present",
        "missing",
        "interpolated",
        "calibrating",
    ]
    assert schema.field("window_end_lsl").type == pa.float64()
    assert schema.field("anger").type == pa.float32()
    assert schema.field("predicted").type == pa.bool_()
    table = pq.read_table(sequential["out"] / "study.parquet").to_pydict()
    assert len(set(table["recording"])) == 5
    predicted = np.array(table["predicted"])
    values = np.array([table[k] for k in labels], dtype=float).T  # None -> nan
    assert np.allclose(values[predicted].sum(axis=1), 1.0, atol=1e-4)
    assert np.isnan(values[~predicted]).all()


def test_the_command_line_study(recordings, tmp_path, capsys):
    from helo.streamer.cli import main

    out = tmp_path / "cli"
    code = main(["replay", str(recordings["data"] / "site-a"), "--out", str(out), "--sequential"])
    assert code == 0
    assert (out / "study.parquet").exists()
    assert main(["replay", str(recordings["data"]), "--sequential"]) == 2  # no --out
    assert "needs --out DIR" in capsys.readouterr().err

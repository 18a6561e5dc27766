"""A study: a folder of recordings replayed, one task each, into one table.

After data collection a lab has 50-100 recordings. ``streamer replay DIR --out OUT``
replays every one through the live pipeline (:class:`ReplaySession`, so the same
predictions as one file at a time) and writes, per recording, its predictions
(``<name>.jsonl``), its rows of the study table (``<name>.parquet``) and a done
marker with its summary (``<name>.done.json``); then the study table
(``study.parquet``: recording, participant, window end, distribution, modalities
present, quality flags) and a summary per recording (``summary.csv``: windows,
predicted, share masked, mean distribution, or the one-line reason it failed).

Recordings are Ray tasks (one CPU each; a local Ray instance by default, or the
cluster of ``--ray-address`` / ``RAY_ADDRESS``): Ray does the distribution, the
retries of crashed workers and the CPU accounting; nothing here schedules. A
recording that fails is reported with its reason and the others go on; a recording
whose done marker exists is skipped (a rerun after a crash continues) unless
``force``. ``use_ray=False`` runs the very same function here, one after the other
(the reference the Ray run is tested against).
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from helo.models.errors import HeloError
from helo.streamer.config import ReplayOptions, SessionConfig
from helo.streamer.distributed import start_ray
from helo.streamer.worker import PredictionRecord

log = logging.getLogger(__name__)

TABLE = "study.parquet"
SUMMARY = "summary.csv"


@dataclass
class RecordingResult:
    """What one recording gave (or why it gave nothing)."""

    recording: str
    name: str  # its outputs' stem in the study folder
    status: str  # done | failed | skipped (done in an earlier run)
    reason: str = ""
    windows: int = 0
    predicted: int = 0
    share_masked: float = 0.0  # windows with at least one modality missing
    mean_distribution: dict[str, float] = field(default_factory=dict)
    participants: list[str] = field(default_factory=list)
    recording_s: float = 0.0
    wall_s: float = 0.0


def find_recordings(items: Sequence[str | Path]) -> list[Path]:
    """Recordings named by files, folders (every ``*.xdf`` below), glob patterns or
    ``@list.txt`` files (one path per line, ``#`` comments), each once, in order."""
    found: list[Path] = []
    for item in items:
        text = str(item)
        if text.startswith("@"):
            found += _listed(Path(text[1:]))
        elif Path(text).is_dir():
            found += sorted(Path(text).rglob("*.xdf"))
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise HeloError(f"{text}: no recording matches this pattern")
            found += matches
        else:
            found.append(Path(text))
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise HeloError(f"{missing[0]}: no such recording" + _more(missing))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise HeloError(f"{', '.join(map(str, items))}: no .xdf recordings found")
    return unique


def _listed(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HeloError(f"{path}: cannot read the list of recordings ({exc.strerror})") from None
    entries = [line.split("#", 1)[0].strip() for line in lines]
    return [(path.parent / e) if not Path(e).is_absolute() else Path(e) for e in entries if e]


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def output_names(recordings: Sequence[Path]) -> dict[Path, str]:
    """A stem per recording for its outputs: its file name, with as many parent folders
    as it takes to tell recordings of the same name apart (``sub-01_ses-1``)."""
    names: dict[Path, str] = {}
    for depth in range(1, 1 + max(len(p.parts) for p in recordings)):
        names = {p: "_".join(p.with_suffix("").parts[-depth:]) for p in recordings}
        if len(set(names.values())) == len(names):
            break
    return names


class TableRows:
    """A subscriber keeping a recording's rows of the study table, column by column."""

    def __init__(self, recording: str):
        self.recording = recording
        self.labels: tuple[str, ...] = ()
        self.start_s = 0.0
        self.columns: dict[str, list] = {}

    def begin(self, labels: tuple[str, ...], start_s: float) -> None:
        """The model's labels and the recording's start, once the session is open."""
        self.labels, self.start_s = labels, start_s
        self.columns = {
            k: []
            for k in (
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
            )
        }

    def __call__(self, record: PredictionRecord) -> None:
        c = self.columns
        c["recording"].append(self.recording)
        c["participant"].append(record.participant)
        c["window_end_lsl"].append(float(record.t_end))
        c["t_s"].append(float(record.t_end) - self.start_s)
        dist = record.distribution
        for k, label in enumerate(self.labels):
            c[label].append(None if dist is None else float(dist[k]))
        c["predicted"].append(dist is not None)
        c["present"].append("+".join(record.present))
        c["missing"].append("; ".join(record.missing.values()))
        c["interpolated"].append(
            "; ".join(f"{m}:{' '.join(ch)}" for m, ch in record.interpolated.items())
        )
        c["calibrating"].append(bool(record.calibrating))

    def write(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {label: pa.float32() for label in self.labels}
        types.update(window_end_lsl=pa.float64(), t_s=pa.float64(), predicted=pa.bool_())
        types["calibrating"] = pa.bool_()
        table = pa.table(
            {k: pa.array(v, type=types.get(k, pa.string())) for k, v in self.columns.items()}
        )
        pq.write_table(table, path)


def replay_recording(path: Path, name: str, out: Path, config: SessionConfig) -> RecordingResult:
    """Replay one recording into ``out`` (JSONL, Parquet part, done marker); a user
    mistake in the file (corrupt, streams that do not fit) is a failed result with its
    one-line reason, never an exception: the study goes on. Runs in a Ray worker or
    here, the same."""
    from helo.streamer.process import configure_for_inference
    from helo.streamer.replay_session import ReplaySession

    configure_for_inference()  # torch: one thread per operation, as every session
    result = RecordingResult(str(path), name, "done")
    jsonl, part = out / f"{name}.jsonl", out / f"{name}.parquet"
    partial = out / f"{name}.jsonl.partial"
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    rows = TableRows(str(path))
    try:
        session_config = replace(config, jsonl=partial, stdout=False, lsl=False, record=None)
        session = ReplaySession(session_config, ReplayOptions(path), [rows])
        with session:
            assert session.source is not None
            rows.begin(session.spec.labels, session.source.start_s)
            count = session.run()
            result.recording_s = session.played_s(count // max(1, len(session.participants)))
            result.participants = list(session.participants) or [""]
    except (HeloError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        result.status, result.reason = "failed", _one_line(exc)
        return result
    rows.write(part)
    partial.replace(jsonl)
    result.wall_s = time.perf_counter() - started
    _summarise(result, rows)
    (out / f"{name}.done.json").write_text(json.dumps(asdict(result), indent=1))
    return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _summarise(result: RecordingResult, rows: TableRows) -> None:
    predicted = np.array(rows.columns["predicted"], dtype=bool)
    result.windows = len(predicted)
    result.predicted = int(predicted.sum())
    masked = np.array([bool(m) for m in rows.columns["missing"]], dtype=bool)
    result.share_masked = float(masked.mean()) if len(masked) else 0.0
    if predicted.any():
        result.mean_distribution = {
            label: float(np.mean(np.array(rows.columns[label], dtype=object)[predicted]))
            for label in rows.labels
        }


@dataclass
class Study:
    """Where a study's outputs go and how its recordings run."""

    recordings: list[Path]
    out: Path
    config: SessionConfig
    use_ray: bool = True
    ray_address: str | None = None  # None: RAY_ADDRESS, else a local instance
    workers: int | None = None  # CPUs of a local instance (default: all)
    force: bool = False

    def __post_init__(self) -> None:
        self.names = output_names(self.recordings)

    def done(self, path: Path) -> RecordingResult | None:
        """The recording's result from an earlier run, when all its outputs are there."""
        name = self.names[path]
        marker = self.out / f"{name}.done.json"
        if self.force or not marker.exists() or not (self.out / f"{name}.parquet").exists():
            return None
        try:
            data = json.loads(marker.read_text())
            return replace(RecordingResult(**data), status="skipped")
        except (ValueError, TypeError):
            return None  # a marker from another version: done again

    def run(
        self, on_result: Callable[[RecordingResult], None] | None = None
    ) -> list[RecordingResult]:
        """Every recording's result, in the order given; writes the table and summary."""
        self.out.mkdir(parents=True, exist_ok=True)
        results: dict[Path, RecordingResult] = {}
        todo = []
        for path in self.recordings:
            earlier = self.done(path)
            if earlier is not None:
                results[path] = earlier
            else:
                todo.append(path)
        runner = self._ray_results if self.use_ray and todo else self._local_results
        for path, result in runner(todo):
            results[path] = result
            if on_result is not None:
                on_result(result)
        ordered = [results[p] for p in self.recordings]
        write_table(self.out, [r for r in ordered if r.status != "failed"])
        write_summary(self.out / SUMMARY, ordered)
        return ordered

    def _local_results(self, todo: list[Path]) -> Iterator[tuple[Path, RecordingResult]]:
        for path in todo:
            yield path, replay_recording(path, self.names[path], self.out, self.config)

    def _ray_results(self, todo: list[Path]) -> Iterator[tuple[Path, RecordingResult]]:
        import ray

        started_here = start_ray(self.ray_address, self.workers)
        try:
            task = ray.remote(num_cpus=1, max_retries=2)(replay_recording)
            config = ray.put(replace(self.config, threads=1))  # one CPU per task
            pending = {task.remote(path, self.names[path], self.out, config): path for path in todo}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                path = pending.pop(ready[0])
                try:
                    yield path, ray.get(ready[0])
                except Exception as exc:  # the worker died (memory, a crash): said, go on
                    reason = f"the task failed: {type(exc).__name__}: {_one_line(exc)}"
                    yield path, RecordingResult(str(path), self.names[path], "failed", reason)
        finally:
            if started_here:
                ray.shutdown()


def write_table(out: Path, results: Sequence[RecordingResult]) -> Path:
    """``study.parquet``: the recordings' parts one after the other (one part in memory
    at a time)."""
    import pyarrow.parquet as pq

    path = out / TABLE
    writer = None
    try:
        for result in results:
            part = pq.read_table(out / f"{result.name}.parquet")
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema)
            writer.write_table(part.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    return path


def write_summary(path: Path, results: Sequence[RecordingResult]) -> None:
    """One row per recording: status, reason, counts, the mean distribution."""
    labels = list(dict.fromkeys(k for r in results for k in r.mean_distribution))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "recording",
                "status",
                "reason",
                "participants",
                "windows",
                "predicted",
                "share_masked",
                "recording_s",
                "wall_s",
                *(f"mean_{label}" for label in labels),
            ]
        )
        for r in results:
            writer.writerow(
                [
                    r.recording,
                    r.status,
                    r.reason,
                    "+".join(p for p in r.participants if p),
                    r.windows,
                    r.predicted,
                    f"{r.share_masked:.4f}",
                    f"{r.recording_s:.2f}",
                    f"{r.wall_s:.2f}",
                    *(
                        f"{r.mean_distribution[label]:.6f}" if label in r.mean_distribution else ""
                        for label in labels
                    ),
                ]
            )

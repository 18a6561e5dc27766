"""Reader capacity: our LSL readers beside mne-lsl's on the same high-rate streams.

A subprocess publishes a 64-ch 2048 Hz stream plus GSR, PPG and face (channel 0
counts samples); our readers and mne-lsl's ``StreamLSL`` read the same streams at the
same time, each in its own process; lost samples from the counters, CPU seconds per
process. Run as ``python -m helo.streamer.bench.readers publish|read ...`` for the
subprocesses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import numpy as np


def _reader_process(kind: str, prefix: str, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helo.streamer.bench.readers",
            "read",
            kind,
            prefix,
            str(seconds),
            str(out),
        ]
    )


def reader_capacity(
    seconds: float = 60.0, channels: int = 64, srate_hz: float = 2048.0, workdir: Path | None = None
) -> dict:
    """Our readers and mne-lsl's, side by side on the same high-rate streams."""
    import tempfile

    workdir = Path(workdir or tempfile.mkdtemp(prefix="helo-bench-"))
    prefix = f"bench-cap-{uuid.uuid4().hex[:8]}"
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helo.streamer.bench.readers",
            "publish",
            prefix,
            str(seconds + 8.0),
            str(channels),
            str(srate_hz),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert publisher.stdout is not None
        assert publisher.stdout.readline().strip() == "ready"
        ours = _reader_process("helo", prefix, seconds, workdir / "helo.json")
        theirs = _reader_process("mne-lsl", prefix, seconds, workdir / "mne.json")
        ours.wait(timeout=seconds + 120)
        theirs.wait(timeout=seconds + 120)
    finally:
        publisher.kill()
        publisher.wait()
    result = {
        "helo": json.loads((workdir / "helo.json").read_text()),
        "mne_lsl": json.loads((workdir / "mne.json").read_text()),
        "seconds": seconds,
        "eeg": f"{channels} ch x {srate_hz:g} Hz",
    }
    cpu_ours = result["helo"]["cpu_s"]
    cpu_theirs = result["mne_lsl"]["cpu_s"]
    result["cpu_ratio_helo_over_mne_lsl"] = cpu_ours / cpu_theirs if cpu_theirs else None
    return result


def _publish(prefix: str, seconds: float, channels: int, srate_hz: float) -> None:
    """High-rate EEG plus the synthetic GSR/PPG/face rates; channel 0 counts samples."""
    import pylsl

    specs = {
        "eeg": ("EEG", channels, srate_hz),
        "gsr": ("GSR", 1, 32.0),
        "ppg": ("PPG", 1, 64.0),
        "face": ("FaceBlendshapes", 56, 30.0),
    }
    outlets = {}
    for name, (kind, n, rate) in specs.items():
        info = pylsl.StreamInfo(
            f"{prefix}-{name}", kind, n, rate, pylsl.cf_float32, f"{prefix}-{name}"
        )
        outlets[name] = (pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60), n, rate)
    print("ready", flush=True)
    t0 = pylsl.local_clock()
    sent = dict.fromkeys(specs, 0)
    while pylsl.local_clock() - t0 < seconds:
        now = pylsl.local_clock() - t0
        for name, (outlet, n, rate) in outlets.items():
            due = int(now * rate)
            if due > sent[name]:
                data = np.zeros((due - sent[name], n), dtype=np.float32)
                data[:, 0] = np.arange(sent[name], due)
                outlet.push_chunk(data, (t0 + np.arange(sent[name], due) / rate).tolist())
                sent[name] = due
        time.sleep(0.01)


def _read(kind: str, prefix: str, seconds: float, out: Path) -> None:
    import pylsl

    names = [f"{prefix}-{m}" for m in ("eeg", "gsr", "ppg", "face")]
    infos = [pylsl.resolve_byprop("source_id", n, timeout=10.0)[0] for n in names]
    counters: dict[str, list[float]] = {n: [] for n in names}
    cpu0 = time.process_time()
    if kind == "helo":  # ours: pull into ring buffers, read what is new every second
        from helo.streamer.lsl_reader import StreamReader

        readers = {
            n: StreamReader(i, buffer_s=30.0).start() for n, i in zip(names, infos, strict=True)
        }
        last = dict.fromkeys(names, -np.inf)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            time.sleep(1.0)
            for n, reader in readers.items():
                times, data = reader.buffer.read_span(last[n], np.inf)
                if len(times):
                    counters[n].extend(data[:, 0].tolist())
                    last[n] = times[-1]
        for reader in readers.values():
            reader.stop()
    else:
        from mne_lsl.stream import StreamLSL

        # mne-lsl warns (RuntimeWarning) about our plain test streams: not our lines.
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="mne_lsl")

        streams = {n: StreamLSL(bufsize=30.0, source_id=n).connect() for n in names}
        last = dict.fromkeys(names, -np.inf)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            time.sleep(1.0)
            for n, stream in streams.items():
                data, stamps = stream.get_data(winsize=5.0)  # overlapping: keep what is new
                fresh = (stamps > last[n]) & (stamps > 0)  # 0: not yet filled
                if fresh.any():
                    counters[n].extend(data[0, fresh].tolist())
                    last[n] = stamps[fresh][-1]
        for stream in streams.values():
            stream.disconnect()
    cpu = time.process_time() - cpu0
    report: dict[str, object] = {"cpu_s": cpu, "cpu_share": cpu / seconds}
    for n, counted in counters.items():
        values = np.asarray(counted)
        steps = np.diff(values) if len(values) > 1 else np.array([])
        report[n.rsplit("-", 1)[1]] = {
            "received": len(values),
            "lost": int(np.clip(steps - 1, 0, None).sum()) if len(steps) else 0,
            "repeated": int((steps < 1).sum()) if len(steps) else 0,
        }
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        _publish(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "read":
        _read(sys.argv[2], sys.argv[3], float(sys.argv[4]), Path(sys.argv[5]))

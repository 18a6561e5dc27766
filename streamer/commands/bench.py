"""``streamer bench``: can this machine keep up? Speed figures measured here.

- ``features``: feature extraction of one window (32-ch EEG 256 Hz, GSR 32 Hz,
  PPG 64 Hz, face 30 Hz, 5 s each), p50/p99;
- ``model``: HeLo forward of one window on one CPU thread, p50/p99; batched
  throughput (windows/s) with all cores; on CUDA (when present) batched
  throughput on the GPU;
- ``adaptation``: what reading a lab's cap costs per window (500 Hz, 64 channels, 4
  of the model's electrodes interpolated) and how much accuracy other rates and
  interpolated electrodes lose (docs/inputs.md);
- ``latency``, ``replay``, ``readers``, ``webcam``, ``gui``: the runtime (live latency
  for our own device and for the lab cap), the webcam device and the desktop app
  (see docs/performance.md);
- ``study``: a study of ``--study-recordings`` recordings replayed sequentially and with
  Ray (1 and 2 workers): wall times, speed-up, Ray's overhead per recording;
- ``group``: one monitor for 1, 4, 8, 16 participants (``--participants``): latency,
  CPU per participant, compute per hop; and the app's participant grid at the
  largest count (redraws/s, longest stall).

The measuring lives in :mod:`helo.streamer.bench`; this module picks the sections and
prints their figures, one function per section.

The model is the demo checkpoint and, for comparison, a HeLo of the paper's
size (d = 128) on the same inputs. Timings use ``time.perf_counter``; medians
over repetitions, so a busy neighbour on a shared machine shows as spread, not
as a false best.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helo.models.checkpoint import Checkpoint, load_checkpoint
from helo.models.datasets.synthetic_windows import synthetic_spec
from helo.models.errors import HeloError
from helo.models.features.spec import FeatureSpec
from helo.models.report import machine_line
from helo.streamer.bench import (
    adaptation,
    compute,
    group,
    personal,
    readers,
    runtime,
    study,
    webcam,
)
from helo.streamer.demo import DEMO_CHECKPOINT

SECTIONS = (
    "features",
    "model",
    "adaptation",
    "personal",
    "latency",
    "replay",
    "readers",
    "webcam",
    "gui",
    "group",
    "study",
)
QUICK = ("features", "model")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure feature, model and runtime speed on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--only",
        default=",".join(QUICK),
        help=f"comma-separated sections: {', '.join(SECTIONS)}, or all "
        f"(default: {','.join(QUICK)})",
    )
    p.add_argument(
        "--seconds", type=float, default=60.0, help="duration of the live and reader runs"
    )
    p.add_argument(
        "--recording", type=Path, help="XDF file for the replay figures (default: record one)"
    )
    p.add_argument(
        "--replay-minutes",
        type=float,
        default=10.0,
        help="length of the recording made for the replay figures",
    )
    p.add_argument(
        "--device-chunk-ms",
        type=float,
        default=20.0,
        help="live runs: the synthetic device pushes every this many ms (default 20)",
    )
    p.add_argument(
        "--regular-ends",
        action="store_true",
        help="live runs: windows end exactly on the hop's grid, not where the packets that "
        "completed them end (what sessions did before; for comparison)",
    )
    p.add_argument(
        "--round-ends",
        action="store_true",
        help="live runs: window ends on round multiples of the hop, not where the devices' "
        "packets arrive (what sessions did before; for comparison)",
    )
    p.add_argument(
        "--participants",
        default="1,4,8,16",
        help="group section: participant counts to run, comma-separated (default 1,4,8,16)",
    )
    p.add_argument(
        "--group-hop",
        type=float,
        default=0.25,
        help="group section: seconds between predictions (default 0.25; the devices' 20-ms "
        "packets make 0.24 or 0.26 a whole number of packets)",
    )
    p.add_argument(
        "--study-recordings",
        type=int,
        default=12,
        help="study section: recordings in the study (copies of 3 recordings of "
        "--study-minutes each; default 12)",
    )
    p.add_argument("--study-minutes", type=float, default=5.0, help="study section: minutes")
    p.add_argument("--checkpoint", type=Path, help="model to time (default: the demo model)")
    p.add_argument("--repeats", type=int, default=300, help="timed runs for per-window figures")
    p.add_argument("--batch", type=int, default=256, help="windows per batch for throughput")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if sections == ["all"]:
        sections = list(SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise HeloError(f"--only: unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    path = args.checkpoint or DEMO_CHECKPOINT
    ckpt = load_checkpoint(path) if path.exists() or args.checkpoint else None
    results: dict[str, Any] = {"machine": machine_line(), "cpu_count": os.cpu_count()}
    print(f"machine: {results['machine']}")
    for name in SECTIONS:  # in this order, whatever the order asked
        if name in sections:
            RUNNERS[name](args, ckpt, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def _spec(ckpt: Checkpoint | None) -> FeatureSpec:
    return ckpt.spec if ckpt is not None else synthetic_spec()


def _features(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    feats = compute.bench_features(_spec(ckpt), args.repeats)
    results["features"] = feats
    t = feats["all_modalities"]
    print(
        f"features, one window of every modality {feats['window_shapes']}: "
        f"p50 {t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms"
    )
    for name, s in feats["per_modality"].items():
        print(f"  {name}: p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms")


def _model(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    models_to_time = {}
    if ckpt is not None:
        models_to_time[f"demo model ({Path(ckpt.path or 'model').name})"] = ckpt
    paper = compute.paper_size_checkpoint(_spec(ckpt))
    if ckpt is None or ckpt.model.config.to_dict() != paper.model.config.to_dict():
        models_to_time["HeLo, paper sizes (d=128)"] = paper
    results["model"] = {}
    for name, model_ckpt in models_to_time.items():
        figures = compute.bench_model(model_ckpt, args.repeats, args.batch)
        results["model"][name] = figures
        s, b = figures["single_window_1_thread"], figures["batched_cpu"]
        print(f"{name}, {figures['parameters']:,} parameters:")
        print(f"  one window, 1 thread: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms")
        print(
            f"  batched ({b['batch']}), {b['threads']} threads: "
            f"{b['windows_per_s_median']:.0f} windows/s (best {b['windows_per_s_best']:.0f}), "
            f"linear layers: {b['linear_layers']}, IPOT: {b['ipot']}"
        )
        if "batched_cuda" in figures:
            c = figures["batched_cuda"]
            rates = ", ".join(f"{k}: {v:.0f}/s" for k, v in c["windows_per_s_by_batch"].items())
            print(f"  CUDA {c['device']}: {rates}")


def _adaptation(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    cost = adaptation.adaptation_cost(_spec(ckpt), args.repeats)
    a, f = cost["adapt"], cost["eeg_features"]
    print(
        f"adapting one EEG window ({cost['cap']}): p50 {a['p50_ms']:.2f} ms, "
        f"p99 {a['p99_ms']:.2f} ms; its EEG features: p50 {f['p50_ms']:.2f} ms, "
        f"p99 {f['p99_ms']:.2f} ms"
    )
    results["adaptation"] = {"cost": cost}
    if ckpt is None:
        return
    accuracy = adaptation.adaptation_accuracy(ckpt)
    results["adaptation"]["accuracy"] = accuracy
    print("accuracy of the model on the same simulated subjects, by how the EEG was sent:")
    for name, metrics in accuracy.items():
        print(
            f"  {name:>16}: KL {metrics['kl']:.4f}, Chebyshev {metrics['chebyshev']:.4f}, "
            f"cosine {metrics['cosine']:.4f}, intersection {metrics['intersection']:.4f}"
        )


def _personal(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    if ckpt is None:
        raise HeloError("bench personal: needs a checkpoint (its normalisation statistics)")
    cost = personal.normalisation_cost(ckpt.spec, args.repeats)
    lines = []
    for key, what in (
        ("participant_calibrating", "participant, calibrating"),
        ("participant_settled", "participant, settled"),
        ("global", "global z-score"),
    ):
        t = cost[key]
        assert isinstance(t, dict)
        lines.append(f"{what} p50 {1e3 * t['p50_ms']:.1f} µs, p99 {1e3 * t['p99_ms']:.1f} µs")
    print(
        f"normalisation of one window ({cost['features']} features, 4 modalities): "
        + "; ".join(lines)
    )
    took = personal.adapt_time(ckpt)
    change = (
        f"; KL {took['kl_measured']} {took['kl_before']:.4f} -> {took['kl_after']:.4f}"
        if took["kl_before"] is not None
        else ""
    )
    print(
        f"streamer adapt, one participant's 10-min session ({took['windows']} windows, "
        f"{took['trials']} trials, --train {took['moving']}): {took['seconds']:.1f} s{change}"
    )
    rows = personal.personal_accuracy(ckpt)
    print(
        f"personal models on {personal.PARTICIPANTS} simulated participants the model never "
        "saw (remaining trials):"
    )
    for row in rows:
        print(
            f"  k={row.k} trials, {row.moving:>8}: KL {row.base['kl']:.4f} -> "
            f"{row.personal['kl']:.4f} ({row.kl_change:+.1f} %; {row.spread()}),"
            f" Chebyshev {row.base['chebyshev']:.4f} -> {row.personal['chebyshev']:.4f}, "
            f"{row.seconds_per_participant:.1f} s per participant"
        )
    results["personal"] = {
        "normalisation": cost,
        "adapt": took,
        "accuracy": [dataclasses.asdict(row) for row in rows],
    }


def _latency(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    chunk_s = args.device_chunk_ms / 1e3
    runs = {"synthetic 32-ch EEG 256 Hz": None, "lab cap": adaptation.LAB_CAP}
    results["latency"] = {}
    for name, style in runs.items():
        lat = runtime.live_latency(
            args.seconds,
            args.checkpoint,
            device_chunk_s=chunk_s,
            style=style,
            align=not args.round_ends,
            follow=not args.regular_ends,
        )
        results["latency"][name] = lat
        what = name if style is None else "500 Hz 64-ch cap, 4 interpolated, volts"
        print(
            f"live session ({lat['seconds']:.0f} s, hop 0.25 s, {what} + GSR + PPG + face, "
            f"device pushing every {args.device_chunk_ms:g} ms): latency p50 "
            f"{lat['latency_p50_ms']:.1f} ms, p99 {lat['latency_p99_ms']:.1f} ms, "
            f"max {lat['latency_max_ms']:.1f} ms; compute p50 "
            f"{lat['compute_p50_ms']:.1f} ms; process CPU {100 * lat['process_cpu_share']:.0f} %; "
            f"{_ends(lat)}"
        )


def _ends(figures: dict) -> str:
    """Where the run's window ends were put (streamer/hop_phase.py)."""
    phase = figures.get("ends_phase_ms")
    if phase is None:
        said = "window ends on round multiples of the hop"
    else:
        said = (
            f"window ends {phase:.0f} ms into the hop (last packet's wait seen at the start "
            f"{figures['ends_wait_ms']:.1f} ms, {figures['round_ends_wait_ms']:.1f} ms on "
            "round ends)"
        )
    if "ends_followed_p50_ms" in figures:
        said += (
            f"; the windows took in the packets that completed them: ends p50 "
            f"{figures['ends_followed_p50_ms']:.1f} ms, at most "
            f"{figures['ends_followed_max_ms']:.1f} ms past the grid"
        )
    if "hint_hop_s" in figures:
        said += (
            f"; a hop of {figures['hint_hop_s']:g} s would put every end by a packet (the "
            f"slow hops' wait {figures['hint_wait_ms']:.1f} ms against "
            f"{figures['hint_session_wait_ms']:.1f} ms)"
        )
    return said


def _reader_cpu(fig: dict) -> str:
    """The LSL reader threads' CPU, where the platform tells it."""
    share = fig.get("reader_cpu_share")
    return "" if share is None else f", LSL readers {100 * share:.0f} % of a core"


def _replay(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    path = args.recording
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="helo-bench-")) / "replay.xdf"
        print(
            f"recording {args.replay_minutes:g} min of the synthetic device for the "
            "replay figures ...",
            flush=True,
        )
        runtime.make_recording(path, args.replay_minutes)
    rep = runtime.replay_speed(path, args.checkpoint)
    results["replay"] = rep
    during = rep["rss_mb_during"] or [rep["rss_mb_after_load"]]
    anon = rep["anon_mb_during"] or [rep["anon_mb_after_load"]]
    print(
        f"replay --speed max of {rep['recording_s'] / 60:.1f} min: {rep['wall_s']:.1f} s, "
        f"{rep['x_real_time']:.0f}x real time ({rep['windows_per_s']:.0f} windows/s), "
        f"file loaded in {rep['load_s']:.1f} s; resident memory "
        f"{rep['rss_mb_before_load']:.0f} MB before load, {rep['rss_mb_after_load']:.0f} MB "
        f"after, {min(during):.0f}-{max(during):.0f} MB during the replay (anonymous "
        f"{rep['anon_mb_after_load']:.0f} MB after load, {min(anon):.0f}-{max(anon):.0f} MB "
        "during; the rest are pages of the mapped samples)"
    )


def _readers(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    cap = readers.reader_capacity(args.seconds)
    results["readers"] = cap
    for who in ("helo", "mne_lsl"):
        r = cap[who]
        lost = sum(r[m]["lost"] for m in ("eeg", "gsr", "ppg", "face"))
        print(
            f"readers {who}: {cap['eeg']} + GSR + PPG + face for {cap['seconds']:.0f} s: "
            f"{r['eeg']['received']} EEG samples, {lost} lost, CPU "
            f"{100 * r['cpu_share']:.1f} % of a core"
        )
    ratio = cap["cpu_ratio_helo_over_mne_lsl"]
    if ratio is not None:
        print(f"reader CPU, ours / mne-lsl's: {ratio:.2f}")


def _webcam(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    cam = webcam.webcam_speed(min(args.seconds, 30.0))
    results["webcam"] = cam
    fast, paced = cam["fast"], cam["paced_30fps"]
    print(
        f"webcam device, 640x480 video of a face, one CPU core: {cam['fps_one_core']:.0f} "
        f"frames/s (face model p50 {fast['process_p50_ms']:.1f} ms, p99 "
        f"{fast['process_p99_ms']:.1f} ms); paced at 30 fps: capture -> LSL p50 "
        f"{paced['latency_p50_ms']:.1f} ms, p99 {paced['latency_p99_ms']:.1f} ms, "
        f"{paced['dropped']} of {paced['captured']} frames dropped"
    )
    video = webcam.face_video(Path(tempfile.mkdtemp(prefix="helo-bench-")) / "f.avi")
    lat = runtime.live_latency(
        args.seconds,
        args.checkpoint,
        webcam_video=video,
        device_chunk_s=args.device_chunk_ms / 1e3,
        align=not args.round_ends,
        follow=not args.regular_ends,
    )
    results["latency_with_webcam"] = lat
    print(
        f"live session with the webcam device beside it ({lat['seconds']:.0f} s): latency "
        f"p50 {lat['latency_p50_ms']:.1f} ms, p99 {lat['latency_p99_ms']:.1f} ms"
    )


def _gui(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    gui = runtime.gui_speed(args.seconds)
    results["gui"] = gui
    print(
        f"desktop app ({args.seconds:.0f} s, synthetic device, {gui['timeline_s']:.0f} s "
        f"timeline, {gui['traces']} traces): {gui['redraw_per_s']:.1f} redraws/s, longest "
        f"GUI stall {gui['longest_gui_stall_ms']:.0f} ms ({gui['stalls_over_50ms']} turns "
        f"over 50 ms); latency meanwhile p50 {gui['latency_p50_ms']:.1f} ms, p99 "
        f"{gui['latency_p99_ms']:.1f} ms; memory {gui.get('rss_first_mb', 0):.0f} -> "
        f"{gui.get('rss_last_mb', 0):.0f} MB (max {gui.get('rss_max_mb', 0):.0f})"
    )


def _group(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    try:
        counts = [int(n) for n in args.participants.split(",") if n.strip()]
    except ValueError:
        raise HeloError(
            f"--participants {args.participants!r}: give counts like 1,4,8,16"
        ) from None
    if not counts or min(counts) < 1 or max(counts) > 64:
        raise HeloError(f"--participants {args.participants!r}: counts from 1 to 64")
    if not args.group_hop > 0:
        raise HeloError(f"--group-hop {args.group_hop!r}: seconds, more than 0")
    results["group"] = figures = {}
    for n in counts:
        fig = group.one_group(
            n,
            args.seconds,
            args.checkpoint,
            args.device_chunk_ms / 1e3,
            6.0,
            align=not args.round_ends,
            follow=not args.regular_ends,
            hop_s=args.group_hop,
        )
        figures[str(n)] = fig
        print(
            f"group of {n} ({fig['seconds']:.0f} s, hop {args.group_hop:g} s, devices in "
            "another process "
            f"pushing every {args.device_chunk_ms:g} ms): latency p50 "
            f"{fig.get('latency_p50_ms', float('nan')):.1f} ms, p99 "
            f"{fig.get('latency_p99_ms', float('nan')):.1f} ms (waiting for the packets p50 "
            f"{fig.get('waited_p50_ms', float('nan')):.1f}, p99 "
            f"{fig.get('waited_p99_ms', float('nan')):.1f} ms); compute per hop p50 "
            f"{fig.get('compute_per_hop_p50_ms', float('nan')):.1f} ms "
            f"({fig.get('compute_per_participant_p50_ms', float('nan')):.2f} ms per participant; "
            f"the same hop standalone {fig['standalone_hop_p50_ms']:.1f} ms); "
            f"process CPU {100 * fig['process_cpu_share']:.0f} % "
            f"({100 * fig['cpu_share_per_participant']:.1f} % per participant"
            f"{_reader_cpu(fig)}); "
            f"{'kept up' if fig['kept_up'] else 'FELL BEHIND'} "
            f"({fig['hops_handled']}/{fig['hops_due']} hops); {_ends(fig)}",
            flush=True,
        )
    largest = max(counts)
    gui = group.grid_speed(largest, min(args.seconds, 30.0))
    results["group_gui"] = gui
    print(
        f"app grid of {largest} participants: {gui['redraws_per_s']:.1f} redraws/s, longest "
        f"stall {gui['max_stall_ms']:.0f} ms ({gui['stalls_over_50ms']} over 50 ms)"
    )


def _study(args: argparse.Namespace, ckpt: Checkpoint | None, results: dict) -> None:
    folder = Path(tempfile.mkdtemp(prefix="helo-bench-study-"))
    print(f"recording 3 x {args.study_minutes:g} min of the synthetic device ...", flush=True)
    sources = [
        runtime.make_recording(folder / f"source-{i}.xdf", args.study_minutes) for i in range(3)
    ]
    paths = study.make_study(folder / "study", sources, args.study_recordings)
    fig = study.study_speed(paths, workers=os.cpu_count() or 1)
    results["study"] = fig
    n = os.cpu_count() or 1
    print(
        f"study of {fig['recordings']} recordings ({fig['recording_s'] / 60:.0f} min in all): "
        f"sequential {fig['sequential_s']:.1f} s, one thread {fig['sequential_1_thread_s']:.1f} s; "
        f"Ray, 1 worker {fig['ray_1_workers_s']:.1f} s (again on the same worker "
        f"{fig['ray_1_workers_warm_s']:.1f} s), {n} workers {fig[f'ray_{n}_workers_s']:.1f} s "
        f"(again {fig[f'ray_{n}_workers_warm_s']:.1f} s: {fig['speedup']:.2f}x the sequential "
        f"run, {fig['speedup_over_1_thread']:.2f}x the one-thread run); Ray's start "
        f"{fig[f'ray_start_{n}_s']:.1f} s not included; a worker's start "
        f"{fig['ray_worker_start_s']:.1f} s once, then Ray's overhead "
        f"{1e3 * fig['ray_overhead_per_recording_s']:.0f} ms per recording"
    )


Section = Callable[[argparse.Namespace, "Checkpoint | None", dict], None]
RUNNERS: dict[str, Section] = {
    "features": _features,
    "model": _model,
    "adaptation": _adaptation,
    "personal": _personal,
    "latency": _latency,
    "replay": _replay,
    "readers": _readers,
    "webcam": _webcam,
    "gui": _gui,
    "group": _group,
    "study": _study,
}

"""Compute figures of ``streamer bench``: features and model of one window, batched.

- ``features``: feature extraction of one window (32-ch EEG 256 Hz, GSR 32 Hz,
  PPG 64 Hz, face 30 Hz, 5 s each), p50/p99;
- ``model``: HeLo forward of one window on one CPU thread, p50/p99; batched
  throughput (windows/s) with all cores; on CUDA (when present) batched
  throughput on the GPU.

Timings use ``time.perf_counter``; medians over repetitions, so a busy neighbour on a
shared machine shows as spread, not as a false best.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from helo.models.checkpoint import Checkpoint
from helo.models.datasets.synthetic import EmotionScript, SyntheticSession
from helo.models.fast_linear import onednn_enabled
from helo.models.features.extract import FeatureBatch, extract
from helo.models.features.spec import FeatureSpec
from helo.models.helo import HeLo, HeLoConfig
from helo.models.inference import Predictor
from helo.models.ot_kernel import AVAILABLE as COMPILED_IPOT

BATCH_REPEATS = 15  # batched runs per figure: the median of 15 is stable here within ~5 %


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "n": len(ms),
    }


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def demo_windows(spec: FeatureSpec, n: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` real (simulated) windows per modality, ``[n, T, C]`` in spec channel order."""
    script = EmotionScript.tour()
    session = SyntheticSession(script, subject=seed, seed=seed)
    out = {}
    for mod in spec.modalities:
        hop = 1.0
        duration = mod.window_s + (n - 1) * hop + 0.5
        _, samples = session.read(mod.name, duration)
        cols = [session.info(mod.name).channels.index(c) for c in mod.channels]
        samples = samples[:, cols]
        step = round(hop * mod.srate_hz)
        out[mod.name] = np.stack(
            [samples[i * step : i * step + mod.expected_samples] for i in range(n)]
        )
    return out


def hop_compute(ckpt: Checkpoint, participants: int, repeats: int = 40) -> dict[str, float]:
    """One group hop's work standalone: a window of each of ``participants`` simulated
    people through features, normalising and the model in one batch, as the live worker
    does it, back to back on this thread. What a live run's compute per hop is measured
    against: the same work, the same minute, without the readers and devices beside it
    (the host's own speed moves from day to day; the ratio says what the session adds)."""
    from helo.streamer.scheduler import WindowSet
    from helo.streamer.worker import InferenceWorker

    predictor = Predictor(ckpt, device="cpu")
    predictor.warm_up(participants)
    worker = InferenceWorker(predictor)
    batch = []
    for i in range(participants):
        windows = demo_windows(ckpt.spec, 1, seed=i)
        batch.append(
            WindowSet(0, 0.0, {k: v[0] for k, v in windows.items()}, participant=f"P{i + 1:02d}")
        )
    try:
        return percentiles(time_calls(lambda: worker.handle(batch), repeats, warmup=5))
    finally:
        predictor.close()


def bench_features(spec: FeatureSpec, repeats: int) -> dict[str, Any]:
    windows = demo_windows(spec, 1)
    shapes = {k: list(v.shape[1:]) for k, v in windows.items()}
    total = percentiles(time_calls(lambda: extract(spec, windows), repeats))
    per_mod = {
        m.name: percentiles(
            time_calls(partial(extract, spec.select([m.name]), {m.name: windows[m.name]}), repeats)
        )
        for m in spec.modalities
    }
    return {"window_shapes": shapes, "all_modalities": total, "per_modality": per_mod}


def _model_inputs(spec: FeatureSpec, n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    rng = np.random.default_rng(0)
    feats = {
        m.name: torch.as_tensor(rng.standard_normal((n, *m.feature_shape)), dtype=torch.float32)
        for m in spec.modalities
    }
    return feats, torch.ones(n, len(spec.modalities), dtype=torch.bool)


def bench_model(ckpt: Checkpoint, repeats: int, batch: int) -> dict[str, Any]:
    spec, model = ckpt.spec, ckpt.model.eval().cpu()
    torch.set_num_threads(1)
    feats, present = _model_inputs(spec, 1)
    with torch.inference_mode():
        single = percentiles(time_calls(lambda: model(feats, present), repeats))
    predictor = Predictor(ckpt, device="cpu")
    batch_feats = {k: v.numpy() for k, v in _model_inputs(spec, batch)[0].items()}
    fb = FeatureBatch(batch_feats, np.ones((batch, len(spec.modalities)), bool), {})
    predictor.predict_features(fb)  # warm-up: first-call allocations are not throughput
    rates = []
    for _ in range(BATCH_REPEATS):
        start = time.perf_counter()
        predictor.predict_features(fb)
        rates.append(batch / (time.perf_counter() - start))
    predictor.close()
    out = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": {k: v for k, v in model.config.to_dict().items() if k != "modalities"},
        "single_window_1_thread": single,
        "batched_cpu": {
            "windows_per_s_median": float(np.median(rates)),
            "windows_per_s_best": float(np.max(rates)),
            "batch": batch,
            "threads": predictor.workers,
            "linear_layers": "oneDNN" if onednn_enabled() else "PyTorch default",
            "ipot": "compiled loop" if COMPILED_IPOT else "torch loop",
        },
    }
    if torch.cuda.is_available():
        out["batched_cuda"] = _bench_cuda(model, spec, batch)
    return out


def _bench_cuda(model: torch.nn.Module, spec: FeatureSpec, batch: int) -> dict[str, Any]:
    device = torch.device("cuda")
    gpu_model = model.to(device)
    rates = {}
    for size in (batch, 4 * batch, 16 * batch):
        feats, present = _model_inputs(spec, size)
        feats = {k: v.to(device) for k, v in feats.items()}
        present = present.to(device)
        with torch.inference_mode():
            for _ in range(3):
                gpu_model(feats, present)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                gpu_model(feats, present)
            torch.cuda.synchronize()
        rates[str(size)] = 10 * size / (time.perf_counter() - start)
    model.cpu()
    return {"device": torch.cuda.get_device_name(0), "windows_per_s_by_batch": rates}


def paper_size_checkpoint(spec: FeatureSpec) -> Checkpoint:
    """An untrained HeLo with the paper's sizes (d = 128, dropout irrelevant at eval)."""
    torch.manual_seed(0)
    return Checkpoint(model=HeLo(HeLoConfig.from_spec(spec)).eval(), spec=spec, kind="helo")

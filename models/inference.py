"""Features -> emotion distributions, the inference path of live and replay.

A :class:`Predictor` holds a loaded checkpoint and runs its model on feature batches
(computed from the checkpoint's own spec by the worker). Many windows (replay at full
speed, or a live worker that fell behind) are split into chunks that run in parallel
threads, one per core, when torch runs one thread per operation (the command line
sets that at start, :mod:`helo.streamer.process`), because HeLo's many small
operations scale better across windows than inside one; otherwise torch's own threads
take the whole batch. On CUDA the whole batch goes at once.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from helo.models.checkpoint import Checkpoint
from helo.models.features.extract import FeatureBatch
from helo.models.traced import TracedForward, can_trace


class Predictor:
    """Features + model of one checkpoint, on one device."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: str | torch.device = "cpu",
        *,
        workers: int | None = None,
        min_chunk: int = 16,
    ):
        self.checkpoint = checkpoint
        self.spec = checkpoint.spec
        self.device = torch.device(device)
        self.model = checkpoint.model.to(self.device).eval()
        # small batches (live) through traced graphs: no interpreter between operations
        self._logits = TracedForward(self.model) if can_trace(self.model, self.device) else None
        cpu = self.device.type == "cpu"
        self.workers = max(1, workers or (os.cpu_count() or 1)) if cpu else 1
        self.min_chunk = min_chunk
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="helo")
            if (self.workers > 1)
            else None
        )

    def warm_up(self, windows: int) -> None:
        """Trace the graphs a live session uses first (``windows`` per hop, with every
        modality and with one missing), so that their one-off cost (100-200 ms each) is
        paid before the first window instead of in its latency."""
        if self._logits is None:
            return
        g = torch.Generator().manual_seed(0)
        feats = {
            m.name: torch.randn(windows, *m.feature_shape, generator=g)
            for m in self.spec.modalities
        }
        complete = torch.ones(windows, len(self.spec.modalities), dtype=torch.bool)
        masks = [complete]
        if len(self.spec.modalities) > 1:
            partial = complete.clone()
            partial[0, -1] = False
            masks.append(partial)
        with torch.inference_mode():
            for present in masks:
                self._logits(feats, present)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def predict_features(self, batch: FeatureBatch) -> np.ndarray:
        """Distributions ``[W, K]`` of a feature batch (NaN rows where nothing is present)."""
        n = len(batch)
        out = np.full((n, self.spec.n_labels), np.nan)
        rows = np.flatnonzero(batch.present.any(axis=1))
        if not len(rows):
            return out
        values = {k: np.nan_to_num(v[rows]) for k, v in batch.values.items()}
        present = batch.present[rows]
        chunks = self._chunks(len(rows))
        pool = self._pool
        if len(chunks) == 1 or pool is None:
            out[rows] = self._forward(values, present)
        else:
            parts = pool.map(
                lambda s: self._forward({k: v[s] for k, v in values.items()}, present[s]), chunks
            )
            out[rows] = np.concatenate(list(parts))
        return out

    def _chunks(self, n: int) -> list[slice]:
        if self._pool is None or n < 2 * self.min_chunk or torch.get_num_threads() > 1:
            return [slice(0, n)]
        count = min(self.workers, n // self.min_chunk)
        edges = np.linspace(0, n, count + 1).astype(int)
        return [slice(a, b) for a, b in itertools.pairwise(edges)]

    def _forward(self, values: Mapping[str, np.ndarray], present: np.ndarray) -> np.ndarray:
        # Attention softmaxes of masked or far-off tokens underflow into denormal floats,
        # which x86 CPUs compute with microcode: flushed to zero, a batch of 8 windows
        # takes 7 ms instead of 30 (one thread; docs/performance.md). The flag belongs to
        # the calling thread (the worker's, or a pool thread's), hence set here.
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)
        with torch.inference_mode():
            feats = {
                k: torch.as_tensor(v, dtype=torch.float32, device=self.device)
                for k, v in values.items()
            }
            mask = torch.as_tensor(present, device=self.device)
            logits = self._logits(feats, mask) if self._logits else self.model(feats, mask)
            return torch.softmax(logits, dim=-1).double().cpu().numpy()

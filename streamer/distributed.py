"""Ray, the engine of batch work: a study's recordings, cross-validation folds.

A local Ray instance by default (started here, shut down after), or the cluster of
``--ray-address`` / ``RAY_ADDRESS`` (the cluster's nodes need this package
installed). Ray distributes the tasks, retries those whose worker died, and accounts
CPUs and GPUs per task; nothing here schedules.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from helo.models.datasets.windows import WindowDataset
from helo.models.evaluation import FoldMap, Job, Result

log = logging.getLogger(__name__)


def start_ray(address: str | None = None, workers: int | None = None) -> bool:
    """Connect to a cluster (``address`` or RAY_ADDRESS) or start a local instance with
    ``workers`` CPUs (default: all); True when this call started it (the caller then
    shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False)
        log.info("Ray: connected to %s (%s CPUs)", address, ray.cluster_resources().get("CPU"))
    else:
        cpus = workers or os.cpu_count() or 1
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        log.info("Ray: a local instance with %d CPUs", cpus)
    return True


def add_ray_arguments(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--ray", action="store_true", help=f"run {what} as Ray tasks (a local instance)")
    p.add_argument(
        "--ray-address", help=f"run {what} on this Ray cluster (default: RAY_ADDRESS if --ray)"
    )
    p.add_argument("--workers", type=int, help="CPUs of the local Ray instance (default: all)")


def fold_map_from(args: argparse.Namespace) -> FoldMap | None:
    """Ray folds when the command line asks for them (``--ray``, ``--ray-address``)."""
    if not (getattr(args, "ray", False) or getattr(args, "ray_address", None)):
        return None
    return ray_fold_map(args.ray_address, getattr(args, "workers", None))


def ray_fold_map(address: str | None = None, workers: int | None = None) -> FoldMap:
    """Folds as Ray tasks of one CPU (and one GPU when the cluster has GPUs), the data
    sets put into Ray's object store once; results in job order. Each fold trains with
    one torch thread, so a sequential run with one thread gives the same numbers."""

    def fold_map(
        run: Callable[[Mapping[str, WindowDataset], Job], Result],
        datasets: Mapping[str, WindowDataset],
        jobs: list[Job],
    ) -> Iterator[Result]:
        import ray

        started = start_ray(address, workers)
        try:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            task: Any = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(_run_fold)
            shared = ray.put(datasets)
            refs = [task.remote(run, shared, job) for job in jobs]
            for ref in refs:
                yield ray.get(ref)
        finally:
            if started:
                ray.shutdown()

    return fold_map


def _run_fold(
    run: Callable[[Mapping[str, WindowDataset], Job], Result],
    datasets: Mapping[str, WindowDataset],
    job: Job,
) -> Result:
    import torch

    torch.set_num_threads(1)  # one CPU per task (Ray's accounting)
    return run(datasets, job)

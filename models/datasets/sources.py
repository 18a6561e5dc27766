"""Data sources by name, as the command line gives them.

``synthetic``                      the simulated benchmark (see ``synthetic_windows``)
``dmer:PATH``                      DMER feature files (folder or .mat)
``wesad:PATH``                     WESAD root folder (S<n>/S<n>.pkl)
``xdf:PATH[,PATH...]``             labelled XDF recordings (files or folders of them)
``PATH.npz``                       a cached window data set (``streamer train --cache``)
"""

from __future__ import annotations

from pathlib import Path

from helo.models.datasets.windows import WindowDataset
from helo.models.errors import DatasetError
from helo.models.features.adapt import AdaptOptions
from helo.models.features.spec import FeatureSpec

SOURCE_HELP = "synthetic | dmer:PATH | wesad:PATH | xdf:PATH[,PATH...] | FILE.npz"


def load_source(
    source: str,
    spec: FeatureSpec | None = None,
    synthetic: dict | None = None,
    hop_s: float = 1.0,
    subject: str | None = None,
    inputs: AdaptOptions | None = None,
) -> WindowDataset:
    """Load the data set ``source`` names (see the module docstring); ``inputs`` says
    what the lab knows of its recordings' streams (labels, montage, units)."""
    kind, _, rest = source.partition(":")
    if source == "synthetic":
        from helo.models.datasets.synthetic_windows import SyntheticConfig, make_synthetic_dataset

        return make_synthetic_dataset(SyntheticConfig(**(synthetic or {})))
    if kind == "dmer" and rest:
        from helo.models.datasets.dmer import load_dmer

        return load_dmer(rest)
    if kind == "wesad" and rest:
        from helo.models.datasets.wesad import load_wesad

        return load_wesad(rest, hop_s=hop_s)
    if kind == "xdf" and rest:
        from helo.models.datasets.synthetic_windows import synthetic_spec
        from helo.models.datasets.xdf_labels import load_labelled_xdf

        paths = []
        for part in rest.split(","):
            path = Path(part)
            paths += sorted(path.glob("*.xdf")) if path.is_dir() else [path]
        if not paths:
            raise DatasetError(f"{rest}: no .xdf files there")
        return load_labelled_xdf(
            paths, spec or synthetic_spec(), hop_s=hop_s, subject=subject, inputs=inputs
        )
    if source.endswith(".npz"):
        return WindowDataset.load(source)
    raise DatasetError(f"unknown data source {source!r}; use {SOURCE_HELP}")

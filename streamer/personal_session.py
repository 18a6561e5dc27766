"""A personal model from the running session: its labelled trials, fine-tuned, switched to.

After a few labelled trials (the session's EmotionLabels stream), the session holds
what :func:`helo.models.personal.adapt_model` needs: the raw features of every window
so far (:class:`~helo.streamer.window_log.WindowLog`) and the label spans. The
windows that lie wholly inside a labelled span are trained on; every window counts
for the participant's normalisation statistics, in order, as in the session. The
personal checkpoint is written to the personal models folder and the session goes
on with it (:meth:`~helo.streamer.session.Session.switch_model`): no stream is
reopened and the participant's statistics are kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helo.models.checkpoint import load_checkpoint
from helo.models.datasets.windows import WindowDataset
from helo.models.datasets.xdf_labels import LabelSpan
from helo.models.errors import HeloError
from helo.models.personal import AdaptConfig, AdaptResult, adapt_model, save_personal
from helo.streamer.demo import personal_dir
from helo.streamer.session import Session

MIN_TRIALS = 2


@dataclass
class SessionTrials:
    """The session's windows as a data set, and which of them are labelled."""

    data: WindowDataset
    rows: np.ndarray  # labelled windows (inside a span)
    participant: str

    @property
    def n_trials(self) -> int:
        return len(np.unique(self.data.trials[self.rows])) if len(self.rows) else 0


def labelled_trials(session: Session, participant: str | None = None) -> SessionTrials:
    """The session's logged windows with the labels its EmotionLabels stream gave."""
    if session.participants:
        raise HeloError(
            "personal model: made in a one-person session; for a group's participant, "
            "record the session and run streamer adapt on the recording"
        )
    if session.window_log is None:
        raise HeloError("personal model: this session keeps no windows (a live session does)")
    spans = session.label_reader.spans() if session.label_reader is not None else []
    spans = [s for s in spans if not s[2].baseline]
    t_end, values, present = session.window_log.snapshot()
    spec = session.spec
    n = len(t_end)
    targets = np.full((n, spec.n_labels), 1.0 / spec.n_labels)  # unlabelled: never trained on
    trials = np.array([""] * n, dtype=object)
    labelled = np.zeros(n, dtype=bool)
    for number, (start, end, span) in enumerate(spans, start=1):
        inside = (t_end - spec.max_window_s >= start - 1e-6) & (t_end <= end + 1e-6)
        targets[inside] = span.distribution
        trials[inside] = span.trial or f"trial#{number}"
        labelled |= inside
    who = participant or _participant(spans) or "participant"
    data = WindowDataset(
        spec=spec,
        values=values,
        present=present,
        targets=targets,
        subjects=np.array([who] * n),
        trials=trials.astype(str),
        t_end_s=t_end,
        name="session",
    )
    rows = np.flatnonzero(labelled & present.any(axis=1))
    return SessionTrials(data, rows, who)


def make_personal_model(
    session: Session,
    config: AdaptConfig | None = None,
    out: Path | None = None,
    switch: bool = True,
) -> tuple[Path, AdaptResult]:
    """Fine-tune the session's model on its labelled trials, save it, and (``switch``)
    go on predicting with it."""
    base = session.checkpoint
    if base is None:
        raise HeloError("personal model: the session has no model yet")
    trials = labelled_trials(session)
    if trials.n_trials < MIN_TRIALS:
        raise HeloError(
            f"personal model: {trials.n_trials} labelled trial(s) so far; "
            f"need {MIN_TRIALS} or more (labels come from the session's EmotionLabels stream)"
        )
    result = adapt_model(base, trials.data, config or AdaptConfig(), rows=trials.rows)
    stem = Path(base.path or "model").stem
    path = out or personal_dir() / f"{trials.participant}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = save_personal(path, base, result, source="live session")
    if switch:
        session.switch_model(load_checkpoint(path))
    return path, result


def _participant(spans: list[tuple[float, float, LabelSpan]]) -> str | None:
    names = {s[2].subject for s in spans if s[2].subject}
    return names.pop() if len(names) == 1 else None

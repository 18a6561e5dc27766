"""Channel labels as labs write them, matched to the names a model was trained on.

Amplifiers label the same electrode in many ways: ``EEG Fp1-Ref``, ``FP1``,
``Fp1-A1``, the old 10-20 names ``T3``/``T4``/``T5``/``T6`` (now T7/T8/P7/P8), or
BioSemi's ``A1..B32`` of an ABC cap. :func:`canonical_label` reduces a label to
one comparable key; :func:`montage_labels` translates ABC names into the 10-20
names of the standard montage MNE ships for that cap (``--montage biosemi64``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from helo.models.errors import HeloError

OLD_1020_NAMES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}
_PREFIX = re.compile(r"^(?:eeg|exg)[\s_\-:]+", re.IGNORECASE)
_REFERENCE = re.compile(
    r"[\s_\-/]+(?:ref|reference|a1|a2|m1|m2|le|re|ar|avg|car|cz|a1a2|m1m2|lm|rm)$",
    re.IGNORECASE,
)
ABC_LABEL = re.compile(r"^([A-H])(\d{1,2})$", re.IGNORECASE)


class ChannelLabelError(HeloError):
    """Channel labels that cannot be read or translated."""


def canonical_label(label: str) -> str:
    """The key two labels of one electrode share: ``"EEG Fp1-Ref"`` -> ``"fp1"``,
    ``"T3"`` -> ``"t7"``. A label that is only a reference (``"A1"`` alone) stays."""
    key = label.strip()
    key = _PREFIX.sub("", key)
    stripped = _REFERENCE.sub("", key)
    key = (stripped or key).strip().lower()
    return OLD_1020_NAMES.get(key, key)


def montage_names(montage: str) -> tuple[str, ...]:
    """The channel names of one of MNE's standard montages, in the montage's order."""
    return _montage_names(montage.strip().lower())


@lru_cache(maxsize=8)
def _montage_names(montage: str) -> tuple[str, ...]:
    import mne

    known = mne.channels.get_builtin_montages()
    if montage not in known:
        raise ChannelLabelError(
            f"--montage {montage!r}: not one of MNE's standard montages ({', '.join(known)})"
        )
    return tuple(mne.channels.make_standard_montage(montage).ch_names)


def abc_index(label: str) -> int | None:
    """Position of a BioSemi ABC label in its cap: A1 -> 0, A32 -> 31, B1 -> 32."""
    match = ABC_LABEL.match(label.strip())
    if match is None:
        return None
    bank, number = match.group(1).upper(), int(match.group(2))
    if not 1 <= number <= 32:
        return None
    return (ord(bank) - ord("A")) * 32 + number - 1


def montage_labels(labels: Sequence[str], montage: str) -> tuple[str, ...]:
    """``labels`` with BioSemi ABC names (A1..H32) replaced by the names of ``montage``
    at the same position; other labels (EXG1, Status, ...) are kept. Unlabelled
    channels take the montage's names in order, as far as it has names."""
    names = montage_names(montage)
    out = []
    for position, label in enumerate(labels):
        index = abc_index(label) if label.strip() else position
        out.append(names[index] if index is not None and index < len(names) else label)
    return tuple(out)


def parse_channel_list(text: str | Sequence[str], where: str) -> tuple[str, ...]:
    """``"Fp1,Fp2,F3"`` (a flag) or a list (a config file) -> labels."""
    items = text.split(",") if isinstance(text, str) else list(text)
    labels = tuple(str(item).strip() for item in items)
    if not labels or not all(labels):
        raise ChannelLabelError(f"{where}: expected comma-separated channel labels, got {text!r}")
    return labels

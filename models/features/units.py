"""Physical units: what a stream says (or seems) to send, turned into what a model expects.

EEG features assume microvolts and GSR features microsiemens (conductance). A
stream's channel ``unit`` (LSL/XDF description) is read when present: volts and
millivolts become microvolts, siemens and millisiemens microsiemens, and a
*resistance* (ohms, kilo-ohms, mega-ohms) becomes conductance (1/R). Without a
unit, the amplitude of the first window is compared with what each unit would
look like (EEG deviates by microvolts, i.e. 1e-5 V; skin conductance is 0.5-50
µS, i.e. 20-2000 kΩ) and the choice is said once, so a wrong guess is seen and
corrected with ``--units eeg=uV``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helo.models.errors import HeloError

# unit spelled (lower case, "µ"/"μ" as "u") -> (quantity, factor to the base unit)
_SPELLINGS: tuple[tuple[tuple[str, ...], str, float], ...] = (
    (("v", "volt", "volts"), "voltage", 1.0),
    (("mv", "millivolt", "millivolts"), "voltage", 1e-3),
    (("uv", "microvolt", "microvolts"), "voltage", 1e-6),
    (("nv", "nanovolt", "nanovolts"), "voltage", 1e-9),
    (("s", "siemens"), "conductance", 1.0),
    (("ms", "millisiemens"), "conductance", 1e-3),
    (("us", "microsiemens", "umho", "umhos"), "conductance", 1e-6),
    (("ns", "nanosiemens"), "conductance", 1e-9),
    (("ohm", "ohms", "Ω"), "resistance", 1.0),
    (("kohm", "kohms", "kiloohm", "kiloohms", "kΩ"), "resistance", 1e3),
    (("megaohm", "megaohms"), "resistance", 1e6),
)
_UNITS = {name: (quantity, factor) for names, quantity, factor in _SPELLINGS for name in names}

# What each modality's features expect: (quantity, factor of the expected unit).
EXPECTED = {"eeg_de": ("voltage", 1e-6), "gsr_stats": ("conductance", 1e-6)}
EXPECTED_NAME = {"eeg_de": "µV", "gsr_stats": "µS"}


class UnitError(HeloError):
    """A unit that cannot be read or converted."""


def parse_unit(text: str) -> tuple[str, float] | None:
    """``"microvolts"`` -> ``("voltage", 1e-6)``; None for no unit or an unknown one."""
    raw = text.strip()
    if not raw:
        return None
    if raw in ("MΩ", "MOhm", "Mohm", "MOhms"):  # mega, not milli: the case matters here
        return ("resistance", 1e6)
    key = raw.replace("µ", "u").replace("μ", "u").replace(" ", "")
    return _UNITS.get(key) or _UNITS.get(key.lower())


@dataclass(frozen=True)
class UnitConversion:
    """Samples in the stream's unit -> the model's unit: ``x * scale``, or, for a
    resistance, ``scale / x`` (conductance)."""

    source: str  # as the stream says it (or as it was guessed)
    target: str
    scale: float = 1.0
    reciprocal: bool = False
    guessed: bool = False

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and not self.reciprocal

    def apply(self, samples: np.ndarray) -> np.ndarray:
        if self.identity:
            return samples
        if self.reciprocal:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(samples > 0, self.scale / samples, np.nan).astype(samples.dtype)
        return (samples * self.scale).astype(samples.dtype, copy=False)

    def describe(self) -> str:
        how = "guessed from the amplitude" if self.guessed else "as the stream says"
        if self.identity:
            return f"{self.source} ({how})"
        what = "1/x" if self.reciprocal else f"x {self.scale:g}"
        return f"{self.source} -> {self.target} ({what}; {how})"


def conversion_for(feature: str, unit: str, where: str) -> UnitConversion | None:
    """The conversion a stream declaring ``unit`` needs for ``feature``; None when the
    unit says nothing we can use (then the amplitude decides)."""
    if feature not in EXPECTED:
        return UnitConversion(unit or "-", unit or "-")  # arbitrary units: taken as they come
    parsed = parse_unit(unit)
    if parsed is None:
        return None
    quantity, factor = parsed
    want_quantity, want_factor = EXPECTED[feature]
    target = EXPECTED_NAME[feature]
    if quantity == want_quantity:
        return UnitConversion(unit, target, factor / want_factor)
    if want_quantity == "conductance" and quantity == "resistance":
        # G [S] = 1 / R [ohm]; in µS: 1e6 / (R_unit * factor)
        return UnitConversion(unit, target, 1.0 / (factor * want_factor), reciprocal=True)
    raise UnitError(f"{where}: unit {unit!r} is a {quantity}; the model needs {target}")


def guess_conversion(feature: str, samples: np.ndarray) -> UnitConversion:
    """For a stream without a unit: the unit its first samples look like."""
    finite = samples[np.isfinite(samples)]
    if feature == "eeg_de" and finite.size:
        spread = float(np.median(np.abs(samples - np.nanmedian(samples, axis=0)), axis=None))
        if spread < 1e-3:
            return UnitConversion("V", "µV", 1e6, guessed=True)
        if spread < 0.2:
            return UnitConversion("mV", "µV", 1e3, guessed=True)
        return UnitConversion("µV", "µV", guessed=True)
    if feature == "gsr_stats" and finite.size:
        level = float(np.median(finite))
        if 0 < level < 1e-3:
            return UnitConversion("S", "µS", 1e6, guessed=True)
        if level > 5000:
            return UnitConversion("Ω", "µS", 1e6, reciprocal=True, guessed=True)
        if level > 100:
            return UnitConversion("kΩ", "µS", 1e3, reciprocal=True, guessed=True)
        return UnitConversion("µS", "µS", guessed=True)
    return UnitConversion("-", "-")

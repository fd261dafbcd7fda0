"""The C-arm panel's image settings as one typed value, and what the pedal does under them.

:class:`ImageSettings` is what the GUI's C-arm panel maps its widgets to (and back): the session's
:class:`~fluorosim.scenarios.commands.Technique` (fluoroscopy mode and rate, magnification,
collimation), whether the pedal takes single shots, and how the monitor shows the image (flips,
quarter turns, inversion). The panel's pulse-mode names are the vocabulary :data:`PULSE_MODES`, each
mapped here to a technique, so no widget text is parsed outside this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fluorosim.render.carm import MonitorOrientation
from fluorosim.scenarios.commands import CommandError, Technique

#: Pulse-mode names offered by the C-arm panel → (fluoroscopy mode, pulse rate pps, pedal shoots).
#: "single shot": the pedal takes one exposure (the fluoroscopy technique is then never used).
PULSE_MODES: dict[str, tuple[str, float, bool]] = {
    "continuous": ("continuous", 7.5, False),
    "pulsed 15 pps": ("pulsed", 15.0, False),
    "pulsed 7.5 pps": ("pulsed", 7.5, False),
    "pulsed 4 pps": ("pulsed", 4.0, False),
    "low dose": ("low_dose", 7.5, False),
    "single shot": ("low_dose", 7.5, True),
}
DEFAULT_PULSE_MODE = "pulsed 7.5 pps"
#: Magnification names of the C-arm panel → Technique.magnification level (0 = full field).
MAGNIFICATIONS: dict[str, int] = {"normal": 0, "mag 1": 1, "mag 2": 2}


@dataclass(frozen=True)
class ImageSettings:
    """Everything the C-arm panel sets that is not a joint."""

    technique: Technique = field(default_factory=Technique)
    pedal_single_shot: bool = False
    orientation: MonitorOrientation = field(default_factory=MonitorOrientation)
    invert: bool = False

    @property
    def pulse_mode(self) -> str:
        """The panel's pulse-mode name of these settings (inverse of :func:`image_settings`)."""
        if self.pedal_single_shot:
            return "single shot"
        t = self.technique
        for name, (fluoro, rate, single) in PULSE_MODES.items():
            if single or fluoro != t.fluoro_mode:
                continue
            if fluoro != "pulsed" or rate == float(t.pulse_rate_pps):
                return name
        return f"pulsed {t.pulse_rate_pps:g} pps"

    @property
    def magnification(self) -> str:
        """The panel's magnification name."""
        return next(
            n for n, level in MAGNIFICATIONS.items() if level == self.technique.magnification
        )

    def monitor_image(self, raw: NDArray) -> NDArray:
        """The raw detector image as the live monitor shows it (orientation, then inversion)."""
        image = self.orientation.apply(np.asarray(raw))
        return 255 - image if self.invert else image


def image_settings(
    pulse_mode: str = DEFAULT_PULSE_MODE,
    magnification: str = "normal",
    iris_fraction: float = 1.0,
    shutter_fraction: float = 1.0,
    invert: bool = False,
    orientation: MonitorOrientation | None = None,
) -> ImageSettings:
    """The typed settings for the panel's named choices; a name it does not offer is a
    :class:`CommandError` naming the field and the choices."""
    if pulse_mode not in PULSE_MODES:
        raise CommandError(f"pulse_mode: expected one of {list(PULSE_MODES)}, got {pulse_mode!r}")
    if magnification not in MAGNIFICATIONS:
        raise CommandError(
            f"magnification: expected one of {list(MAGNIFICATIONS)}, got {magnification!r}"
        )
    fluoro, rate, single = PULSE_MODES[pulse_mode]
    technique = Technique(
        fluoro, rate, MAGNIFICATIONS[magnification], float(iris_fraction), float(shutter_fraction)
    )
    return ImageSettings(technique, single, orientation or MonitorOrientation(), bool(invert))

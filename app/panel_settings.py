"""The C-arm panel's plain values ↔ the typed :class:`~fluorosim.scenarios.technique.ImageSettings`.

The panel (:class:`fluorosim.app.widgets.carm_panel.CArmPanel`) reports its widgets as a dict of
names and numbers; the session's worker takes only the typed value. This is the one place that
reads the panel's dict.
"""

from __future__ import annotations

from typing import Any

from fluorosim.render.carm import MonitorOrientation
from fluorosim.scenarios.technique import DEFAULT_PULSE_MODE, ImageSettings, image_settings


def settings_from_panel(values: dict[str, Any]) -> ImageSettings:
    """The typed settings of the panel's values (``CArmPanel.image_settings()``)."""
    return image_settings(
        pulse_mode=str(values.get("pulse_mode", DEFAULT_PULSE_MODE)),
        magnification=str(values.get("magnification", "normal")),
        iris_fraction=float(values.get("iris_fraction", 1.0)),
        shutter_fraction=float(values.get("shutter_fraction", 1.0)),
        invert=bool(values.get("invert", False)),
        orientation=MonitorOrientation(
            bool(values.get("flip_horizontal", False)),
            bool(values.get("flip_vertical", False)),
            int(values.get("rotate_quarter_turns", 0)),
        ),
    )


def panel_values(settings: ImageSettings) -> dict[str, Any]:
    """The panel's values for typed settings (inverse of :func:`settings_from_panel`)."""
    t = settings.technique
    return {
        "pulse_mode": settings.pulse_mode,
        "magnification": settings.magnification,
        "iris_fraction": t.iris_fraction,
        "shutter_fraction": t.shutter_fraction,
        "invert": settings.invert,
        "flip_horizontal": settings.orientation.flip_horizontal,
        "flip_vertical": settings.orientation.flip_vertical,
        "rotate_quarter_turns": settings.orientation.rotate_quarter_turns,
    }

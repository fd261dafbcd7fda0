"""The beam and haptic policy of a live attempt: what the pedal does, when the monitor holds the last
image, how a frame's mode is labelled, and which haptic cue a tissue change sends to the device.

Headless, so the rules are the same for the GUI, tests and replay: the GUI's worker asks a
:class:`BeamPolicy` what to send to the session and to the device, and only moves widgets.
"""

from __future__ import annotations

from fluorosim.scenarios.commands import Command, Pedal, Shot
from fluorosim.scenarios.technique import ImageSettings


class BeamPolicy:
    """Tracks the pedal as the trainee (or the device's foot switch) holds it.

    - In the panel's "single shot" mode a pedal press takes one exposure (:class:`Shot`) and a
      release does nothing; otherwise the pedal is live fluoroscopy (:class:`Pedal`).
    - A tracked device's foot switch drives the pedal when the mouse is not the instrument.
    - When the beam goes off the monitor keeps the last image (last-image hold).
    """

    def __init__(self) -> None:
        #: Whether live fluoroscopy is on (the pedal held outside single-shot mode).
        self.fluoro_on = False

    def pedal(self, pressed: bool, settings: ImageSettings) -> Command | None:
        """The session command for a pedal press or release (None: nothing to send)."""
        if settings.pedal_single_shot:
            return Shot() if pressed else None
        self.fluoro_on = pressed
        return Pedal(pressed)

    def device_pedal(self, switch_pressed: bool | None, mouse_instrument: bool) -> bool | None:
        """The pedal state to apply for a device's foot switch (None: leave the pedal alone).

        ``switch_pressed`` is None until the device has reported; the mouse has no foot switch.
        """
        if switch_pressed is None or mouse_instrument or switch_pressed == self.fluoro_on:
            return None
        return switch_pressed

    @staticmethod
    def holds_last_image(beam_on: bool, have_frame: bool) -> bool:
        """Whether the monitor shows the last frame as a hold now (the beam went off)."""
        return not beam_on and have_frame

    def frame_mode(self, settings: ImageSettings) -> str:
        """The mode shown on a frame: the pulse mode while fluoroscopy runs, else a single shot."""
        return settings.pulse_mode if self.fluoro_on else "single shot"

    @staticmethod
    def haptic_level(tissue_label: str) -> int:
        """The STP/1 HAPT level (0–255) for the tissue the tip entered (a phantom label name)."""
        from fluorosim.haptics.serial_source import tissue_to_haptic_level

        return tissue_to_haptic_level(tissue_label)

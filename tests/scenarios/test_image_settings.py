"""The C-arm panel's settings as one typed value (scenarios.technique), headless."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.render.carm import MonitorOrientation
from fluorosim.scenarios.commands import CommandError, Technique
from fluorosim.scenarios.technique import MAGNIFICATIONS, PULSE_MODES, ImageSettings, image_settings


@pytest.mark.parametrize("name", list(PULSE_MODES))
def test_every_pulse_mode_name_maps_to_a_technique_and_back(name):
    settings = image_settings(pulse_mode=name)
    assert settings.pulse_mode == name
    assert settings.pedal_single_shot == (name == "single shot")


def test_named_choices_give_the_session_technique():
    settings = image_settings("pulsed 15 pps", "mag 2", 0.6, 0.8)
    assert settings.technique == Technique("pulsed", 15.0, 2, 0.6, 0.8)
    assert settings.magnification == "mag 2"
    assert image_settings("continuous").technique.frame_rate_pps == 25.0
    assert image_settings("low dose").technique.fluoro_mode == "low_dose"
    assert {image_settings(magnification=m).technique.magnification for m in MAGNIFICATIONS} == {
        0,
        1,
        2,
    }
    assert ImageSettings().pulse_mode == "pulsed 7.5 pps"  # the panel's default


def test_names_the_panel_does_not_offer_are_refused_with_the_field_named():
    with pytest.raises(CommandError, match="pulse_mode: expected one of"):
        image_settings(pulse_mode="pulsed 30 pps")
    with pytest.raises(CommandError, match="magnification"):
        image_settings(magnification="mag 3")
    with pytest.raises(CommandError, match="iris_fraction"):
        image_settings(iris_fraction=0.05)


def test_the_monitor_image_is_oriented_then_inverted():
    raw = np.arange(6, dtype=np.uint8).reshape(2, 3)
    settings = image_settings(invert=True, orientation=MonitorOrientation(flip_horizontal=True))
    assert settings.monitor_image(raw).tolist() == [[253, 254, 255], [250, 251, 252]]
    assert image_settings().monitor_image(raw).tolist() == raw.tolist()

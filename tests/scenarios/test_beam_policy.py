"""The pedal, last-image hold and haptic cue policy (scenarios.pedal), headless, on a real session."""

from __future__ import annotations

import numpy as np

from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.pedal import BeamPolicy
from fluorosim.scenarios.session import Session
from fluorosim.scenarios.technique import image_settings


def session_on(patient, renderer) -> Session:
    return Session(
        load_shipped("sij-lateral"), patient, renderer, None, lambda: 0.0, np.random.default_rng(1)
    )


def test_single_shot_mode_turns_a_press_into_one_exposure(synthetic_patient, stand_in_renderer):
    session = session_on(synthetic_patient, stand_in_renderer)
    policy = BeamPolicy()
    settings = image_settings("single shot")
    for pressed, hold_s in ((True, 1.0), (False, 0.0)):
        command = policy.pedal(pressed, settings)
        if command is not None:
            session.command(command)
        session.step(hold_s)
    assert session.counters["shots"] == 1 and session.counters["frames"] == 1
    assert [s.mode for s in session.log.shots] == ["single"]
    assert not policy.fluoro_on and policy.frame_mode(settings) == "single shot"


def test_pulsed_mode_is_live_fluoroscopy_at_the_panel_rate(synthetic_patient, stand_in_renderer):
    session = session_on(synthetic_patient, stand_in_renderer)
    policy = BeamPolicy()
    settings = image_settings("pulsed 4 pps")
    session.command(settings.technique)
    session.command(policy.pedal(True, settings))
    assert policy.frame_mode(settings) == "pulsed 4 pps"
    session.step(1.0)  # pulses at 0, 0.25, 0.5, 0.75 and 1.0 s
    session.command(policy.pedal(False, settings))
    assert session.counters["shots"] == 1 and session.counters["frames"] == 5
    assert policy.holds_last_image(False, session.last_frame is not None)
    assert not policy.holds_last_image(True, True) and not policy.holds_last_image(False, False)


def test_the_device_foot_switch_drives_the_pedal_unless_the_mouse_is_the_instrument():
    policy = BeamPolicy()
    settings = image_settings()
    assert policy.device_pedal(None, mouse_instrument=False) is None  # not reported yet
    assert policy.device_pedal(True, mouse_instrument=True) is None
    assert policy.device_pedal(False, mouse_instrument=False) is None  # already off
    assert policy.device_pedal(True, mouse_instrument=False) is True
    policy.pedal(True, settings)
    assert policy.device_pedal(True, mouse_instrument=False) is None
    assert policy.device_pedal(False, mouse_instrument=False) is False


def test_haptic_cue_is_stiffer_for_bone_than_for_fat_and_air():
    levels = {
        name: BeamPolicy.haptic_level(name)
        for name in ("L4_pedicle_left", "L4_body", "disc_L4_L5", "fat", "background")
    }
    assert levels["L4_pedicle_left"] == 255
    assert levels["L4_pedicle_left"] > levels["L4_body"] > levels["disc_L4_L5"] > levels["fat"]
    assert levels["fat"] >= levels["background"] == 0  # air: no resistance

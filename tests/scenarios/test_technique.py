"""The C-arm technique (fluoroscopy mode and rate, magnification, collimation) reaches the frames,
the dose and the recording."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recording import AttemptWriter, read_attempt
from fluorosim.scenarios.session import Session


def headless_session(patient, renderer=None, **kwargs) -> Session:
    return Session(
        load_shipped("sij-lateral"),
        patient,
        renderer,
        None,
        lambda: 0.0,
        np.random.default_rng(3),
        **kwargs,
    )


def pedal_for(session: Session, seconds: float) -> None:
    session.command(cmd.Pedal(True))
    session.step(seconds)
    session.command(cmd.Pedal(False))


def test_technique_json_round_trip_and_validation():
    technique = cmd.Technique("low_dose", 4.0, 1, 0.6, 0.8)
    assert cmd.command_from_json(cmd.command_to_json(technique)) == technique
    with pytest.raises(cmd.CommandError, match="fluoro_mode"):
        cmd.command_from_json({"technique": {"fluoro_mode": "turbo"}}, "steps[2]")
    with pytest.raises(cmd.CommandError, match=r"steps\[2\].technique: unknown field"):
        cmd.command_from_json({"technique": {"zoom": 2}}, "steps[2]")
    with pytest.raises(cmd.CommandError, match="iris_fraction"):
        cmd.Technique(iris_fraction=0.05)


def test_pulse_rate_sets_the_frames_and_low_dose_the_kerma(synthetic_patient):
    pulsed = headless_session(synthetic_patient)
    pulsed.command(cmd.Technique("pulsed", 15.0))
    pedal_for(pulsed, 2.0)
    assert pulsed.counters["frames"] == 31  # one at once, then every 1/15 s for 2 s
    low = headless_session(synthetic_patient)
    low.command(cmd.Technique("low_dose", 15.0))
    pedal_for(low, 2.0)
    assert low.counters["frames"] == 31
    # carm.md: pulsed + low dose ≈ −83 % against continuous; low dose is well below plain pulsed
    assert low.counters["air_kerma_mgy"] < 0.6 * pulsed.counters["air_kerma_mgy"]
    continuous = headless_session(synthetic_patient)
    continuous.command(cmd.Technique("continuous"))
    pedal_for(continuous, 1.0)
    assert continuous.counters["frames"] == 26  # 25 frames a second
    assert continuous.counters["air_kerma_mgy"] > pulsed.counters["air_kerma_mgy"] / 2.0


def test_collimation_cuts_the_kerma_area_product(synthetic_patient):
    kap = {}
    for iris in (1.0, 0.5):
        session = headless_session(synthetic_patient)
        session.command(cmd.Technique(iris_fraction=iris))
        session.command(cmd.Shot())
        kap[iris] = session.counters["kap_gycm2"]
    # the iris at half the field diameter exposes about a quarter of the area
    assert kap[0.5] == pytest.approx(0.25 * kap[1.0], rel=0.25)


def test_magnification_narrows_the_field(synthetic_patient, stand_in_renderer):
    session = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        stand_in_renderer,
        None,
        lambda: 0.0,
        np.random.default_rng(0),
    )
    assert session.magnification_mode == "9in"
    session.command(cmd.Technique(magnification=2))
    assert session.magnification_mode == "4.5in"
    settings = session.chain_settings()
    assert settings.magnification_mode == "4.5in"


def test_technique_is_recorded_and_replayed(synthetic_patient, tmp_path):
    path = tmp_path / "attempt.jsonl"
    writer = AttemptWriter(path)
    session = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        None,
        None,
        lambda: 0.0,
        np.random.default_rng(0),
        recorder=writer,
    )
    session.command(cmd.Technique("low_dose", 4.0, 1, 0.7, 0.9))
    session.command(cmd.Shot())
    session.command(cmd.Finish())
    recorded = read_attempt(path)
    assert any(
        isinstance(c, cmd.Technique) and c.pulse_rate_pps == 4.0 for _, c in recorded.actions
    )
    assert any(e.get("kind") == "technique" for e in recorded.events)


def shot_kerma(session: Session, view: str) -> float:
    session.command(cmd.MoveCArm(view=view))
    session.command(cmd.Shot())
    return float(session.log.shots[-1].air_kerma_mgy)


def test_the_dose_rate_control_gives_a_lateral_more_dose_than_an_ap(synthetic_patient):
    """The torso is 260 mm wide and 200 mm deep: the control meters the lateral thicker and
    drives the tube current up — with a renderer exactly as without one."""
    from fluorosim.render.renderer import FluoroRenderer

    headless = headless_session(synthetic_patient)
    ap, lateral = shot_kerma(headless, "ap"), shot_kerma(headless, "lateral")
    assert lateral > 1.5 * ap
    renderer = FluoroRenderer(synthetic_patient, display_px=128)
    rendered = headless_session(synthetic_patient, renderer)
    assert shot_kerma(rendered, "ap") == pytest.approx(ap)
    assert shot_kerma(rendered, "lateral") == pytest.approx(lateral)
    assert renderer.default_exposure(rendered._joints).ma == pytest.approx(
        rendered._default_exposure("single", 7.5).ma
    )

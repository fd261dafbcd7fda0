"""Scripted attempts on the synthetic patient: every scenario's expert attempt passes, and each
failure mode of procedures.md is caught and named in the report."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.scenarios.loader import load_shipped, shipped_scenarios
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.scripts import FAILURES, expert_script, failure_script
from fluorosim.scenarios.session import Session


def run_script(patient, renderer, script, seed=1):
    parsed = parse_script(script)
    scenario = load_shipped(parsed.scenario)
    session = Session(
        scenario,
        patient,
        renderer,
        None,
        lambda: 0.0,
        np.random.default_rng(seed),
        mode=parsed.mode,
    )
    return run_actions(session, parsed.actions)


@pytest.mark.parametrize("scenario_id", sorted(shipped_scenarios()))
def test_expert_attempt_passes_every_scenario(scenario_id, synthetic_patient, stand_in_renderer):
    scenario = load_shipped(scenario_id)
    report = run_script(
        synthetic_patient, stand_in_renderer, expert_script(scenario, synthetic_patient)
    )
    assert report.passed, report.findings
    assert report.score >= 90.0
    assert report.breaches == []
    assert all(m.passed is not False for m in report.metrics.values()), report.findings
    assert stand_in_renderer.calls, "shots must be rendered by the injected renderer"


#: failure mode → (words that must appear in a finding, metric that must fail, attempt must fail)
EXPECTED = {
    "foraminal_breach": ("S1 nerve root", "foraminal_clearance_mm", True),
    "ventral_ala_breach": ("L5 nerve root on the sacral ala", "ventral_clearance_mm", True),
    "pin_into_pelvis": ("iliac artery", "breaches_major", True),
    "joint_not_crossed": ("does not cross the left SI joint", "implant_1.crosses_joint", True),
    "implants_too_close": ("apart (axis to axis)", "implant_spacing_mm", False),
    "no_confirming_view": (
        "not confirmed on the outlet view",
        "implant_1_s1.confirming_views",
        True,
    ),
    "excessive_shots": ("shots were taken", "shots", False),
    "root_contact": ("exiting L4 root", "exiting_root_clearance_mm", True),
    "bowel": ("bowel", "breaches_major", True),
    "dural_breach": ("dura", "dura_clearance_mm", True),
    "wrong_level": ("Wrong level", "level_offset_mm", True),
    "missed_joint": ("missed the joint", "in_joint_mm", True),
    "drill_excessive_shots": ("shots to reach the view", "shots", False),
    "pin_past_midline": ("crossed the sacral midline", "midline_margin_mm", True),
    "anterior_breach": ("past the anterior joint margin", "short_of_anterior_margin_mm", True),
    "too_cranial": ("of the joint height", "joint_height_fraction", False),
}


def test_every_failure_mode_has_an_expectation():
    assert set(EXPECTED) == set(FAILURES)


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failure_mode_is_caught_and_named(failure, synthetic_patient, stand_in_renderer):
    scenario = load_shipped(FAILURES[failure])
    script = failure_script(scenario, synthetic_patient, failure)
    report = run_script(synthetic_patient, stand_in_renderer, script)
    words, metric, must_fail = EXPECTED[failure]
    assert any(words in finding for finding in report.findings), report.findings
    assert report.metrics[metric].passed is False
    if must_fail:
        assert not report.passed
        assert "critical" in report.summary


def test_breach_is_reported_with_time_depth_and_the_shot_that_showed_it(
    synthetic_patient, stand_in_renderer
):
    scenario = load_shipped("sij-lateral")
    script = failure_script(scenario, synthetic_patient, "foraminal_breach")
    report = run_script(synthetic_patient, stand_in_renderer, script)
    pin = [
        b
        for b in report.breaches
        if b["label"] == "root_S1_left" and b["instrument"] == "guide_pin"
    ]
    assert pin, report.breaches
    breach = pin[0]
    assert breach["depth_mm"] >= 1.0
    assert breach["shot"] is not None
    shot_times = {e["shot"]: e["t_s"] for e in report.events if e["kind"] == "shot"}
    assert shot_times[breach["shot"]] >= breach["t_s"]
    sentence = next(f for f in report.findings if "left S1 nerve root" in f)
    assert f"at shot {breach['shot']}" in sentence and "mm at 0" in sentence

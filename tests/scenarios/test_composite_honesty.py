"""The composite is honest: skipping steps costs their full weight, and a critical failure never
shows a passing number."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.scoring.composite import CRITICAL_CAP_BELOW_PASS_MARK, capped_score
from fluorosim.scenarios.scoring.steps import completed_step_weight
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.scripts import expert_script, failure_script
from fluorosim.scenarios.session import Session
from tests.scenarios.test_scripted_attempts import run_script


def test_an_undone_step_weighs_what_a_done_step_weighs(synthetic_patient, stand_in_renderer):
    scenario = load_shipped("sij-lateral")
    report = run_script(
        synthetic_patient, stand_in_renderer, expert_script(scenario, synthetic_patient)
    )
    for step in scenario.steps:
        done_weight = sum(
            m.weight for name, m in report.metrics.items() if name.startswith(f"{step.id}.")
        )
        assert done_weight == completed_step_weight(step), step.id


def test_doing_nothing_scores_near_zero(synthetic_patient, stand_in_renderer):
    script = {
        "scenario": "sij-lateral",
        "steps": [
            {"t_s": 0, "carm": {"view": "inlet"}},
            {"t_s": 1, "shot": 1},
            {"t_s": 2, "finish": True},
        ],
    }
    parsed = parse_script(script)
    session = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        stand_in_renderer,
        None,
        lambda: 0.0,
        np.random.default_rng(0),
    )
    report = run_actions(session, parsed.actions)
    assert not report.passed
    # three steps never done outweigh the few shots' dose credit
    assert report.score < 20, report.score


def test_a_critical_failure_caps_the_score_below_the_pass_mark(
    synthetic_patient, stand_in_renderer
):
    scenario = load_shipped("sij-lateral")
    report = run_script(
        synthetic_patient,
        stand_in_renderer,
        failure_script(scenario, synthetic_patient, "foraminal_breach"),
    )
    assert not report.passed
    assert report.score <= scenario.pass_mark_pct - CRITICAL_CAP_BELOW_PASS_MARK + 1e-9
    # scaled into 0 … pass mark − 10, so a better failed attempt still ranks above a worse one
    assert capped_score(100.0, 58.0, True) == pytest.approx(48.0)
    assert capped_score(80.0, 58.0, True) == pytest.approx(38.4)
    assert capped_score(40.0, 58.0, True) == pytest.approx(19.2)
    assert capped_score(80.0, 58.0, False) == 80.0

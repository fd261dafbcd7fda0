"""Scores that cannot be gamed (issue #15): graded, monotone credit; the wrong target fails and is
named; every breach is named with depth, time and shot — on several patients.

Every attempt here is built from the patient's own landmarks and labels (tests/scenarios/
families.py), not from the scenario's target points, on seeded synthetic patients (each a moved and
scaled layout on 2 mm voxels).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fluorosim.scenarios.loader import load_shipped, shipped_scenarios
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.session import Session
from tests.scenarios import families
from tests.scenarios.conftest import StandInRenderer
from tests.scenarios.synthetic import build_synthetic_patient

SEEDS = (0, 1, 2)
PROCEDURES = ("teld-l4l5", "ield-l5s1", "sij-posterior", "sij-lateral")
DRILLS = ("drill-ferguson-l5s1", "drill-inlet", "drill-outlet", "drill-true-lateral")


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def patient(request):
    return build_synthetic_patient(request.param)


def run(patient, script, seed: int = 1):
    parsed = parse_script(script)
    scenario = load_shipped(parsed.scenario)
    session = Session(
        scenario,
        patient,
        StandInRenderer(patient),
        None,
        lambda: 0.0,
        np.random.default_rng(seed),
        mode=parsed.mode,
    )
    return run_actions(session, parsed.actions)


def strictly_falling(scores: list[float]) -> bool:
    return all(a > b for a, b in zip(scores, scores[1:], strict=False))


@pytest.mark.parametrize("scenario_id", PROCEDURES)
def test_near_misses_score_below_the_expert_and_fall_with_the_distance(scenario_id, patient):
    scenario = load_shipped(scenario_id)
    plans = families.expert_plans(scenario, patient)
    reports = [
        run(patient, families.attempt(scenario, patient, plans, shift_mm=d))
        for d in (0.0, 3.0, 6.0, 10.0, 25.0)
    ]
    scores = [r.score for r in reports]
    assert reports[0].passed and reports[0].breaches == [], reports[0].findings
    assert strictly_falling(scores), scores
    gross = reports[-1]
    assert not gross.passed and "critical" in gross.summary, gross.summary


@pytest.mark.parametrize("scenario_id", PROCEDURES)
def test_angle_errors_score_below_the_expert_and_fall_with_the_angle(scenario_id, patient):
    scenario = load_shipped(scenario_id)
    plans = families.expert_plans(scenario, patient)
    scores = [
        run(patient, families.attempt(scenario, patient, plans, turn_deg=a)).score
        for a in (0.0, 3.0, 6.0, 10.0)
    ]
    assert strictly_falling(scores), scores


@pytest.mark.parametrize("scenario_id", DRILLS)
def test_drill_view_errors_fall_with_the_angle(scenario_id, patient):
    scenario = load_shipped(scenario_id)
    scores = [
        run(patient, families.view_attempt(scenario, patient, a)).score for a in (0, 3, 6, 10)
    ]
    assert strictly_falling(scores), scores


def test_credit_curves_are_continuous_and_monotone():
    """Every graded metric of every shipped file: credit 1 inside the tolerance, falling without a
    jump, 0 at the limit."""
    for scenario_id in shipped_scenarios():
        for definition in load_shipped(scenario_id).metrics.values():
            if definition.curve == "pass_fail":
                continue
            sign = -1.0 if definition.sense == "at_least" else 1.0
            deviations = np.linspace(0.0, definition.limit * 1.2, 241)
            credits = [definition.credit(definition.reference + sign * d) for d in deviations]
            assert credits[0] == 1.0 and credits[-1] == 0.0, definition
            assert all(a >= b for a, b in zip(credits, credits[1:], strict=False)), definition
            step = deviations[1]
            slope = 1.0 / (definition.limit - definition.tolerance)
            jumps = np.abs(np.diff(credits))
            assert jumps.max() <= 1.6 * slope * step + 1e-9, definition  # no step


# -- the wrong target fails, by structure name ---------------------------------------------------


def _shifted(scenario, patient, move):
    """The expert with every tip moved by move(target, direction) → (target, direction)."""
    plans = families.expert_plans(scenario, patient)
    return families.attempt(scenario, patient, {k: move(*v) for k, v in plans.items()})


def _mirror(patient):
    midline = families.landmark(patient, "S1_body_center")[0]

    def move(target, direction):
        t = target.copy()
        t[0] = 2 * midline - t[0]
        d = direction.copy()
        d[0] = -d[0]
        return t, d

    return move


def _nearest(patient, label, point):
    value = patient.label_table[label]
    ijk = np.argwhere(patient.labels == value)
    lps = ijk @ patient.lps_from_voxel[:3, :3].T + patient.lps_from_voxel[:3, 3]
    return lps[int(np.argmin(np.linalg.norm(lps - point, axis=1)))]


def _wrong_targets(patient):
    """name → (scenario, attempt, words the finding must contain, metric that must fail)."""
    ield, teld = load_shipped("ield-l5s1"), load_shipped("teld-l4l5")
    posterior = load_shipped("sij-posterior")
    level_shift = families.landmark(patient, "disc_L4_L5_center") - families.landmark(
        patient, "disc_L5_S1_center"
    )

    def onto_lamina(target, direction):  # docked on the L5 lamina just above the window
        return _nearest(
            patient, "L5_posterior_elements", target + 8.0 * families.CRANIAL
        ), direction

    def outside_kambin(target, direction):
        return target + 12.0 * families.lateral("left") + 6.0 * families.POSTERIOR, direction

    def out_of_joint(target, direction):
        return target + 12.0 * families.lateral("left"), direction

    return {
        "ield_on_the_L5_lamina": (
            ield,
            _shifted(ield, patient, onto_lamina),
            "ended in the L5 lamina",
            "cannula.final_position",
        ),
        "ield_wrong_level": (
            ield,
            _shifted(ield, patient, lambda t, d: (t + level_shift, d)),
            "Wrong level",
            "level_offset_mm",
        ),
        "ield_wrong_side": (ield, _shifted(ield, patient, _mirror(patient)), "wrong side", None),
        "teld_wrong_side": (teld, _shifted(teld, patient, _mirror(patient)), "wrong side", None),
        "teld_outside_kambin": (
            teld,
            _shifted(teld, patient, outside_kambin),
            "Outside Kambin's triangle",
            "cannula_kambin_offset_mm",
        ),
        "dowel_outside_the_joint": (
            posterior,
            _shifted(posterior, patient, out_of_joint),
            "missed the joint",
            "in_joint_mm",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "ield_on_the_L5_lamina",
        "ield_wrong_level",
        "ield_wrong_side",
        "teld_wrong_side",
        "teld_outside_kambin",
        "dowel_outside_the_joint",
    ],
)
def test_the_wrong_target_fails_and_says_where_the_instrument_ended(case, patient):
    scenario, script, words, metric = _wrong_targets(patient)[case]
    report = run(patient, script)
    assert not report.passed and "critical" in report.summary, report.summary
    assert report.score < scenario.pass_mark_pct
    assert any(words in f for f in report.findings), report.findings
    if metric is not None:
        assert report.metrics[metric].passed is False
    # the finding names a structure the instrument is in (a label in plain words)
    named = [f for f in report.findings if words in f and " in the " in f]
    assert named, report.findings


# -- every breach named ------------------------------------------------------------------------


def _breach_cases(patient):
    posterior, lateral = load_shipped("sij-posterior"), load_shipped("sij-lateral")

    def into_canal(target, direction):
        canal = _nearest(patient, "thecal_sac", target)
        new_direction = families.unit(canal - (target - 60.0 * direction))
        return canal + 3.0 * new_direction, new_direction

    def through_anterior_margin(target, direction):
        return target + 25.0 * direction, direction

    sacrum = patient.label_table["sacrum"]

    def past_the_sacrum(target, direction):  # aimed 5 mm in front of the sacrum's anterior cortex
        entry = target - 60.0 * direction
        front = target.copy()
        while int(patient.labels_at(front[None, :])[0]) == sacrum:
            front = front + 1.0 * families.ANTERIOR
        front = front + 5.0 * families.ANTERIOR
        return front, families.unit(front - entry)

    return {
        "dowel_in_the_sacral_canal": (
            _shifted(posterior, patient, into_canal),
            "sacral canal / thecal sac",
        ),
        "dowel_past_the_anterior_margin": (
            _shifted(posterior, patient, through_anterior_margin),
            "anterior joint margin (into the pelvis)",
        ),
        "pin_through_the_anterior_sacral_cortex": (
            _shifted(lateral, patient, past_the_sacrum),
            "anterior sacral cortex",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "dowel_in_the_sacral_canal",
        "dowel_past_the_anterior_margin",
        "pin_through_the_anterior_sacral_cortex",
    ],
)
def test_every_breach_is_named_with_depth_time_and_shot(case, patient):
    script, structure = _breach_cases(patient)[case]
    report = run(patient, script)
    assert not report.passed
    hits = [b for b in report.breaches if b["structure"] == structure]
    assert hits, (report.breaches, report.findings)
    breach = hits[0]
    assert breach["depth_mm"] >= 1.0 and breach["t_s"] > 0
    assert breach["shot"] is not None, "the confirming shots show the breach"
    sentence = next(f for f in report.findings if structure in f)
    assert f"at shot {breach['shot']}" in sentence and "mm" in sentence, sentence


def test_replayed_scripts_give_the_same_report(patient):
    scenario = load_shipped("teld-l4l5")
    script = families.attempt(scenario, patient, families.expert_plans(scenario, patient), 6.0)
    first = run(patient, json.loads(json.dumps(script)), seed=4)
    again = run(patient, json.loads(json.dumps(script)), seed=4)
    assert first.to_json_text() == again.to_json_text()


def test_reports_read_plainly(patient, capsys):
    """Print a few reports as a trainee sees them (pytest -s shows them) and check the wording."""
    cases = _wrong_targets(patient)
    scenario, script, *_ = cases["ield_on_the_L5_lamina"]
    report = run(patient, script)
    for line in [report.summary, *report.findings]:
        print(line)
        assert "_" not in line.split(":", 1)[-1].replace("final_position", ""), line

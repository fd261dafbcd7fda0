"""The graded-score properties of test_graded_scores on the real generated patient (the default,
seed 0, 1 mm; cached): the reviewer's checks of issue #15 were made on it."""

from __future__ import annotations

import pytest

from tests.scenarios import test_graded_scores as graded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_patient():
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient

    return load_or_build_patient(PatientParameters())


@pytest.mark.parametrize("scenario_id", graded.PROCEDURES)
def test_near_misses_fall_with_the_distance(scenario_id, default_patient):
    graded.test_near_misses_score_below_the_expert_and_fall_with_the_distance(
        scenario_id, default_patient
    )


@pytest.mark.parametrize("scenario_id", graded.PROCEDURES)
def test_angle_errors_fall_with_the_angle(scenario_id, default_patient):
    graded.test_angle_errors_score_below_the_expert_and_fall_with_the_angle(
        scenario_id, default_patient
    )


@pytest.mark.parametrize(
    "case", ["ield_on_the_L5_lamina", "ield_wrong_level", "teld_outside_kambin"]
)
def test_the_wrong_target_fails_by_name(case, default_patient):
    graded.test_the_wrong_target_fails_and_says_where_the_instrument_ended(case, default_patient)


@pytest.mark.parametrize("case", ["dowel_in_the_sacral_canal", "dowel_past_the_anterior_margin"])
def test_breaches_named(case, default_patient):
    graded.test_every_breach_is_named_with_depth_time_and_shot(case, default_patient)

"""What the instructor's review shows, without a window, on SQLite and PostgreSQL: the records it
reads (scenarios.records.queries), the sign-off rules, the CUSUM settings it writes, and the texts
of its tables (scenarios.records.review)."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.scenarios.records import queries
from fluorosim.scenarios.records import review as headless
from fluorosim.scenarios.records.database import Actor, RecordsError
from fluorosim.scenarios.records.passmark import MIN_GROUP_SIZE
from fluorosim.scenarios.records.report import cusum_parameters_for, set_cusum_parameters
from tests.scenarios.records.conftest import make_instructor, sample_report


def record(store, trainee_id, scenario_id, score, passed, day=1, attempt_file=None):
    return store.record_attempt(
        trainee_id,
        scenario_id,
        sample_report(score, passed),
        f"2026-11-{day:02d}T10:00:00+00:00",
        f"2026-11-{day:02d}T10:20:00+00:00",
        attempt_file,
    )


def test_cohorts_attempt_and_scenarios_attempted(store):
    store.add_cohort("b-spring", "Spring")
    store.add_cohort("a-fall", "Fall")
    store.add_trainee("t-001", "A. Trainee", "a-fall")
    failed = record(store, "t-001", "sij-lateral", 45.0, False)
    record(store, "t-001", "elld-l4l5", 70.0, True, day=2)
    record(store, "t-001", "sij-lateral", 80.0, True, day=3)
    assert queries.cohorts(store) == [("a-fall", "Fall"), ("b-spring", "Spring")]
    row = queries.attempt(store, failed)
    assert row is not None and row.id == failed and row.score == 45.0 and row.passed is False
    assert row.metrics["shots"]["value"] == 14 and row.findings[1] == "14 shots."
    assert queries.attempt(store, failed + 100) is None
    assert queries.scenarios_attempted(store, "t-001") == ["elld-l4l5", "sij-lateral"]
    assert queries.scenarios_attempted(store, None) == []
    assert queries.scenarios_attempted(store, "nobody") == []


def test_pass_mark_refuses_small_groups_then_separates_experts(store):
    store.add_trainee("x-1", "Expert", is_expert=True)
    store.add_trainee("n-1", "Novice")
    record(store, "x-1", "sij-lateral", 90.0, True)
    mark, text = queries.pass_mark_for(store)
    assert mark is None and text.startswith("No pass mark:") and "at least" in text
    for i in range(MIN_GROUP_SIZE):
        record(store, "x-1", "sij-lateral", 85.0 + 2 * i, True, day=2 + i)
        record(store, "n-1", "sij-lateral", 40.0 + 3 * i, False, day=2 + i)
    record(store, "n-1", "elld-l4l5", 99.0, True, day=28)  # another scenario: not counted
    mark, text = queries.pass_mark_for(store, "sij-lateral")
    assert mark is not None and mark.novice_mean < mark.score < mark.expert_mean
    assert text.startswith(f"Pass mark {mark.score:.1f}")
    assert f"n = {MIN_GROUP_SIZE + 1}" in text and f"n = {MIN_GROUP_SIZE}" in text


def test_signoff_rules(store):
    store.add_trainee("t-001", "A. Trainee")
    failed = record(store, "t-001", "sij-lateral", 45.0, False)
    instructor = make_instructor(store)
    attempt = queries.attempt(store, failed)
    trainee = Actor("t-001", "trainee")
    assert "only an instructor signed in" in headless.signoff_refusal(
        trainee, failed, attempt, "comment", "ok"
    )
    assert "needs a comment" in headless.signoff_refusal(
        instructor, failed, attempt, "approved", ""
    )
    assert headless.signoff_refusal(instructor, failed, attempt, "approved", "why") == ""
    assert headless.needs_confirmation(attempt, "approved")
    assert not headless.needs_confirmation(attempt, "needs_practice")
    assert headless.superseded_signoff(attempt, "needs_practice") is None  # nothing signed yet
    first = store.sign_off(failed, instructor, "needs_practice", "more outlet views")
    attempt = queries.attempt(store, failed)
    assert headless.superseded_signoff(attempt, "approved")["id"] == first
    assert headless.superseded_signoff(attempt, "comment") is None
    store.sign_off(failed, instructor, "approved", "reviewed the video", True, first)
    html = headless.attempt_detail_html(queries.attempt(store, failed))
    assert "<s>needs practice by Dr Lee (dr-lee)" in html and "(superseded)" in html
    assert "approved by Dr Lee (dr-lee)" in html and "shots: 14" in html
    assert headless.attempt_cells(queries.attempt(store, failed))[:3] == [
        str(failed),
        "45.0",
        "fail ✍",
    ]


def test_cusum_settings_round_trip_and_refusals(store):
    instructor = make_instructor(store)
    values = {"p0": 0.05, "p1": 0.15, "alpha": 0.05, "beta": 0.2}
    set_cusum_parameters(store, "residents", values, instructor)
    params = cusum_parameters_for(store, "residents")
    assert (params.p0, params.p1, params.alpha, params.beta) == (0.05, 0.15, 0.05, 0.2)
    assert cusum_parameters_for(store, "default").p0 == 0.10  # other programmes keep defaults
    with pytest.raises(ValueError):
        set_cusum_parameters(store, "residents", {**values, "p1": 0.01}, instructor)
    with pytest.raises(RecordsError, match="only an instructor"):
        set_cusum_parameters(store, "residents", values, Actor("t-001", "trainee"))
    assert cusum_parameters_for(store, "residents").p1 == 0.15  # refused values left no trace


def test_attempt_events_names_the_problem(store, tmp_path):
    store.add_trainee("t-001", "A. Trainee")
    no_file = queries.attempt(store, record(store, "t-001", "sij-lateral", 45.0, False))
    events, problem = headless.attempt_events(no_file)
    assert events is None and problem == f"Attempt {no_file.id} has no attempt file to replay."
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n", encoding="utf-8")
    bad = queries.attempt(store, record(store, "t-001", "sij-lateral", 50.0, False, 2, broken))
    events, problem = headless.attempt_events(bad)
    assert events is None and problem.startswith(f"Cannot replay attempt {bad.id}:")
    assert "broken.jsonl" in problem


def test_timeline_path_and_frame_lookup():
    events = [
        {"t_s": 0.5, "kind": "pose", "data": {"tip_mm": [1, 2, 3]}},
        {"t_s": 1.0, "kind": "shot", "data": {"index": 1, "mode": "single", "view": "lateral"}},
        {"t_s": 1.0, "kind": "frame", "data": {"shot": 1}},
        {
            "t_s": 2.0,
            "kind": "breach",
            "data": {
                "structure": "S1 foramen",
                "label": "nerve",
                "depth_mm": 2.5,
                "severity": "major",
            },
        },
        {"t_s": 3.0, "kind": "pose", "data": {"tip_mm": [4, 5, 6]}},
        {"t_s": 4.0, "kind": "score", "data": {"score": 61.25, "passed": False}},
    ]
    assert headless.attempt_timeline(events) == [
        (1.0, "shot", "shot 1 (single, lateral)"),
        (2.0, "breach", "BREACH S1 foramen (nerve), 2.5 mm, major"),
        (4.0, "score", "score 61.2 (not passed)"),
    ]
    np.testing.assert_array_equal(headless.instrument_path(events), [[1, 2, 3], [4, 5, 6]])
    assert headless.instrument_path([]).shape == (0, 3)
    assert headless.frame_at([0.0, 1.0, 2.0], 0.5) == 1
    assert headless.frame_at([0.0, 1.0, 2.0], 1.0) == 1
    assert headless.frame_at([0.0, 1.0, 2.0], 9.0) == 2

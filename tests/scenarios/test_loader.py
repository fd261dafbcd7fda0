"""Scenario files: every shipped file loads, and broken files fail naming file, field and expectation."""

from __future__ import annotations

import tomllib

import pytest

from fluorosim.scenarios import vocabulary
from fluorosim.scenarios.loader import (
    ScenarioError,
    load_scenario,
    load_shipped,
    parse_scenario,
    shipped_scenarios,
)

REQUIRED_IDS = {
    "sij-lateral",
    "sij-posterior",
    "teld-l4l5",
    "ield-l5s1",
    "drill-true-lateral",
    "drill-inlet",
    "drill-outlet",
    "drill-ferguson-l5s1",
}


def test_all_required_scenarios_are_shipped():
    assert set(shipped_scenarios()) >= REQUIRED_IDS


@pytest.mark.parametrize("scenario_id", sorted(REQUIRED_IDS))
def test_every_shipped_scenario_loads_and_names_only_contract_names(scenario_id):
    scenario = load_shipped(scenario_id)
    assert scenario.id == scenario_id
    assert scenario.pass_mark_pct == 58.0
    for step in scenario.steps:
        for point in (step.entry, step.target):
            if point is None:
                continue
            for name in point.names():
                assert vocabulary.is_landmark_name(vocabulary.expand(name, scenario.side))
    for risk in scenario.risks:
        assert vocabulary.matching_labels(vocabulary.expand(risk.label, scenario.side))


def test_sij_lateral_has_three_implants_s1_s1_s2_checked_on_inlet_and_outlet():
    scenario = load_shipped("sij-lateral")
    implants = [s for s in scenario.steps if s.implant == "sij_implant"]
    assert [s.id for s in implants] == ["implant_1_s1", "implant_2_s1", "implant_3_s2"]
    assert all({"inlet", "outlet"} <= set(s.confirm_views) for s in implants)
    assert all("sij_space_{side}" in s.must_cross for s in implants)


def test_teld_has_needle_wire_dilator_cannula():
    scenario = load_shipped("teld-l4l5")
    assert [s.instrument for s in scenario.steps] == [
        "jamshidi_needle",
        "nitinol_wire",
        "dilator",
        "working_cannula",
    ]


def test_drills_forbid_named_views():
    for scenario_id in REQUIRED_IDS:
        scenario = load_shipped(scenario_id)
        assert scenario.allow_named_views == (scenario.procedure != "view_drill")


def _base() -> dict:
    return tomllib.loads(shipped_scenarios()["sij-lateral"].read_text())


def _mutate(path: list, value) -> dict:
    data = _base()
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field", "expected"),
    [
        (["format"], "something-else", "format", "expected 'fluorosim-scenario'"),
        (["version"], 99, "version", "expected one of [2]"),
        (["procedure"], "appendectomy", "procedure", "expected one of"),
        (["side"], "up", "side", "expected one of ['left', 'right']"),
        (
            ["metrics", "tip_to_target_mm", "tolerance"],
            "five",
            "metrics.tip_to_target_mm.tolerance",
            "expected a number, got 'five'",
        ),
        (
            ["metrics", "tip_to_target_mm", "tolerance"],
            -1.0,
            "metrics.tip_to_target_mm.tolerance",
            "expected a number ≥ 0",
        ),
        (
            ["steps", 1, "target", "between"],
            ["sij_center_{side}"],
            "steps[1].target.between",
            "expected exactly 2 entries",
        ),
        (["steps", 0, "target"], 42, "steps[0].target", "landmark name or a table"),
        (  # step 0's entry is a `between` point: a misspelt landmark in it
            ["steps", 0, "entry", "between"],
            ["sij_centre_{side}", "S1_body_center"],
            "steps[0].entry.between",
            "expected a landmark name (e.g. 'S1_body_center'), got 'sij_centre_{side}'",
        ),
        (["steps", 0, "instrument"], "chisel", "steps[0].instrument", "instrument of the kit"),
        (
            ["steps", 0, "confirm_views"],
            ["inlet", "sideways"],
            "steps[0].confirm_views",
            "expected a view name",
        ),
        (
            ["steps", 0, "must_cross"],
            ["sij_gap_left"],
            "steps[0].must_cross",
            "expected a label name",
        ),
        (["steps", 0, "kind"], "dance", "steps[0].kind", "expected one of ['trajectory', 'view']"),
        (["steps"], [], "steps", "non-empty array"),
        (
            ["risks", 0, "severity"],
            "mild",
            "risks[0].severity",
            "expected one of ['major', 'minor']",
        ),
        (["metrics", "kap_gycm2"], KeyError, "metrics.kap_gycm2", "is missing"),
        (["pass", "composite_pct"], 158.0, "pass.composite_pct", "expected a number ≤ 100"),
        (["patient", "colour"], "blue", "patient.colour", "unknown key"),
        (["patient", "variant"], "giant", "patient.variant", "expected one of"),
    ],
)
def test_broken_fields_name_file_field_and_expectation(path, value, field, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_mutate(path, value), "broken.toml")
    message = str(info.value)
    assert message.startswith(f"broken.toml: {field}: "), message
    assert expected in message, message
    assert info.value.field == field


def test_duplicate_step_ids_are_rejected():
    data = _base()
    data["steps"][1]["id"] = data["steps"][0]["id"]
    with pytest.raises(ScenarioError, match="step ids must be unique"):
        parse_scenario(data, "dup.toml")


def test_side_template_without_side_is_rejected():
    data = _base()
    del data["side"]
    with pytest.raises(ScenarioError, match=r"uses \{side\} but the scenario has no side"):
        parse_scenario(data, "noside.toml")


def test_garbage_bytes_and_bad_toml_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(ScenarioError, match=r"^garbage.toml: is not UTF-8 text"):
        load_scenario(garbage)
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 'fluorosim-scenario'\nversion = = 1\n")
    with pytest.raises(ScenarioError, match=r"^bad.toml: is not valid TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "missing.toml")


def test_unknown_shipped_id_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="sij-lateral"):
        load_shipped("sij-lateral-typo")

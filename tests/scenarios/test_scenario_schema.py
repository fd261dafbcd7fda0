"""Scenario files that cannot mislead (issue #15 item 6) and metrics as data (item 4).

Every shipped file is corrupted in generated ways — misspelt keys in every table, wrong types,
out-of-range values, removed required keys, deep nesting, swapped tables — and each variant must be
refused with a ScenarioError naming the file and the field, never a traceback and never a silent
load.
"""

from __future__ import annotations

import copy
import tomllib

import pytest

from fluorosim.scenarios.loader import (
    ScenarioError,
    load_shipped,
    parse_scenario,
    shipped_scenarios,
)
from fluorosim.scenarios.scoring import credit

SHIPPED = sorted(shipped_scenarios())


def _document(scenario_id: str) -> dict:
    return tomllib.loads(shipped_scenarios()[scenario_id].read_text(encoding="utf-8"))


def _set(data: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


_DELETE = object()


def corrupt_variants(data: dict) -> list[tuple[str, dict, str]]:
    """(what, corrupted document, field the message must name) — at least 30 per file."""
    variants: list[tuple[str, dict, str]] = []

    def add(what: str, path: tuple, value, field: str) -> None:
        variants.append((what, _set(data, path, value), field))

    add("version = true", ("version",), True, "version")
    add("version as text", ("version",), "2", "version")
    add("old version 1", ("version",), 1, "version")
    add("format misspelt", ("format",), "fluorosim-scenaro", "format")
    add("risks = 5", ("risks",), 5, "risks")
    add("steps = 5", ("steps",), 5, "steps")
    add("steps empty", ("steps",), [], "steps")
    add("title empty", ("title",), "", "title")
    add("title a number", ("title",), 7, "title")
    add("procedure unknown", ("procedure",), "appendectomy", "procedure")
    add("side up", ("side",), "up", "side")
    add("id with spaces", ("id",), "my scenario", "id")
    add("unknown top-level key", ("tolerence_mm",), 5.0, "tolerence_mm")
    add("patient.seed text", ("patient", "seed"), "zero", "patient.seed")
    add("patient.seed negative", ("patient", "seed"), -3, "patient.seed")
    add("patient.seed float", ("patient", "seed"), 1.5, "patient.seed")
    add("patient.voxel_mm too big", ("patient", "voxel_mm"), 30.0, "patient.voxel_mm")
    add("patient.bmi out of range", ("patient", "bmi"), 5.0, "patient.bmi")
    add("patient unknown key", ("patient", "colour"), "blue", "patient.colour")
    add("patient = list", ("patient",), [1, 2], "patient")
    add("kit.instruments text", ("kit", "instruments"), "guide_pin", "kit.instruments")
    add("kit unknown key", ("kit", "instrumnets"), [], "kit.instrumnets")
    add("kit missing", ("kit",), _DELETE, "kit")
    add("pass.composite_pct 158", ("pass", "composite_pct"), 158.0, "pass.composite_pct")
    add("pass.composite_pct text", ("pass", "composite_pct"), "58", "pass.composite_pct")
    add("pass.allow_named_views 1", ("pass", "allow_named_views"), 1, "pass.allow_named_views")
    add("pass unknown key", ("pass", "pass_mark"), 58.0, "pass.pass_mark")
    add("pass.composite_pct nan", ("pass", "composite_pct"), float("nan"), "pass.composite_pct")
    add("step id missing", ("steps", 0, "id"), _DELETE, "steps[0].id")
    add("step kind", ("steps", 0, "kind"), "dance", "steps[0].kind")
    add("step unknown key", ("steps", 0, "tolerence_mm"), 5.0, "steps[0].tolerence_mm")
    add("step old key", ("steps", 0, "tolerance_mm"), 5.0, "steps[0].tolerance_mm")
    add("confirm_views = 5", ("steps", 0, "confirm_views"), 5, "steps[0].confirm_views")
    add(
        "step metric override unknown key",
        ("steps", 0, "metrics"),
        {"tip_to_target_mm": {"tolerence": 2.0}},
        "steps[0].metrics.tip_to_target_mm.tolerence",
    )
    add(
        "step metric override beyond limit",
        ("steps", 0, "metrics"),
        {next(iter(data["metrics"])): {"tolerance": 1e5}},
        "steps[0].metrics",
    )
    add("metrics = 5", ("metrics",), 5, "metrics")
    first = next(iter(data["metrics"]))
    add("metric missing", ("metrics", first), _DELETE, f"metrics.{first}")
    add("metric unknown", ("metrics", "luck"), {"unit": "", "weight": 1.0}, "metrics.luck")
    add("metric weight text", ("metrics", first, "weight"), "two", f"metrics.{first}.weight")
    add("metric weight negative", ("metrics", first, "weight"), -1.0, f"metrics.{first}.weight")
    add("metric weight huge", ("metrics", first, "weight"), 1e9, f"metrics.{first}.weight")
    add("metric curve", ("metrics", first, "curve"), "cubic", f"metrics.{first}.curve")
    add("metric sense", ("metrics", first, "sense"), "below", f"metrics.{first}.sense")
    add("metric unit", ("metrics", first, "unit"), "furlongs", f"metrics.{first}.unit")
    add("metric misspelt key", ("metrics", first, "tolerence"), 1.0, f"metrics.{first}.tolerence")
    add("metric critical text", ("metrics", first, "critical"), "yes", f"metrics.{first}.critical")
    add("metric limit zero", ("metrics", first, "limit"), 0.0, f"metrics.{first}.limit")
    # deep nesting, as far as a TOML parser goes
    nested: list = []
    node = nested
    for _ in range(400):
        node.append([])
        node = node[0]
    add("deeply nested array", ("views",), nested, "")
    if data.get("risks"):
        add("risk severity", ("risks", 0, "severity"), "mild", "risks[0].severity")
        add("risk label typo", ("risks", 0, "label"), "thecal_sak", "risks[0].label")
        add("risk unknown key", ("risks", 0, "depth_mm"), 2.0, "risks[0].depth_mm")
        add("risk toward on enter", ("risks", 0, "toward"), "anterior", "risks[0]")
    trajectory = [i for i, s in enumerate(data["steps"]) if s["kind"] == "trajectory"]
    if trajectory:
        i = trajectory[0]
        add("entry = 42", ("steps", i, "entry"), 42, f"steps[{i}].entry")
        add(
            "target landmark typo",
            ("steps", i, "target"),
            {"landmark": "S1_body_centre"},
            f"steps[{i}].target.landmark",
        )
        add(
            "target two forms",
            ("steps", i, "target"),
            {"landmark": "S1_body_center", "mean": ["S1_body_center"]},
            f"steps[{i}].target",
        )
        add(
            "target offset text",
            ("steps", i, "target"),
            {"landmark": "S1_body_center", "lateral_mm": "ten"},
            f"steps[{i}].target.lateral_mm",
        )
        add("instrument not in kit", ("steps", i, "instrument"), "chisel", f"steps[{i}].instrument")
        add("end_labels typo", ("steps", i, "end_labels"), ["sacrumm"], f"steps[{i}].end_labels")
    else:
        add("view unknown", ("steps", 0, "view"), "sideways", "steps[0].view")
        add("view = 3", ("steps", 0, "view"), 3, "steps[0].view")
    return variants


def _cases():
    for scenario_id in SHIPPED:
        for what, document, field in corrupt_variants(_document(scenario_id)):
            yield pytest.param(scenario_id, document, field, id=f"{scenario_id}:{what}")


def test_at_least_thirty_variants_per_shipped_file():
    for scenario_id in SHIPPED:
        assert len(corrupt_variants(_document(scenario_id))) >= 30


@pytest.mark.parametrize(("scenario_id", "document", "field"), list(_cases()))
def test_a_corrupt_file_is_refused_naming_file_and_field(scenario_id, document, field):
    source = f"{scenario_id}.toml"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(document, source)
    message = str(info.value)
    assert message.startswith(f"{source}: "), message
    assert info.value.field.startswith(field), (field, message)
    assert (
        "expected" in message
        or "unknown" in message
        or "missing" in message
        or ("must" in message or "nests" in message or "needs" in message)
    ), message


def test_deeply_nested_toml_text_is_refused_not_a_recursion_error(tmp_path):
    from fluorosim.scenarios.loader import load_scenario

    path = tmp_path / "deep.toml"
    path.write_text("views = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ScenarioError, match=r"^deep.toml: "):
        load_scenario(path)


@pytest.mark.parametrize("scenario_id", SHIPPED)
def test_every_shipped_scenario_defines_every_metric_with_sane_weights(scenario_id):
    """Metrics as data: the file defines exactly the metrics its procedure measures, in the units
    the code measures them, every weight positive; geometric errors are graded (never pass/fail);
    the breach and wrong-target checks are critical."""
    scenario = load_shipped(scenario_id)
    kinds = {s.kind for s in scenario.steps}
    required = credit.required_metrics(scenario.procedure, kinds)
    assert set(scenario.metrics) == set(required)
    for name, definition in scenario.metrics.items():
        assert definition.unit == required[name]
        assert 0.0 < definition.weight <= 10.0, name
        if definition.unit in ("mm", "deg"):
            assert definition.curve in ("linear", "smoothstep"), name
            assert definition.limit > definition.pass_deviation >= definition.tolerance, name
    total = sum(d.weight for d in scenario.metrics.values())
    assert total > 0
    if "trajectory" in kinds:
        assert scenario.metric("final_position").critical
        assert scenario.metric("breaches_major").critical
        geometric = ("tip_to_target_mm", "trajectory_axial_deg", "trajectory_sagittal_deg")
        share = sum(scenario.metric(n).weight for n in geometric) / total
        assert 0.05 < share < 0.5, share  # placement matters, but not alone
    else:
        assert scenario.metric("view_angle_deg").critical

"""Read and validate scenario files (TOML) into :class:`scenarios.spec.Scenario`.

Every problem a file can have ends in a :class:`ScenarioError` whose message names the file, the
field (``steps[2].target.landmark``) and what was expected, e.g.::

    sij-lateral.toml: steps[0].tolerance_mm: expected a positive number (mm), got 'five'

The shipped scenarios live in ``scenarios/data/*.toml`` (installed with the package);
:func:`shipped_scenarios` lists them and :func:`load_shipped` loads one by id. The file format is
documented in ``scenarios/data/README.md`` and versioned by ``format``/``version`` on top.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from fluorosim.scenarios import schema, vocabulary
from fluorosim.scenarios.scoring import credit
from fluorosim.scenarios.scoring.credit import MetricDef
from fluorosim.scenarios.spec import (
    VIEW_NAMES,
    PatientSpec,
    PointSpec,
    RiskStructure,
    Scenario,
    Step,
)

#: Value of the ``format`` key every scenario file starts with.
FORMAT = schema.FORMAT
#: Scenario format versions this build reads.
SUPPORTED_VERSIONS = schema.SUPPORTED_VERSIONS
DATA_DIR = Path(__file__).resolve().parent / "data"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names file, field and expectation."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")


class _Reader:
    """Typed access to a TOML table that reports the file and dotted field on every failure."""

    def __init__(self, source: str, side: str | None = None) -> None:
        self.source = source
        self.side = side

    def fail(self, field: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, field, problem)

    def landmark(self, name: str, field: str) -> str:
        expanded = vocabulary.expand(name, self.side)
        if "{" in expanded:
            raise self.fail(field, f"'{name}' uses {{side}} but the scenario has no side")
        if not vocabulary.is_landmark_name(expanded):
            raise self.fail(
                field, f"expected a landmark name (e.g. 'S1_body_center'), got {name!r}"
            )
        return name

    def label(self, name: str, field: str) -> str:
        expanded = vocabulary.expand(name, self.side)
        if "{" in expanded:
            raise self.fail(field, f"'{name}' uses {{side}} but the scenario has no side")
        if not vocabulary.is_label_name(expanded):
            raise self.fail(field, f"expected a label name (e.g. 'root_S1_left'), got {name!r}")
        return name

    def view(self, name: str, field: str) -> str:
        if name not in VIEW_NAMES:
            raise self.fail(field, f"expected a view name {list(VIEW_NAMES)}, got {name!r}")
        return name


def _point(r: _Reader, value: str | schema.PointTable, field: str) -> PointSpec:
    if isinstance(value, str):
        return PointSpec(landmark=r.landmark(value, field))
    offsets: dict[str, Any] = {
        "lateral_mm": value.lateral_mm,
        "anterior_mm": value.anterior_mm,
        "cranial_mm": value.cranial_mm,
        "frame": value.frame,
        "clearance_mm": value.clearance_mm,
        "dorsal_to": None
        if value.dorsal_to is None
        else r.label(value.dorsal_to, f"{field}.dorsal_to"),
    }
    if value.surface is not None:
        return PointSpec(
            surface=r.landmark(value.surface, f"{field}.surface"),
            height_fraction=value.height_fraction,
            from_anterior_mm=value.from_anterior_mm,
            **offsets,
        )
    if value.landmark is not None:
        return PointSpec(landmark=r.landmark(value.landmark, f"{field}.landmark"), **offsets)
    if value.through is not None:
        if field.endswith(".entry"):
            raise r.fail(f"{field}.through", "an entry cannot lie on its own corridor")
        return PointSpec(
            through=r.landmark(value.through, f"{field}.through"), past_mm=value.past_mm, **offsets
        )
    if value.between is not None:
        a, b = (r.landmark(n, f"{field}.between") for n in value.between)
        return PointSpec(between=(a, b), fraction=value.fraction, **offsets)
    assert value.mean is not None
    return PointSpec(mean=tuple(r.landmark(n, f"{field}.mean") for n in value.mean), **offsets)


def _metric_defs(r: _Reader, doc: schema.ScenarioDocument, kinds: set[str]) -> dict[str, MetricDef]:
    required = credit.required_metrics(doc.procedure, kinds)
    for name in doc.metrics:
        if name not in required:
            raise r.fail(
                f"metrics.{name}",
                f"unknown metric for {doc.procedure} (expected one of {sorted(required)})",
            )
    defs = {}
    for name, unit in required.items():
        table = doc.metrics.get(name)
        if table is None:
            raise r.fail(
                f"metrics.{name}",
                f"is missing (every {doc.procedure} scenario defines how this metric is scored)",
            )
        if table.unit != unit:
            raise r.fail(f"metrics.{name}.unit", f"expected {unit!r}, got {table.unit!r}")
        defs[name] = MetricDef(name=name, **table.model_dump())
    return defs


def _step(
    r: _Reader, data: schema.StepTable, index: int, kit: tuple[str, ...], defs: dict[str, MetricDef]
) -> Step:
    prefix = f"steps[{index}]."
    own = credit.STEP_METRICS if data.kind == "trajectory" else credit.VIEW_STEP_METRICS
    metrics = {name: defs[name] for name in own}
    for name, override in data.metrics.items():
        if name not in own:
            raise r.fail(
                f"{prefix}metrics.{name}",
                f"not a metric of a {data.kind} step (expected one of {sorted(own)})",
            )
        changed = metrics[name].with_overrides(**override.model_dump())
        try:
            schema.check_curve(changed.curve, changed.tolerance, changed.fail_beyond, changed.limit)
        except ValueError as exc:
            raise r.fail(f"{prefix}metrics.{name}", str(exc)) from None
        metrics[name] = changed
    common = {
        "id": data.id,
        "title": data.title,
        "kind": data.kind,
        "confirm_views": tuple(r.view(v, f"{prefix}confirm_views") for v in data.confirm_views),
        "metrics": metrics,
    }
    if data.kind == "view":
        assert data.view is not None
        return Step(**common, view=r.view(data.view, f"{prefix}view"), view_level=data.view_level)
    if data.instrument not in kit:
        raise r.fail(
            f"{prefix}instrument",
            f"expected an instrument of the kit {list(kit)}, got {data.instrument!r}",
        )
    if data.implant is not None and data.implant not in kit:
        raise r.fail(
            f"{prefix}implant", f"expected an implant of the kit {list(kit)}, got {data.implant!r}"
        )
    assert data.entry is not None and data.target is not None
    return Step(
        **common,
        instrument=data.instrument,
        entry=_point(r, data.entry, f"{prefix}entry"),
        target=_point(r, data.target, f"{prefix}target"),
        end_labels=tuple(r.label(n, f"{prefix}end_labels") for n in data.end_labels),
        end_name=data.end_name,
        must_cross=tuple(r.label(n, f"{prefix}must_cross") for n in data.must_cross),
        implant=data.implant,
    )


def _patient(r: _Reader, table: schema.PatientTable) -> PatientSpec:
    values = {k: v for k, v in table.model_dump().items() if v is not None}
    ct = values.pop("ct", None)
    try:
        from fluorosim.models.phantom import PatientParameters

        PatientParameters(**values)
    except (TypeError, ValueError) as exc:
        message = str(exc).removeprefix("PatientParameters: ")
        key = next((k for k in values if message.startswith(k)), "")
        raise r.fail(f"patient.{key}" if key else "patient", message) from None
    return PatientSpec(parameters=values, ct=ct)


def parse_scenario(
    data: dict[str, Any], source: str, path: Path | None = None, text: str = ""
) -> Scenario:
    """Validate a parsed TOML document; ``source`` names the file in messages."""
    try:
        doc = schema.validate_document(data)
    except schema.SchemaError as exc:
        raise ScenarioError(source, exc.field, exc.problem) from None
    r = _Reader(source, doc.side)
    kit = tuple(doc.kit.instruments)
    if not kit and doc.procedure != "view_drill":
        raise r.fail("kit.instruments", "expected at least one instrument name")
    defs = _metric_defs(r, doc, {s.kind for s in doc.steps})
    steps = tuple(_step(r, s, i, kit, defs) for i, s in enumerate(doc.steps))
    ids = [s.id for s in steps]
    if len(set(ids)) != len(ids):
        raise r.fail("steps", f"step ids must be unique, got {ids}")
    risks = []
    for i, item in enumerate(doc.risks):
        prefix = f"risks[{i}]."
        risks.append(
            RiskStructure(
                r.label(item.label, f"{prefix}label"),
                item.severity,
                item.name,
                kind=item.kind,
                toward=item.toward,
                allowed=tuple(r.label(n, f"{prefix}allowed") for n in item.allowed),
            )
        )
    return Scenario(
        id=doc.id,
        version=doc.version,
        title=doc.title,
        description=doc.description,
        procedure=doc.procedure,
        side=doc.side,
        level=doc.level,
        patient=_patient(r, doc.patient),
        kit=kit,
        steps=steps,
        risks=tuple(risks),
        pass_mark_pct=doc.pass_.composite_pct,
        allow_named_views=doc.pass_.allow_named_views,
        views=tuple(r.view(v, "views") for v in doc.views),
        metrics=defs,
        path=path,
        text=text,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario file; ScenarioError naming the file on any problem."""
    path = Path(path)
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(
            source, "", "is not UTF-8 text (expected a TOML scenario file)"
        ) from None
    return parse_scenario_text(text, source, path)


def parse_scenario_text(text: str, source: str, path: Path | None = None) -> Scenario:
    """Validate scenario TOML text (e.g. embedded in a recording); ``source`` names it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"is not valid TOML ({exc})") from None
    except RecursionError:
        raise ScenarioError(
            source, "", f"nests tables/arrays deeper than {schema.MAX_DEPTH} levels"
        ) from None
    return parse_scenario(data, source, path, text)


def shipped_scenarios() -> dict[str, Path]:
    """Scenario id (file stem) → path of every shipped scenario file."""
    return {p.stem: p for p in sorted(DATA_DIR.glob("*.toml"))}


def load_shipped(scenario_id: str) -> Scenario:
    """Load a shipped scenario by id; ScenarioError listing the ids when unknown."""
    files = shipped_scenarios()
    if scenario_id not in files:
        raise ScenarioError(
            scenario_id, "", f"unknown scenario id (expected one of {sorted(files)})"
        )
    return load_scenario(files[scenario_id])

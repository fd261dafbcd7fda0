"""Read and validate scenario files (TOML) into :class:`scenarios.spec.Scenario`.

Every problem a file can have ends in a :class:`ScenarioError` whose message names the file, the
field (``steps[2].target.landmark``) and what was expected, e.g.::

    sij-lateral.toml: steps[0].tolerance_mm: expected a positive number (mm), got 'five'

The shipped scenarios live in ``scenarios/data/*.toml`` (installed with the package);
:func:`shipped_scenarios` lists them and :func:`load_shipped` loads one by id. The file format is
documented in ``scenarios/data/README.md`` and versioned by ``format``/``version`` on top.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from scenarios import vocabulary
from scenarios.spec import (
    PROCEDURES,
    SEVERITIES,
    STEP_KINDS,
    VIEW_NAMES,
    DoseReference,
    PatientSpec,
    PointSpec,
    RiskStructure,
    Scenario,
    Step,
)

#: Value of the ``format`` key every scenario file starts with.
FORMAT = "fluorosim-scenario"
#: Scenario format versions this build reads.
SUPPORTED_VERSIONS = (1,)
DATA_DIR = Path(__file__).resolve().parent / "data"

#: Procedure-specific checks and their defaults (a file may override any of them in [checks]).
CHECK_DEFAULTS: dict[str, dict[str, float]] = {
    "sij_lateral": {
        "implant_spacing_min_mm": 15.0,  # procedures.md: spaced 15–22 mm
        "implant_depth_past_joint_min_mm": 10.0,
        "foraminal_clearance_min_mm": 2.0,
        "ventral_clearance_min_mm": 2.0,
    },
    "sij_posterior": {
        "short_of_anterior_margin_mm": 10.0,  # procedures.md: depth ≈1 cm short of the margin
        "short_of_anterior_margin_tolerance_mm": 5.0,
        "joint_distance_max_mm": 3.0,
        "inferior_fraction_max": 0.34,  # inferior third of the joint
    },
    "teld": {
        "kambin_tolerance_mm": 4.0,  # L4-5 inscribed circle 7.3–8.2 mm (radius ≈4)
        "root_clearance_min_mm": 1.5,
        "dura_clearance_min_mm": 1.5,
    },
    "ield": {
        "dura_clearance_min_mm": 1.0,
        "level_tolerance_mm": 12.0,
    },
    "view_drill": {},
}

#: models.phantom.PatientParameters fields a scenario may set.
PATIENT_KEYS = {
    "seed",
    "sex",
    "body_scale",
    "voxel_mm",
    "bmi",
    "age_years",
    "lordosis_scale",
    "sacral_slope_deg",
    "variant",
}
PATIENT_VARIANTS = ("high_iliac_crest", "transitional_l5", "narrow_foramen")


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

    def table(self, data: dict[str, Any], key: str, prefix: str, required: bool = True) -> dict:
        value = data.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{prefix}{key}", f"expected a table, got {_show(value)}")
        return value

    def string(
        self,
        data: dict[str, Any],
        key: str,
        prefix: str,
        required: bool = True,
        choices: tuple[str, ...] | None = None,
        default: str | None = None,
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(f"{prefix}{key}", "is missing (expected a string)")
            return default
        if not isinstance(value, str) or not value:
            raise self.fail(f"{prefix}{key}", f"expected a non-empty string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.fail(f"{prefix}{key}", f"expected one of {list(choices)}, got {value!r}")
        return value

    def number(
        self,
        data: dict[str, Any],
        key: str,
        prefix: str,
        default: float | None = None,
        positive: bool = False,
        unit: str = "",
    ) -> float:
        value = data.get(key)
        what = f"a {'positive ' if positive else ''}number{f' ({unit})' if unit else ''}"
        if value is None:
            if default is None:
                raise self.fail(f"{prefix}{key}", f"is missing (expected {what})")
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(f"{prefix}{key}", f"expected {what}, got {_show(value)}")
        if positive and value <= 0:
            raise self.fail(f"{prefix}{key}", f"expected {what}, got {value}")
        return float(value)

    def strings(self, data: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{prefix}{key}", f"expected a list of strings, got {_show(value)}")
        return tuple(value)

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


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _point(r: _Reader, value: Any, field: str) -> PointSpec:
    if isinstance(value, str):
        return PointSpec(landmark=r.landmark(value, field))
    if not isinstance(value, dict):
        raise r.fail(field, f"expected a landmark name or a table, got {_show(value)}")
    offsets = {
        key: r.number(value, key, f"{field}.", default=0.0, unit="mm")
        for key in ("lateral_mm", "anterior_mm", "cranial_mm")
    }
    unknown = set(value) - {
        "landmark",
        "between",
        "fraction",
        "mean",
        "surface",
        "height_fraction",
        "from_anterior_mm",
        *offsets,
    }
    if unknown:
        raise r.fail(
            f"{field}.{sorted(unknown)[0]}",
            "unknown key (expected landmark, between, fraction, mean, surface, height_fraction, "
            "from_anterior_mm, lateral_mm, anterior_mm, cranial_mm)",
        )
    forms = [k for k in ("landmark", "between", "mean", "surface") if k in value]
    if len(forms) != 1:
        raise r.fail(field, "expected exactly one of 'landmark', 'between', 'mean' or 'surface'")
    if "surface" in value:
        name = r.string(value, "surface", f"{field}.")
        height = r.number(value, "height_fraction", f"{field}.", default=0.5)
        if not 0.0 <= height <= 1.0:
            raise r.fail(f"{field}.height_fraction", f"expected a number in 0…1, got {height}")
        return PointSpec(
            surface=r.landmark(name, f"{field}.surface"),
            height_fraction=height,
            from_anterior_mm=r.number(value, "from_anterior_mm", f"{field}.", default=0.0),
            **offsets,
        )
    if "landmark" in value:
        name = r.string(value, "landmark", f"{field}.")
        return PointSpec(landmark=r.landmark(name, f"{field}.landmark"), **offsets)
    if "between" in value:
        names = r.strings(value, "between", f"{field}.")
        if len(names) != 2:
            raise r.fail(f"{field}.between", f"expected two landmark names, got {len(names)}")
        fraction = r.number(value, "fraction", f"{field}.", default=0.5)
        if not 0.0 <= fraction <= 2.0:
            raise r.fail(f"{field}.fraction", f"expected a number in 0…2, got {fraction}")
        pair = tuple(r.landmark(n, f"{field}.between") for n in names)
        return PointSpec(between=pair, fraction=fraction, **offsets)  # type: ignore[arg-type]
    names = r.strings(value, "mean", f"{field}.")
    if not names:
        raise r.fail(f"{field}.mean", "expected at least one landmark name")
    return PointSpec(mean=tuple(r.landmark(n, f"{field}.mean") for n in names), **offsets)


def _step(r: _Reader, data: Any, index: int, kit: tuple[str, ...]) -> Step:
    prefix = f"steps[{index}]."
    if not isinstance(data, dict):
        raise r.fail(f"steps[{index}]", f"expected a table, got {_show(data)}")
    step_id = r.string(data, "id", prefix)
    kind = r.string(data, "kind", prefix, choices=STEP_KINDS)
    title = r.string(data, "title", prefix)
    common = {
        "id": step_id,
        "title": title,
        "kind": kind,
        "confirm_views": tuple(
            r.view(v, f"{prefix}confirm_views") for v in r.strings(data, "confirm_views", prefix)
        ),
        "max_shots": None,
    }
    if "max_shots" in data:
        common["max_shots"] = int(r.number(data, "max_shots", prefix, positive=True))
    if kind == "view":
        view = r.view(r.string(data, "view", prefix), f"{prefix}view")
        return Step(
            **common,
            view=view,
            view_level=r.string(data, "view_level", prefix, required=False),
            view_tolerance_deg=r.number(data, "view_tolerance_deg", prefix, 3.0, True, "deg"),
            view_tolerance_mm=r.number(data, "view_tolerance_mm", prefix, 10.0, True, "mm"),
        )
    instrument = r.string(data, "instrument", prefix)
    if instrument not in kit:
        raise r.fail(
            f"{prefix}instrument",
            f"expected an instrument of the kit {list(kit)}, got {instrument!r}",
        )
    implant = r.string(data, "implant", prefix, required=False)
    if implant is not None and implant not in kit:
        raise r.fail(
            f"{prefix}implant", f"expected an implant of the kit {list(kit)}, got {implant!r}"
        )
    for key in ("entry", "target"):
        if key not in data:
            raise r.fail(f"{prefix}{key}", "is missing (expected a landmark name or a table)")
    return Step(
        **common,
        instrument=instrument,
        entry=_point(r, data["entry"], f"{prefix}entry"),
        target=_point(r, data["target"], f"{prefix}target"),
        tolerance_mm=r.number(data, "tolerance_mm", prefix, 5.0, True, "mm"),
        angle_tolerance_deg=r.number(data, "angle_tolerance_deg", prefix, 10.0, True, "deg"),
        end_labels=tuple(
            r.label(n, f"{prefix}end_labels") for n in r.strings(data, "end_labels", prefix)
        ),
        must_cross=tuple(
            r.label(n, f"{prefix}must_cross") for n in r.strings(data, "must_cross", prefix)
        ),
        implant=implant,
    )


def parse_scenario(
    data: dict[str, Any], source: str, path: Path | None = None, text: str = ""
) -> Scenario:
    """Validate a parsed TOML document; ``source`` names the file in messages."""
    r = _Reader(source)
    fmt = data.get("format")
    if fmt != FORMAT:
        raise r.fail("format", f"expected {FORMAT!r}, got {_show(fmt)}")
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise r.fail("version", f"expected one of {list(SUPPORTED_VERSIONS)}, got {_show(version)}")
    scenario_id = r.string(data, "id", "")
    procedure = r.string(data, "procedure", "", choices=PROCEDURES)
    side = r.string(data, "side", "", required=False, choices=vocabulary.SIDES)
    r.side = side
    level = r.string(data, "level", "", required=False)
    patient_data = r.table(data, "patient", "", required=False)
    for key in patient_data:
        if key not in PATIENT_KEYS | {"ct"}:
            raise r.fail(
                f"patient.{key}", f"unknown key (expected one of {sorted(PATIENT_KEYS | {'ct'})})"
            )
    if "variant" in patient_data:
        r.string(patient_data, "variant", "patient.", choices=PATIENT_VARIANTS)
    ct = r.string(patient_data, "ct", "patient.", required=False)
    parameters = {k: v for k, v in patient_data.items() if k != "ct"}
    kit_data = r.table(data, "kit", "")
    kit = r.strings(kit_data, "instruments", "kit.")
    if not kit and procedure != "view_drill":
        raise r.fail("kit.instruments", "expected at least one instrument name")
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise r.fail(
            "steps", f"expected a non-empty array of tables [[steps]], got {_show(steps_data)}"
        )
    steps = tuple(_step(r, s, i, kit) for i, s in enumerate(steps_data))
    ids = [s.id for s in steps]
    if len(set(ids)) != len(ids):
        raise r.fail("steps", f"step ids must be unique, got {ids}")
    risks = []
    for i, item in enumerate(data.get("risks", [])):
        prefix = f"risks[{i}]."
        if not isinstance(item, dict):
            raise r.fail(f"risks[{i}]", f"expected a table, got {_show(item)}")
        label = r.label(r.string(item, "label", prefix), f"{prefix}label")
        severity = r.string(item, "severity", prefix, choices=SEVERITIES)
        risks.append(RiskStructure(label, severity, r.string(item, "name", prefix)))
    dose_data = r.table(data, "dose", "")
    dose = DoseReference(
        shots=int(r.number(dose_data, "shots", "dose.", positive=True)),
        beam_on_s=r.number(dose_data, "beam_on_s", "dose.", positive=True, unit="s"),
        kap_gycm2=r.number(dose_data, "kap_gycm2", "dose.", positive=True, unit="Gy·cm²"),
        air_kerma_mgy=r.number(dose_data, "air_kerma_mgy", "dose.", positive=True, unit="mGy"),
    )
    pass_data = r.table(data, "pass", "")
    pass_mark = r.number(pass_data, "composite_pct", "pass.", positive=True, unit="%")
    if pass_mark > 100:
        raise r.fail("pass.composite_pct", f"expected a percentage 0–100, got {pass_mark}")
    allow_named = pass_data.get("allow_named_views", True)
    if not isinstance(allow_named, bool):
        raise r.fail("pass.allow_named_views", f"expected true or false, got {_show(allow_named)}")
    default_limit = 300.0 if procedure == "view_drill" else 1800.0
    time_limit = r.number(pass_data, "time_limit_s", "pass.", default_limit, True, "s")
    views = tuple(r.view(v, "views") for v in r.strings(data, "views", ""))
    checks_data = r.table(data, "checks", "", required=False)
    checks = dict(CHECK_DEFAULTS[procedure])
    for key in checks_data:
        if key not in checks:
            raise r.fail(
                f"checks.{key}", f"unknown check for {procedure} (expected one of {sorted(checks)})"
            )
        checks[key] = r.number(checks_data, key, "checks.")
    return Scenario(
        id=scenario_id,
        version=int(version),
        title=r.string(data, "title", ""),
        description=r.string(data, "description", "", required=False, default=""),
        procedure=procedure,
        side=side,
        level=level,
        patient=PatientSpec(parameters=parameters, ct=ct),
        kit=kit,
        steps=steps,
        risks=tuple(risks),
        dose=dose,
        pass_mark_pct=pass_mark,
        allow_named_views=allow_named,
        views=views,
        checks=checks,
        time_limit_s=time_limit,
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

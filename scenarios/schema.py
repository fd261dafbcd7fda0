"""The declared schema of a scenario file: every table, key, type and range, checked by pydantic v2.

One model per table of the TOML file (``[patient]``, ``[kit]``, ``[[steps]]`` and a step's
``[steps.metrics.*]`` overrides, ``[[risks]]``, ``[metrics.*]``, ``[pass]``) with unknown keys
forbidden, strict types (``version = true`` or ``seed = "zero"`` are refused, not coerced) and
ranges. :func:`validate_document` turns the first problem into a :class:`SchemaError` naming the
dotted field (``steps[0].metrics.tip_to_target_mm.tolerence``) and what was expected; it never
lets a traceback through (deep nesting is refused before validation). Meaning that depends on the
vocabulary (landmark and label names, views, the kit) is checked afterwards by
:mod:`scenarios.loader`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fluorosim.models.phantom.parts import VARIANTS
from fluorosim.scenarios.scoring.credit import CURVES, SENSES
from fluorosim.scenarios.spec import OFFSET_FRAMES

FORMAT = "fluorosim-scenario"
#: Scenario format versions this build reads (2: metric definitions in the file, issue #15).
SUPPORTED_VERSIONS = (2,)
#: Deepest nesting of tables/arrays a scenario file may have (the deepest legal one is 4).
MAX_DEPTH = 6
PROCEDURES = ("sij_lateral", "sij_posterior", "teld", "ield", "view_drill")
STEP_KINDS = ("trajectory", "view")
SEVERITIES = ("major", "minor")
RISK_KINDS = ("enter", "exit")
DIRECTIONS = ("anterior", "posterior", "medial", "lateral", "cranial", "caudal")
SIDES = ("left", "right")
#: Axes a point's offsets are given in (defined with their landmarks in scenarios.spec).
OFFSET_FRAME_NAMES = tuple(OFFSET_FRAMES)

Name = Annotated[str, Field(min_length=1, max_length=120)]
Text = Annotated[str, Field(max_length=4000)]
Mm = Annotated[float, Field(ge=-500.0, le=500.0)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class PointTable(_Table):
    """A point from landmarks (exactly one of landmark, between, mean, surface)."""

    landmark: Name | None = None
    between: Annotated[list[Name], Field(min_length=2, max_length=2)] | None = None
    fraction: Annotated[float, Field(ge=0.0, le=2.0)] = 0.5
    mean: Annotated[list[Name], Field(min_length=1, max_length=12)] | None = None
    surface: Name | None = None
    through: Name | None = None
    past_mm: Annotated[float, Field(ge=0.0, le=200.0)] = 0.0
    dorsal_to: Name | None = None
    clearance_mm: Annotated[float, Field(ge=0.0, le=50.0)] = 0.0
    height_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    from_anterior_mm: Mm = 0.0
    lateral_mm: Mm = 0.0
    anterior_mm: Mm = 0.0
    cranial_mm: Mm = 0.0
    frame: Literal[OFFSET_FRAME_NAMES] = "world"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _one_form(self) -> PointTable:
        forms = [
            f for f in ("landmark", "between", "mean", "surface", "through") if getattr(self, f)
        ]
        if len(forms) != 1:
            raise ValueError(
                "expected exactly one of 'landmark', 'between', 'mean', 'surface' or 'through'"
            )
        return self


class MetricTable(_Table):
    """How one metric is scored (scenarios.scoring.credit)."""

    unit: Annotated[str, Field(max_length=20)]
    sense: Literal[SENSES] = "at_most"  # type: ignore[valid-type]
    reference: Annotated[float, Field(ge=-1e6, le=1e6)] = 0.0
    tolerance: Annotated[float, Field(ge=0.0, le=1e6)] = 0.0
    limit: Annotated[float, Field(gt=0.0, le=1e6)] = 1.0
    curve: Literal[CURVES] = "linear"  # type: ignore[valid-type]
    weight: Annotated[float, Field(ge=0.0, le=10.0)]
    critical: bool = False
    fail_beyond: Annotated[float, Field(ge=0.0, le=1e6)] | None = None
    critical_beyond: Annotated[float, Field(ge=0.0, le=1e6)] | None = None

    @model_validator(mode="after")
    def _limit_beyond_tolerance(self) -> MetricTable:
        check_curve(self.curve, self.tolerance, self.fail_beyond, self.limit)
        if self.critical_beyond is not None and not self.critical:
            raise ValueError("critical_beyond needs critical = true")
        return self


def check_curve(curve: str, tolerance: float, fail_beyond: float | None, limit: float) -> None:
    """tolerance < limit and tolerance ≤ fail_beyond ≤ limit (ValueError saying which)."""
    if curve == "pass_fail":
        return
    if limit <= tolerance:
        raise ValueError(f"limit ({limit:g}) must lie beyond the tolerance ({tolerance:g})")
    if fail_beyond is not None and not tolerance <= fail_beyond <= limit:
        raise ValueError(
            f"fail_beyond ({fail_beyond:g}) must lie between the tolerance ({tolerance:g}) "
            f"and the limit ({limit:g})"
        )


class MetricOverride(_Table):
    """A step's own tolerance, limit or weight for one of its metrics."""

    tolerance: Annotated[float, Field(ge=0.0, le=1e6)] | None = None
    fail_beyond: Annotated[float, Field(ge=0.0, le=1e6)] | None = None
    critical_beyond: Annotated[float, Field(ge=0.0, le=1e6)] | None = None
    limit: Annotated[float, Field(gt=0.0, le=1e6)] | None = None
    weight: Annotated[float, Field(ge=0.0, le=10.0)] | None = None


class StepTable(_Table):
    """One ``[[steps]]`` entry."""

    id: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")]
    kind: Literal[STEP_KINDS]  # type: ignore[valid-type]
    title: Name
    instrument: Name | None = None
    implant: Name | None = None
    entry: Name | PointTable | None = None
    target: Name | PointTable | None = None
    confirm_views: Annotated[list[Name], Field(max_length=8)] = []
    end_labels: Annotated[list[Name], Field(max_length=12)] = []
    end_name: Name | None = None
    must_cross: Annotated[list[Name], Field(max_length=8)] = []
    view: Name | None = None
    view_level: Name | None = None
    metrics: Annotated[dict[str, MetricOverride], Field(max_length=20)] = {}

    @model_validator(mode="after")
    def _kind_fields(self) -> StepTable:
        if self.kind == "view":
            if self.view is None:
                raise ValueError("a view step needs 'view' (the named view to obtain)")
        else:
            for key in ("instrument", "entry", "target"):
                if getattr(self, key) is None:
                    raise ValueError(f"a trajectory step needs '{key}'")
        return self


class RiskTable(_Table):
    """One ``[[risks]]`` entry: a structure that must not be entered (or a cortex not exited)."""

    label: Name
    severity: Literal[SEVERITIES]  # type: ignore[valid-type]
    name: Name
    kind: Literal[RISK_KINDS] = "enter"  # type: ignore[valid-type]
    toward: Literal[DIRECTIONS] | None = None  # type: ignore[valid-type]
    allowed: Annotated[list[Name], Field(max_length=12)] = []

    @model_validator(mode="after")
    def _exit_fields(self) -> RiskTable:
        if self.kind == "enter" and (self.toward is not None or self.allowed):
            raise ValueError("expected 'toward' and 'allowed' only with kind = 'exit'")
        return self


class PatientTable(_Table):
    """``[patient]``: generator parameters (ranges checked by models.phantom) or an imported CT."""

    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    sex: Literal["female", "male"] | None = None
    body_scale: float | None = None
    voxel_mm: float | None = None
    bmi: float | None = None
    age_years: float | None = None
    lordosis_scale: float | None = None
    sacral_slope_deg: float | None = None
    variant: Literal[VARIANTS] | None = None  # type: ignore[valid-type]  # the generator's own list
    ct: Name | None = None


class KitTable(_Table):
    """``[kit]``: instrument and implant names of assets/instruments.toml."""

    instruments: Annotated[list[Name], Field(max_length=12)]


class PassTable(_Table):
    """``[pass]``: the pass mark and whether named-view buttons may be used."""

    composite_pct: Annotated[float, Field(gt=0.0, le=100.0)]
    allow_named_views: bool = True


class ScenarioDocument(_Table):
    """A whole scenario file."""

    format: Literal[FORMAT]  # type: ignore[valid-type]
    version: Literal[SUPPORTED_VERSIONS]  # type: ignore[valid-type]
    id: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    title: Name
    description: Text = ""
    procedure: Literal[PROCEDURES]  # type: ignore[valid-type]
    side: Literal[SIDES] | None = None  # type: ignore[valid-type]
    level: Name | None = None
    views: Annotated[list[Name], Field(max_length=12)] = []
    patient: PatientTable = PatientTable()
    kit: KitTable
    steps: Annotated[list[StepTable], Field(min_length=1, max_length=40)]
    risks: Annotated[list[RiskTable], Field(max_length=40)] = []
    metrics: Annotated[dict[str, MetricTable], Field(max_length=60)]
    pass_: PassTable = Field(alias="pass")


class SchemaError(ValueError):
    """The first problem of a document: the dotted field and what was expected."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


def nesting_depth(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """Depth of nested tables/arrays (iterative, stops counting past ``limit``)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth) for child in children)
    return deepest


def show(value: Any) -> str:
    """A value as the message shows it (short)."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _field(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = "pass" if part == "pass_" else str(part)
            text += f".{name}" if text else name
    return text


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class holding the last key of ``loc`` (for listing its allowed keys)."""
    model: Any = ScenarioDocument
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            if isinstance(part, int):
                return None
            field = model.model_fields.get(part) or model.model_fields.get(f"{part}_")
            if field is None:
                return None
            model = field.annotation
        elif isinstance(part, int | str):
            model = _inner(model, part)
        if model is None:
            return None
    return _unwrap_model(model)


def _inner(annotation: Any, part: Any) -> Any:
    annotation = _strip(annotation)
    origin = get_origin(annotation)
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return _unwrap_model(annotation)


def _strip(annotation: Any) -> Any:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        for member in members:
            member = _strip(member)
            if get_origin(member) in (list, dict) or (
                isinstance(member, type) and issubclass(member, BaseModel)
            ):
                return member
        return members[0] if members else annotation
    return annotation


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _max_length(loc: tuple[Any, ...]) -> int | None:
    """The declared max_length of the array field at ``loc`` (None: unknown or unbounded)."""
    model = _model_at(loc)
    field = model.model_fields.get(str(loc[-1])) if model else None
    if field is None:
        return None
    candidates = [*field.metadata, field.annotation]
    while candidates:  # breadth first, never into an array's item type
        item = candidates.pop(0)
        if getattr(item, "max_length", None) is not None:
            return int(item.max_length)
        candidates.extend(getattr(item, "metadata", []) or [])
        if get_origin(item) in (Annotated, Union, types.UnionType):
            candidates.extend(get_args(item))
    return None


def _problem(error: Mapping[str, Any]) -> SchemaError:
    kind = error["type"]
    loc = tuple(error["loc"])
    tags = [i for i, p in enumerate(loc) if isinstance(p, str) and "PointTable" in p]
    if kind == "model_type" and tags:
        field = _field(loc[: tags[0]])
        return SchemaError(
            field, f"expected a landmark name or a table, got {show(error.get('input'))}"
        )
    # a field typed "name or table" tags its location with the union branch: drop the tags
    loc = tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p in ("str", "PointTable") or p.startswith("function-")))
    )
    field = _field(loc)
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return SchemaError(field, "is missing")
    if kind == "extra_forbidden":
        model = _model_at(loc)
        keys = sorted((f.alias or n) for n, f in (model.model_fields.items() if model else []))
        expected = f" (expected one of {keys})" if keys else ""
        return SchemaError(field, f"unknown key{expected}")
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).replace(" or ", ", ")
        return SchemaError(field, f"expected one of [{choices}], got {show(value)}")
    if kind in _TYPE_WORDS:
        return SchemaError(field, f"expected {_TYPE_WORDS[kind]}, got {show(value)}")
    bounds = {
        "greater_than": "> {gt}",
        "greater_than_equal": "≥ {ge}",
        "less_than": "< {lt}",
        "less_than_equal": "≤ {le}",
    }
    if kind in bounds:
        return SchemaError(
            field, f"expected a number {bounds[kind].format(**ctx)}, got {show(value)}"
        )
    if kind in ("too_short", "too_long"):
        low, high = ctx.get("min_length"), ctx.get("max_length")
        got = ctx.get("actual_length")
        if kind == "too_long":
            wanted = f"at most {high} entries"
        elif low == 1:
            wanted = "a non-empty array"
        else:
            wanted = f"at least {low} entries"
        if low is not None and low == _max_length(loc):
            wanted = f"exactly {low} entries"
        return SchemaError(field, f"expected {wanted}, got {got}")
    if kind in ("string_too_short", "string_too_long"):
        return SchemaError(
            field, f"expected a non-empty string (at most 120 characters), got {show(value)}"
        )
    if kind == "string_pattern_mismatch":
        return SchemaError(
            field, f"expected lower-case letters, digits, '_' or '-', got {show(value)}"
        )
    if kind == "value_error":
        message = str(ctx.get("error", error.get("msg", "")))
        return SchemaError(field, message)
    return SchemaError(field, f"{error.get('msg', 'invalid')}, got {show(value)}")


def validate_document(data: Any) -> ScenarioDocument:
    """The validated document, or :class:`SchemaError` naming the first bad field."""
    if not isinstance(data, dict):
        raise SchemaError("", "expected a TOML document (a table)")
    if nesting_depth(data) > MAX_DEPTH:
        raise SchemaError("", f"nests tables/arrays deeper than {MAX_DEPTH} levels")
    if data.get("format") != FORMAT:
        raise SchemaError("format", f"expected {FORMAT!r}, got {show(data.get('format'))}")
    version = data.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        hint = (
            " (version 1 files predate metric definitions in the file; see "
            "scenarios/data/README.md)"
            if version == 1 and not isinstance(version, bool)
            else ""
        )
        raise SchemaError(
            "version", f"expected one of {list(SUPPORTED_VERSIONS)}, got {show(version)}{hint}"
        )
    try:
        return ScenarioDocument.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # prefer the most specific problem (longest location) among a union's alternatives
        first = errors[0]
        same_start = [e for e in errors if tuple(e["loc"])[:1] == tuple(first["loc"])[:1]]
        chosen = max(same_start, key=lambda e: (e["type"] != "string_type", len(e["loc"])))
        raise _problem(chosen) from None
    except RecursionError:
        raise SchemaError("", f"nests tables/arrays deeper than {MAX_DEPTH} levels") from None

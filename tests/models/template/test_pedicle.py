"""The template's pedicles measured, and lifted to a target height, on a vertebra of boxes whose
answers are known: a body and two pedicles 18 mm tall (the Visible Human's are 19–24 mm where
Zindrick 1987 gives ≈15)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import pyvista as pv

from fluorosim.models.template.asset import TriangleMesh
from fluorosim.models.template.pedicle import (
    BELOW_FADE_MM,
    FADE_MM,
    LIFT_SHRINK,
    MAX_LIFT_FRACTION,
    MAX_STRETCH,
    NOTCH_FADE_PER_LIFT,
    WINDOW_BACK_MM,
    PedicleLift,
    TemplatePedicle,
    largest_stretch,
    lift_for,
    measure_pedicles,
    within_stretch,
)
from fluorosim.models.template.warp_geometry import BodyFrame

#: The box vertebra (body frame = template frame, mm): body in front of v = 0, pedicles behind it.
BODY_BOUNDS = (-20.0, 20.0, -35.0, 0.0, -13.0, 13.0)
PEDICLE_U_MM = (8.5, 21.5)
PEDICLE_V_MM = (0.5, 12.0)
PEDICLE_W_MM = (-6.0, 12.0)


def _box(bounds: tuple[float, ...]) -> pv.PolyData:
    return pv.Box(bounds=bounds, level=6).triangulate()


def _vertebra() -> SimpleNamespace:
    """A template-like object with one vertebra ("L3"): a body box and two pedicle boxes."""
    parts = [_box(BODY_BOUNDS)]
    landmarks = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lo, hi = sorted((sign * PEDICLE_U_MM[0], sign * PEDICLE_U_MM[1]))
        parts.append(_box((lo, hi, *PEDICLE_V_MM, *PEDICLE_W_MM)))
        landmarks[f"L3_pedicle_center_{side}"] = np.array([sign * 15.0, 4.0, 3.0])
    merged = parts[0].merge(parts[1:])
    faces = np.asarray(merged.faces).reshape(-1, 4)[:, 1:].astype(np.int32)
    mesh = TriangleMesh(np.asarray(merged.points, float), faces)
    return SimpleNamespace(bones={"L3": mesh}, landmarks=landmarks)


FRAME = BodyFrame(
    template_from_local=np.eye(4),
    width_mm=40.0,
    v_anterior=-35.0,
    v_posterior=0.0,
    superior_line=(13.0, 0.0),
    inferior_line=(-13.0, 0.0),
)


def test_measures_the_pedicles_height_bottom_top_and_width():
    pedicles = measure_pedicles(_vertebra(), "L3", FRAME)  # type: ignore[arg-type]
    assert set(pedicles) == {"left", "right"}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        p = pedicles[side]
        assert p.height_mm == pytest.approx(18.0, abs=0.05)
        assert p.w_bottom_mm == pytest.approx(-6.0, abs=0.05)
        assert p.w_top_mm == pytest.approx(12.0, abs=0.05)
        assert p.half_width_mm == pytest.approx(6.5, abs=0.05)
        assert p.u_mm == pytest.approx(sign * 15.0, abs=0.05)
        assert PEDICLE_V_MM[0] < p.v_mm < PEDICLE_V_MM[1]


PEDICLE = TemplatePedicle(u_mm=15.0, v_mm=4.0, w_bottom_mm=-6.0, w_top_mm=12.0, half_width_mm=6.5)


def test_lift_raises_the_underside_keeps_the_top_and_stays_local():
    lift = PedicleLift((PEDICLE,), (4.0,))
    points = np.array(
        [
            [15.0, 4.0, -6.0],  # underside: the whole lift
            [15.0, 4.0, 12.0],  # top: unmoved
            [15.0, 4.0, -6.0 - BELOW_FADE_MM - 0.1],  # below the fade: unmoved
            [15.0, 4.0 + WINDOW_BACK_MM + FADE_MM + 0.1, -6.0],  # behind the window
            [15.0 + 6.5 + 1.0 + FADE_MM + 0.1, 4.0, -6.0],  # lateral of the window
            [0.0, -20.0, 0.0],  # the body's centre
        ]
    )
    shift = lift(points)
    assert np.all(shift[:, :2] == 0.0)
    assert shift[0, 2] == pytest.approx(4.0)
    assert shift[1:, 2] == pytest.approx(0.0, abs=1e-12)


def test_behind_the_wall_the_lift_fades_into_the_notch_not_above_the_endplate():
    """With the body's posterior wall measured (the isthmus 4 mm behind it) nothing in front of
    the wall moves, and below the underside the lift fades over NOTCH_FADE_PER_LIFT × the lift
    even where the body's inferior endplate (the floor) lies only 2 mm lower."""
    pedicle = replace(PEDICLE, floor_w_mm=-8.0, wall_v_mm=0.0)
    lift_mm = 6.0
    lift = PedicleLift((pedicle,), (lift_mm,))
    fade = NOTCH_FADE_PER_LIFT * lift_mm
    assert pedicle.fade_mm(lift_mm) == pytest.approx(fade)
    points = np.array(
        [
            [15.0, 4.0, -6.0],  # underside: the whole lift
            [15.0, 4.0, -6.0 - fade / 2],  # halfway down the fade: half of it
            [15.0, 4.0, -6.0 - fade - 0.1],  # below the fade: unmoved
            [15.0, -0.1, -6.0],  # in front of the wall: unmoved
        ]
    )
    shift = lift(points)[:, 2]
    assert shift == pytest.approx([lift_mm, lift_mm / 2, 0.0, 0.0], abs=1e-9)
    # without the wall the fade stops at the floor (2 mm), as before
    assert replace(pedicle, wall_v_mm=None).fade_mm(lift_mm) == pytest.approx(2.0)


def test_lift_never_folds_the_surface():
    """w + shift grows strictly with w through the pedicle at the largest allowed lift."""
    lift = PedicleLift((PEDICLE,), (MAX_LIFT_FRACTION * PEDICLE.height_mm,))
    for u, v in ((15.0, 4.0), (20.0, 1.0), (10.0, 7.5)):
        w = np.linspace(-20.0, 20.0, 4001)
        points = np.column_stack([np.full_like(w, u), np.full_like(w, v), w])
        moved = w + lift(points)[:, 2]
        assert np.all(np.diff(moved) > 0.0)


def test_a_lifted_box_pedicle_measures_its_target():
    template = _vertebra()
    pedicles = measure_pedicles(template, "L3", FRAME)  # type: ignore[arg-type]
    target_mm = 14.0
    lifts = tuple(lift_for(p.height_mm, target_mm) for p in pedicles.values())
    assert lifts == pytest.approx((4.0, 4.0), abs=0.05)
    mesh = template.bones["L3"]
    vertices = mesh.vertices_mm + PedicleLift(tuple(pedicles.values()), lifts)(mesh.vertices_mm)
    lifted = SimpleNamespace(
        bones={"L3": TriangleMesh(vertices, mesh.faces)}, landmarks=template.landmarks
    )
    for pedicle in measure_pedicles(lifted, "L3", FRAME).values():  # type: ignore[arg-type]
        assert pedicle.height_mm == pytest.approx(target_mm, abs=0.1)
        assert pedicle.w_top_mm == pytest.approx(12.0, abs=0.05)


def test_lift_only_lowers_a_tall_pedicle_and_never_beyond_its_limit():
    assert lift_for(20.0, 15.0) == pytest.approx(5.0)
    assert lift_for(14.0, 15.0) == 0.0  # already short: left alone
    assert lift_for(20.0, 5.0) == pytest.approx(MAX_LIFT_FRACTION * 20.0)


def test_a_lift_is_shrunk_where_the_spline_already_stretches_the_notch():
    """With no spline stretch a 4 mm lift makes the warp's Jacobian determinant under the pedicle
    1 + 1.5·4/4 = 2.5 (smoothstep's steepest slope over a 4 mm fade) and is kept whole; where the
    spline already stretches vertically by 1.6 the same lift would give 3.1, past the warp's
    sanity bound of 3, so it shrinks until the determinant is ≤ MAX_STRETCH, and not further than
    one LIFT_SHRINK step below that."""
    lift = PedicleLift((PEDICLE,), (4.0,))

    def stretching(by: float):
        def spline(points):
            displacement = np.zeros_like(points)
            displacement[:, 2] = (by - 1.0) * points[:, 2]
            return displacement

        return spline

    assert largest_stretch(lift, stretching(1.0)) == pytest.approx(2.5, abs=0.02)
    assert within_stretch(lift, stretching(1.0)) == lift
    assert largest_stretch(lift, stretching(1.6)) == pytest.approx(3.1, abs=0.02)
    shrunk = within_stretch(lift, stretching(1.6))
    assert shrunk is not None and shrunk.lifts_mm[0] < 4.0
    assert largest_stretch(shrunk, stretching(1.6)) <= MAX_STRETCH
    one_step_less = PedicleLift((PEDICLE,), (shrunk.lifts_mm[0] / LIFT_SHRINK,))
    assert largest_stretch(one_step_less, stretching(1.6)) > MAX_STRETCH
    # a spline that alone passes the bound leaves room for no lift
    assert within_stretch(lift, stretching(3.0)) is None

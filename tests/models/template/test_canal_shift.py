"""The canal shift's lateral displacement (``models.template.warp.CanalShift``) against values
worked out by hand from its ramps: the pedicles move with the vertebra's own shift, an articular
process with its joint's, and an inferior process's tip past the joint with the lower vertebra's
(generator 5.10: L1's widened canal otherwise pushed its tips into L2's lamina)."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.models.template.warp import TIP_REACH, CanalShift, JointShift
from fluorosim.models.template.warp_geometry import BodyFrame

FRAME = BodyFrame(
    template_from_local=np.eye(4),
    width_mm=45.0,
    v_anterior=-17.0,
    v_posterior=17.0,
    superior_line=(13.0, 0.0),
    inferior_line=(-13.0, 0.0),
)
#: pedicle centre at v 22, w 5; the inferior joint at v 40, w −15 (20 mm below the pedicles)
PEDICLE_VW = (22.0, 5.0)
JOINT_W = -15.0


def shift(beyond_mm: float | None) -> CanalShift:
    return CanalShift(
        lateral_mm=4.0,
        posterior_mm=0.0,
        depth_mm=15.0,
        medial_wall_u_mm=9.0,
        midline_fade_u_mm=8.0,
        pedicle_vw_mm=PEDICLE_VW,
        inferior_joint=JointShift(v_mm=40.0, w_mm=JOINT_W, lateral_mm=2.5, beyond_mm=beyond_mm),
    )


def lateral_mm(canal: CanalShift, u: float, v: float, w: float) -> float:
    moved = canal.displacement(FRAME, np.array([[u, v, w]]))
    assert moved[0, 2] == 0.0  # never vertical: the pedicles keep their heights
    return float(moved[0, 0])


def test_pedicles_take_the_vertebras_shift_and_the_process_its_joints() -> None:
    canal = shift(beyond_mm=1.0)
    assert lateral_mm(canal, 15.0, PEDICLE_VW[0], PEDICLE_VW[1]) == pytest.approx(4.0)
    assert lateral_mm(canal, -15.0, PEDICLE_VW[0], PEDICLE_VW[1]) == pytest.approx(-4.0)
    # at the joint's centre and on the process above it: the joint's shift, both sides
    assert lateral_mm(canal, 15.0, 40.0, JOINT_W) == pytest.approx(2.5)
    assert lateral_mm(canal, -15.0, 40.0, -5.0) == pytest.approx(-2.5)


def test_an_inferior_tip_past_the_joint_takes_the_lower_vertebras_shift() -> None:
    canal = shift(beyond_mm=1.0)
    reach = TIP_REACH * abs(JOINT_W - PEDICLE_VW[1])
    # whole beyond the reach, half way (the C¹ ramp is ½ at its middle) between
    assert lateral_mm(canal, 15.0, 40.0, JOINT_W - reach - 1.0) == pytest.approx(1.0)
    assert lateral_mm(canal, 15.0, 40.0, JOINT_W - 0.5 * reach) == pytest.approx(1.75)
    # without a lower vertebra's shift (L5 above the sacrum) the tip keeps the joint's
    assert lateral_mm(shift(None), 15.0, 40.0, JOINT_W - reach - 1.0) == pytest.approx(2.5)


def test_the_midline_does_not_move_sideways() -> None:
    for beyond in (None, 1.0):
        assert lateral_mm(shift(beyond), 0.0, 40.0, JOINT_W - 20.0) == 0.0

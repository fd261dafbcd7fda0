"""Dose: linear in time and field area, published pulsed fractions, the US limit, beam detection."""

import math

import numpy as np
import pytest

from fluorosim.render import dose
from fluorosim.render.exposure import Collimation, Exposure, ExposureError
from fluorosim.render.geometry import ProjectionGeometry


def geometry(sid_mm: float = 1000.0, size: int = 300, pixel_mm: float = 1.0) -> ProjectionGeometry:
    """Source 600 mm anterior of the origin, detector (size × pixel_mm square) at SID."""
    half = size * pixel_mm / 2
    return ProjectionGeometry(
        source_lps_mm=np.array([0.0, -600.0, 0.0]),
        detector_origin_lps_mm=np.array(
            [-half + pixel_mm / 2, sid_mm - 600.0, -half + pixel_mm / 2]
        ),
        detector_u_lps=np.array([1.0, 0.0, 0.0]),
        detector_v_lps=np.array([0.0, 0.0, 1.0]),
        pixel_mm=pixel_mm,
        width_px=size,
        height_px=size,
    ).validate()


def test_reference_point_and_continuous_rate_follow_output_and_inverse_square():
    geo = geometry()
    assert dose.reference_distance_mm(geo) == pytest.approx(700.0)
    exposure = Exposure(kvp=80.0, ma=2.0, duration_s=1.0)
    rate = dose.air_kerma_rate_mgy_per_min(exposure, geo)
    expected = dose.OUTPUT_AT_80KVP_MGY_PER_MAS * 2.0 * 60 * (1000 / 700) ** 2
    assert rate == pytest.approx(expected)
    # output ∝ kVp²
    low = dose.air_kerma_rate_mgy_per_min(Exposure(kvp=60.0, ma=2.0), geo)
    assert low / rate == pytest.approx((60 / 80) ** 2)


def test_kerma_and_kap_are_linear_in_time_and_kap_in_field_area():
    geo = geometry()
    one = dose.dose_for_exposure(Exposure(75.0, 2.5, duration_s=1.0), geo)
    three = dose.dose_for_exposure(Exposure(75.0, 2.5, duration_s=3.0), geo)
    assert three.air_kerma_mgy == pytest.approx(3 * one.air_kerma_mgy)
    assert three.kap_gycm2 == pytest.approx(3 * one.kap_gycm2)
    assert three.beam_on_s == 3.0
    # shutters to half the width: same kerma, half the area and half the KAP
    half = dose.dose_for_exposure(
        Exposure(75.0, 2.5, duration_s=1.0), geo, Collimation(shutter_u_mm=(-75.0, 75.0))
    )
    assert half.air_kerma_mgy == pytest.approx(one.air_kerma_mgy)
    assert half.field_area_cm2 == pytest.approx(one.field_area_cm2 / 2, rel=1e-9)
    assert half.kap_gycm2 == pytest.approx(one.kap_gycm2 / 2, rel=1e-9)
    # the full square detector 300 mm at SID 1000 is 210 mm at the reference point (700 mm)
    assert one.field_area_cm2 == pytest.approx(21.0**2, rel=1e-9)


def test_kap_does_not_depend_on_where_the_reference_point_is():
    """KAP = kerma(d)·area(d) with kerma ∝ 1/d² and area ∝ d²: the same for any SID here."""
    exposure = Exposure(75.0, 2.5, duration_s=1.0)
    at_1m = dose.OUTPUT_AT_80KVP_MGY_PER_MAS * (75 / 80) ** 2 * 2.5  # mGy at 1 m
    for sid in (900.0, 1000.0, 1200.0):
        geo = geometry(sid_mm=sid)
        area_at_1m_cm2 = (300.0 * 1000 / sid) ** 2 / 100
        record = dose.dose_for_exposure(exposure, geo)
        assert record.kap_gycm2 == pytest.approx(at_1m * 1e-3 * area_at_1m_cm2, rel=1e-9)


def test_circular_field_area_matches_pi_r_squared():
    geo = geometry(size=600, pixel_mm=0.5)
    area = dose.exposed_field_area_cm2(geo, None, "circle", 230.0)
    expected = math.pi * 11.5**2 * 0.7**2
    assert area == pytest.approx(expected, rel=5e-3)
    iris = dose.exposed_field_area_cm2(geo, Collimation(iris_diameter_mm=100.0), "circle", 230.0)
    assert iris == pytest.approx(math.pi * 5.0**2 * 0.7**2, rel=1e-2)


@pytest.mark.parametrize(("pps", "fraction"), [(12.0, 0.51), (6.0, 0.40), (3.0, 0.20)])
def test_pulsed_fractions_of_continuous_follow_herrmann(pps, fraction):
    geo = geometry()
    continuous = dose.dose_for_exposure(Exposure(75.0, 2.5, duration_s=10.0), geo)
    pulsed = dose.dose_for_exposure(
        Exposure(75.0, 2.5, mode="pulsed", pulse_rate_pps=pps, duration_s=10.0), geo
    )
    assert pulsed.air_kerma_mgy / continuous.air_kerma_mgy == pytest.approx(fraction)
    assert pulsed.pulses == pytest.approx(10 * pps)
    assert pulsed.beam_on_s == continuous.beam_on_s  # fluoro time is pedal time


def test_low_dose_mode_saves_about_83_percent():
    geo = geometry()
    continuous = dose.dose_for_exposure(Exposure(75.0, 2.5, duration_s=10.0), geo)
    low = dose.dose_for_exposure(Exposure(75.0, 2.5, mode="low_dose", duration_s=10.0), geo)
    assert 1 - low.air_kerma_mgy / continuous.air_kerma_mgy == pytest.approx(0.83, abs=0.01)
    # one image × images per second = the dose rate, which falls with the pulse rate
    rates = [
        dose.frame_air_kerma_mgy(Exposure(75.0, 2.5, mode="pulsed", pulse_rate_pps=r), geo) * r
        for r in (15.0, 7.5, 4.0)
    ]
    assert rates[0] > rates[1] > rates[2]


def test_fluoroscopy_never_exceeds_the_us_limit_and_typical_rates_match_carm_md():
    geo = geometry()
    for kvp in np.linspace(40, 150, 12):
        for ma in (0.5, 2.0, 5.0, 12.0, 30.0):
            rate = dose.air_kerma_rate_mgy_per_min(Exposure(float(kvp), ma), geo)
            assert rate <= dose.AIR_KERMA_RATE_LIMIT_MGY_PER_MIN + 1e-9
    # carm.md: 11–14 cm field 25–50, 22–27 cm 15–30, 36–40 cm 9–18 mGy/min
    for field_mm, (low, high) in {125.0: (25, 50), 245.0: (15, 30), 380.0: (9, 18)}.items():
        for kvp in (65.0, 75.0, 90.0):
            ma = dose.typical_tube_current_ma(field_mm, kvp)
            rate = dose.air_kerma_rate_mgy_per_min(Exposure(kvp, ma), geo)
            assert low <= rate <= high, (field_mm, kvp, rate)


def test_a_teld_length_of_fluoroscopy_gives_the_published_totals():
    """carm.md: TELD 38–55 s of fluoroscopy, ≈29 dGy·cm², ≈16 mGy (continuous, 9" II)."""
    geo = geometry(size=600, pixel_mm=0.5)
    accumulator = dose.DoseAccumulator()
    for _ in range(45):  # 45 one-second pedal presses
        accumulator.begin_shot()
        accumulator.add(
            dose.dose_for_exposure(Exposure(75.0, 2.5, duration_s=1.0), geo, None, "circle", 230.0)
        )
        accumulator.end_shot()
    assert accumulator.shots == 45 and accumulator.total_beam_on_s == pytest.approx(45.0)
    assert 10.0 < accumulator.total_air_kerma_mgy < 25.0
    assert 1.5 < accumulator.total_kap_gycm2 < 4.5


def test_accumulator_groups_records_into_shots():
    geo = geometry()
    acc = dose.DoseAccumulator()
    frame = dose.dose_for_exposure(
        Exposure(75.0, 2.5, mode="pulsed", pulse_rate_pps=7.5, duration_s=1 / 7.5), geo
    )
    for _ in range(3):
        acc.add(frame)  # first add opens shot 1
    acc.end_shot()
    acc.add(dose.dose_for_exposure(Exposure(75.0, 10.0, mode="single_shot", duration_s=0.1), geo))
    acc.add(frame)  # a single shot closes itself: this is shot 3
    shots = acc.per_shot()
    assert [s["shot"] for s in shots] == [1, 2, 3]
    assert shots[0]["air_kerma_mgy"] == pytest.approx(3 * frame.air_kerma_mgy)
    assert shots[1]["mode"] == "single_shot"
    acc.note_in_beam(2.5, "jamshidi_needle handle")
    summary = acc.summary()
    assert summary["shots"] == 3 and summary["in_beam_events"] == 1
    assert summary["kap_gycm2"] == pytest.approx(sum(float(s["kap_gycm2"]) for s in shots))


def test_points_in_beam_respects_field_collimation_and_depth():
    geo = geometry()
    shutters = Collimation(shutter_u_mm=(-50.0, 50.0))
    centre = np.array([[0.0, 0.0, 0.0]])
    assert dose.points_in_beam(centre, geo, shutters)
    # 40 mm left at the isocentre (M = 1000/600) lands 66.7 mm off-centre: behind the shutter
    left = np.array([[40.0, 0.0, 0.0]])
    assert dose.points_in_beam(left, geo) and not dose.points_in_beam(left, geo, shutters)
    # beyond the detector, or behind the focal spot: not in the beam
    assert not dose.points_in_beam(np.array([[0.0, 450.0, 0.0]]), geo)
    assert not dose.points_in_beam(np.array([[0.0, -700.0, 0.0]]), geo)
    # a circular intensifier field excludes the detector corner
    corner = np.array([[80.0, 0.0, 80.0]])  # projects to (133, 133) mm from the centre
    assert dose.points_in_beam(corner, geo, None, "square", 300.0)
    assert not dose.points_in_beam(corner, geo, None, "circle", 300.0)
    mask = dose.points_in_beam_mask(np.vstack([centre, left]), geo, shutters)
    assert mask.tolist() == [True, False]


def test_bad_exposures_are_refused_with_the_field_named():
    with pytest.raises(ExposureError, match="Exposure.mode"):
        Exposure(75.0, 2.5, mode="turbo")
    with pytest.raises(ExposureError, match="pulse_rate_pps"):
        Exposure(75.0, 2.5, mode="pulsed")
    with pytest.raises(ExposureError, match="Exposure.kvp"):
        Exposure(400.0, 2.5)
    with pytest.raises(ExposureError, match="shutter_u_mm"):
        Collimation(shutter_u_mm=(50.0, -50.0))
    assert Exposure(75.0, 2.5, mode="low_dose").pulse_rate_pps == 7.5


def test_renderer_entry_point_uses_the_receptor_shape_and_checks_kvp():
    from types import SimpleNamespace

    geo = geometry(size=600, pixel_mm=0.5)
    exposure = Exposure(75.0, 2.5, duration_s=1.0)
    round_field = dose.exposure_dose(
        exposure, geo, SimpleNamespace(detector="image_intensifier"), 75.0
    )
    square_field = dose.exposure_dose(exposure, geo, SimpleNamespace(detector="flat_panel"))
    assert round_field.field_area_cm2 / square_field.field_area_cm2 == pytest.approx(
        math.pi / 4, rel=5e-3
    )
    assert round_field.air_kerma_mgy == square_field.air_kerma_mgy
    with pytest.raises(ValueError, match="kVp"):
        dose.exposure_dose(exposure, geo, None, 90.0)

"""PLUS sequence reading and replay (real PLUS recordings from shared data) and attempt replay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluorosim.haptics.calibration import pivot_calibration, read_plus_calibrations
from fluorosim.haptics.replay import (
    AttemptReplaySource,
    PlusReplaySource,
    ReplayError,
    read_plus_sequence,
)
from fluorosim.haptics.source import ToolSample, TrackingStatus


class FakeClock:
    """A settable clock (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write_sequence(path, frames):
    lines = ["ObjectType = Image", "NDims = 3", f"DimSize = 0 0 {len(frames)}"]
    for index, (t_s, matrix, status) in enumerate(frames):
        if matrix is not None:
            numbers = " ".join(f"{v:g}" for v in np.asarray(matrix).reshape(16))
            lines.append(f"Seq_Frame{index:04d}_StylusToTrackerTransform = {numbers} ")
        if status is not None:
            lines.append(f"Seq_Frame{index:04d}_StylusToTrackerTransformStatus = {status}")
        lines.append(f"Seq_Frame{index:04d}_Timestamp = {t_s}")
    lines.append("ElementDataFile = LOCAL")
    path.write_bytes(("\n".join(lines) + "\n").encode() + bytes(range(256)) * 4)
    return path


def _translation(x):
    m = np.eye(4)
    m[0, 3] = x
    return m


def test_reads_real_plus_recordings(shared_data):
    folder = shared_data / "plus-tracking"
    calib = read_plus_sequence(folder / "ReferenceToRASCalibration.igs.mha")
    assert set(calib) == {"StylusToTracker", "ReferenceToTracker"}
    timestamps, matrices, ok = calib["StylusToTracker"]
    assert len(timestamps) == 93 and matrices.shape == (93, 4, 4) and ok.all()
    assert timestamps[0] == pytest.approx(196.7208142857271)
    np.testing.assert_allclose(matrices[0, :3, 3], [19.58, 126.83, -380.09])
    np.testing.assert_allclose(matrices[:, 3], np.tile([0, 0, 0, 1.0], (93, 1)))
    interp = read_plus_sequence(folder / "TransformInterpolationTest.igs.mha")
    # "Seq_FrameNNNN_Stylus" (no "Transform" suffix) is not a transform
    assert set(interp) == {"ProbeToTracker", "ReferenceToTracker"}
    assert len(interp["ProbeToTracker"]) == 500
    assert np.all(np.diff(interp["ProbeToTracker"].timestamps_s) > 0)


def test_pivot_on_real_landmark_recording_is_not_accepted(shared_data):
    """ReferenceToRASCalibration is a stylus touching landmarks, not a pivot: the fit must say so.

    The rotations are spread enough for a rank-6 system, but the tip does not stay at one point,
    so the RMS residual is far above the 1 mm optical limit and the result is not accepted —
    unlike StylusCalibration.results.xml (PLUS's own pivot, 0.48 mm) which is.
    """
    track = read_plus_sequence(shared_data / "plus-tracking" / "ReferenceToRASCalibration.igs.mha")
    stylus = track["StylusToTracker"]
    cal = pivot_calibration(stylus.matrices[stylus.ok])
    assert cal.error_mm > 5.0 and not cal.accepted("optical")
    (plus,) = read_plus_calibrations(
        shared_data / "plus-tracking" / "StylusCalibration.results.xml"
    )
    assert plus.accepted("optical")


def test_plus_replay_one_frame_per_poll_applies_tip_calibration(shared_data):
    folder = shared_data / "plus-tracking"
    (tip_cal,) = read_plus_calibrations(folder / "StylusCalibration.results.xml")
    source = PlusReplaySource(
        folder / "ReferenceToRASCalibration.igs.mha", realtime=False, tool_from_tip=tip_cal.matrix
    )
    with source:
        samples = []
        while (sample := source.poll()) is not None:
            samples.append(sample)
    assert len(samples) == 93
    first = samples[0]
    assert first.status is TrackingStatus.UNCALIBRATED  # no registration given
    matrix = first.raw["tracker_from_tool"]
    np.testing.assert_allclose(
        first.tip_lps_mm, matrix[:3, :3] @ tip_cal.matrix[:3, 3] + matrix[:3, 3]
    )
    assert np.linalg.norm(first.tip_lps_mm - matrix[:3, 3]) == pytest.approx(210.019, abs=0.01)
    assert samples[-1].t_s == pytest.approx(
        read_plus_sequence(folder / "ReferenceToRASCalibration.igs.mha")[
            "StylusToTracker"
        ].timestamps_s[-1]
        - 196.7208142857271
    )


def test_plus_replay_follows_recorded_timing(tmp_path):
    path = _write_sequence(
        tmp_path / "seq.igs.mha",
        [
            (10.0, _translation(0), "OK"),
            (10.1, _translation(1), "OK"),
            (10.2, None, None),
            (10.3, _translation(3), "INVALID"),
            (10.4, _translation(4), None),
        ],
    )
    clock = FakeClock()
    source = PlusReplaySource(path, clock=clock, patient_from_tracker=np.eye(4))
    source.start()
    first = source.poll()
    assert first.t_s == 0.0 and first.status is TrackingStatus.OK
    assert source.poll() is None  # nothing new until the clock moves
    clock.now = 0.25  # frames 1 and 2 are due; the newest (2) has no transform → MISSING
    sample = source.poll()
    assert sample.raw["frame_index"] == 2 and sample.status is TrackingStatus.MISSING
    assert sample.tip_lps_mm is None  # a missing sample is never a zero pose
    assert source.counters["frames_skipped"] == 1
    clock.now = 0.31
    assert source.poll().status is TrackingStatus.MISSING  # INVALID status
    clock.now = 5.0
    last = source.poll()
    np.testing.assert_allclose(last.tip_lps_mm, [4.0, 0, 0])
    assert source.poll() is None and source.finished


def test_sequence_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.mha"
    bad.write_text("Seq_Frame0000_StylusToTrackerTransform = 1 0 0\nSeq_Frame0000_Timestamp = 1\n")
    with pytest.raises(
        ReplayError, match=r"bad.mha: line 1: StylusToTrackerTransform has 3 numbers"
    ):
        read_plus_sequence(bad)
    garbage = tmp_path / "garbage.mha"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ReplayError, match="garbage.mha"):
        read_plus_sequence(garbage)
    empty = tmp_path / "empty.mha"
    empty.write_text("ObjectType = Image\n")
    with pytest.raises(ReplayError, match="no 'Seq_FrameNNNN"):
        read_plus_sequence(empty)
    no_time = tmp_path / "notime.mha"
    no_time.write_text("Seq_Frame0000_StylusToTrackerTransform = " + " ".join(["1"] * 16) + "\n")
    with pytest.raises(ReplayError, match="Timestamp"):
        read_plus_sequence(no_time)
    backwards = _write_sequence(
        tmp_path / "backwards.mha", [(2.0, np.eye(4), "OK"), (1.0, np.eye(4), "OK")]
    )
    with pytest.raises(ReplayError, match="Seq_Frame0001_Timestamp goes backwards"):
        read_plus_sequence(backwards)
    with pytest.raises(ReplayError, match="no such file|cannot read"):
        read_plus_sequence(tmp_path / "absent.mha")


def test_unknown_tool_lists_available(tmp_path):
    path = _write_sequence(tmp_path / "seq.mha", [(0.0, np.eye(4), "OK")])
    with pytest.raises(ReplayError, match="StylusToTracker"):
        PlusReplaySource(path, tool="NeedleToTracker")


def test_attempt_replay_hands_back_recorded_samples():
    recorded = [
        (0.0, ToolSample(0.0, TrackingStatus.OK, np.zeros(3), np.array([0, 0, 1.0]))),
        (0.5, ToolSample(0.5, TrackingStatus.MISSING, None, None)),
        (
            1.0,
            ToolSample(
                1.0, TrackingStatus.OK, np.ones(3), np.array([0, 0, 1.0]), frozenset({"pedal"})
            ),
        ),
    ]
    clock = FakeClock()
    source = AttemptReplaySource(recorded, clock=clock)
    source.start()
    assert source.poll() is recorded[0][1]
    clock.now = 0.6
    assert source.poll() is recorded[1][1] and source.status is TrackingStatus.MISSING
    clock.now = 2.0
    assert source.poll().buttons == frozenset({"pedal"})
    assert source.poll() is None
    with pytest.raises(ReplayError, match="backwards"):
        AttemptReplaySource([(1.0, recorded[0][1]), (0.0, recorded[0][1])])


def _probe_positions(shared_data):
    track = read_plus_sequence(
        shared_data / "plus-tracking" / "TransformInterpolationTest.igs.mha"
    )["ProbeToTracker"]
    ok = track.ok
    return track.timestamps_s[ok] - track.timestamps_s[0], track.matrices[ok, :3, 3]


def _one_euro(times_s, positions, min_cutoff_hz, beta):
    from fluorosim.haptics.filtering import OneEuroFilter

    one_euro = OneEuroFilter(min_cutoff_hz, beta, 1.0)
    return np.array([one_euro(t, x) for t, x in zip(times_s, positions, strict=True)])


def _jitter_mm(positions):
    """RMS second difference: the frame-to-frame noise, insensitive to smooth motion."""
    return float(np.sqrt(np.mean(np.sum(np.diff(positions, 2, axis=0) ** 2, axis=1))))


def _lag_s(times_s, raw, filtered):
    """The delay that best aligns the filtered track with the raw one (after a 1 s settle)."""
    settled = times_s > 1.0
    delays = np.arange(0.0, 0.5, 0.002)
    errors = []
    for delay in delays:
        shifted = np.stack(
            [np.interp(times_s - delay, times_s, raw[:, i]) for i in range(3)], axis=1
        )
        errors.append(np.mean(np.sum((filtered[settled] - shifted[settled]) ** 2, axis=1)))
    return float(delays[int(np.argmin(errors))])


@pytest.mark.parametrize("min_cutoff_hz", [0.5, 1.0, 3.0])
def test_one_euro_lag_on_real_recording_matches_first_order_time_constant(
    shared_data, min_cutoff_hz
):
    """With beta = 0 the One Euro filter is a first-order low-pass: on the slow real probe motion
    (~4 mm/s) it lags by its time constant tau = 1/(2π·f_c) and removes most frame-to-frame jitter."""
    times_s, raw = _probe_positions(shared_data)
    filtered = _one_euro(times_s, raw, min_cutoff_hz, 0.0)
    tau_s = 1.0 / (2.0 * np.pi * min_cutoff_hz)
    assert _lag_s(times_s, raw, filtered) == pytest.approx(tau_s, rel=0.15)
    assert _jitter_mm(filtered) < 0.25 * _jitter_mm(raw)


def test_one_euro_beta_trades_jitter_for_lag_on_real_recording(shared_data):
    times_s, raw = _probe_positions(shared_data)
    results = [
        (_lag_s(times_s, raw, f), _jitter_mm(f))
        for f in (_one_euro(times_s, raw, 1.0, b) for b in (0.0, 0.05, 0.5))
    ]
    lags = [lag for lag, _ in results]
    jitters = [jitter for _, jitter in results]
    assert lags[0] > lags[1] > lags[2]  # raising beta cuts the lag …
    assert jitters[0] < jitters[1] < jitters[2] < _jitter_mm(raw)  # … and lets more jitter through


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.lists(
            st.sampled_from(
                [
                    b"Seq_Frame0000_StylusToTrackerTransform = 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n",
                    b"Seq_Frame0000_StylusToTrackerTransformStatus = OK\n",
                    b"Seq_Frame0000_Timestamp = 1.5\n",
                    b"Seq_Frame0001_StylusToTrackerTransform = 1 0 nan\n",
                    b"Seq_Frame0001_Timestamp = x\n",
                    b"Seq_Frame0002_StylusToTrackerTransformStatus = MAYBE\n",
                    b"ElementDataFile = LOCAL\n",
                    b"\xff\xfe\x00\n",
                ]
            ),
            max_size=12,
        ).map(b"".join),
    )
)
def test_garbage_sequence_files_give_a_clear_error_or_a_valid_result(tmp_path, data):
    path = tmp_path / "fuzz.mha"
    path.write_bytes(data)
    try:
        tracks = read_plus_sequence(path)
    except ReplayError as error:
        assert "fuzz.mha" in str(error)
        return
    for track in tracks.values():
        assert track.matrices.shape == (len(track), 4, 4)
        assert np.all(np.isfinite(track.matrices[track.ok]))

"""IgtlSource against pyigtl's OpenIGTLinkServer on 127.0.0.1, including a server restart.

Waiting loops bound how long a test waits for network threads; they assert behaviour, not speed.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pyigtl
import pytest

from fluorosim.haptics.igtl_source import IgtlSource
from fluorosim.haptics.source import TrackingStatus
from fluorosim.models.frames import rotation_about_axis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tool_pose(step: int) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_about_axis([0.0, 1.0, 0.0], 2.0 * step)
    matrix[:3, 3] = [10.0 + step, -20.0, 300.0]
    return matrix


class Streamer:
    """Sends TRANSFORM messages from a pyigtl server until a predicate on the source holds."""

    def __init__(self, server):
        self.server = server
        self.step = 0
        self.sent = {}

    def until(
        self, source, predicate, wait_s=20.0, device="StylusToTracker", other=True, status=None
    ):
        samples = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.server is not None and self.server.is_connected():
                self.step += 1
                pose = tool_pose(self.step)
                timestamp = 1000.0 + 0.05 * self.step
                self.sent[round(timestamp, 3)] = pose
                message = pyigtl.TransformMessage(pose, timestamp=timestamp, device_name=device)
                if status is not None:
                    message.header_version = 2
                    message.metadata = {"TransformStatus": status}
                self.server.send_message(message, wait=False)
                if other:
                    self.server.send_message(
                        pyigtl.TransformMessage(np.eye(4), device_name="ReferenceToTracker"),
                        wait=False,
                    )
            sample = source.poll()
            if sample is not None:
                samples.append(sample)
                if predicate(sample, samples):
                    return samples
            time.sleep(0.02)
        raise AssertionError(
            f"condition not reached; {len(samples)} samples, message={source.message!r}"
        )


@pytest.fixture
def server_port():
    return free_port()


def test_receives_named_tool_transforms(server_port):
    server = pyigtl.OpenIGTLinkServer(port=server_port)
    patient_from_tracker = np.eye(4)
    patient_from_tracker[:3, 3] = [0.0, 0.0, -300.0]
    tool_from_tip = np.eye(4)
    tool_from_tip[:3, 3] = [0.0, 0.0, 100.0]
    source = IgtlSource(
        "127.0.0.1",
        server_port,
        tool_name="StylusToTracker",
        tool_from_tip=tool_from_tip,
        patient_from_tracker=patient_from_tracker,
    )
    try:
        source.start()
        streamer = Streamer(server)
        samples = streamer.until(source, lambda s, all_: len(all_) >= 5)
    finally:
        source.stop()
        server.stop()
    for sample in samples:
        assert sample.status is TrackingStatus.OK
        assert (
            sample.raw["device_name"] == "StylusToTracker"
        )  # the reference's transforms are ignored
        pose = streamer.sent[round(sample.raw["timestamp_s"], 3)]
        truth = patient_from_tracker @ pose @ tool_from_tip
        np.testing.assert_allclose(
            sample.tip_lps_mm, truth[:3, 3], atol=1e-3
        )  # float32 on the wire
        np.testing.assert_allclose(sample.direction_lps, truth[:3, 2], atol=1e-5)
    # time comes from the message timestamps (0.05 s apart), relative to the first one heard
    times = np.array([s.t_s for s in samples])
    stamps = np.array([s.raw["timestamp_s"] for s in samples])
    np.testing.assert_allclose(np.diff(times), np.diff(stamps), atol=1e-6)


def test_server_restart_reconnects(server_port):
    server = pyigtl.OpenIGTLinkServer(port=server_port)
    source = IgtlSource("127.0.0.1", server_port, reconnect_after_s=0.5)
    try:
        source.start()
        streamer = Streamer(server)
        streamer.until(source, lambda s, _: s.status is TrackingStatus.UNCALIBRATED, other=False)
        assert source.tool_name == "StylusToTracker"  # first TRANSFORM device heard
        server.stop()
        streamer.server = None
        lost = streamer.until(source, lambda s, _: s.status is TrackingStatus.MISSING)
        assert lost[-1].tip_lps_mm is None and "reconnecting" in source.message
        server = pyigtl.OpenIGTLinkServer(port=server_port)
        streamer.server = server
        back = streamer.until(source, lambda s, _: s.status is TrackingStatus.UNCALIBRATED)
        assert back[-1].has_pose is False  # UNCALIBRATED: pose in tracker frame, not for display
        assert back[-1].tip_lps_mm is not None
        assert source.counters["reconnects"] >= 1 and source.message == ""
    finally:
        source.stop()
        server.stop()


def test_invalid_transform_status_is_missing_not_a_pose(server_port):
    server = pyigtl.OpenIGTLinkServer(port=server_port)
    source = IgtlSource("127.0.0.1", server_port, tool_name="StylusToTracker")
    try:
        source.start()
        streamer = Streamer(server)
        samples = streamer.until(source, lambda s, all_: len(all_) >= 3, status="INVALID")
        assert all(s.status is TrackingStatus.MISSING and s.tip_lps_mm is None for s in samples)
        assert samples[-1].raw["transform_status"] == "INVALID"
        ok = streamer.until(
            source, lambda s, _: s.status is TrackingStatus.UNCALIBRATED, status="OK"
        )
        assert ok[-1].tip_lps_mm is not None
    finally:
        source.stop()
        server.stop()

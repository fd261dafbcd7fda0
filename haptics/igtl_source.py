"""OpenIGTLink TRANSFORM messages (e.g. from a PLUS server on TCP 18944) as an instrument source.

``IgtlSource(host, port=18944, tool_name="StylusToTracker")`` listens through ``pyigtl``'s
``OpenIGTLinkClient`` for TRANSFORM messages whose device name is the tool (PLUS names them
``<Tool>ToTracker``, or ``<Tool>ToReference`` …). The matrix is ``tracker_from_tool``; the tool
calibration and registration turn it into a tip and shaft direction as for every tracker
(:func:`haptics.calibration.tip_and_direction`). With ``tool_name=None`` the first TRANSFORM device
heard is used. TRANSFORM is used, not POSITION (reference/tracking.md).

``pyigtl``'s client does not notice a server that closed its socket, so a supervisor thread
treats silence longer than ``reconnect_after_s`` as a lost link: the tool is reported MISSING
and the client is replaced by a fresh one that connects as soon as the server is back (a PLUS
server restart). A header-v2 message whose metadata ``TransformStatus`` is not ``OK`` (as
PLUS sends for an invalid transform when it is configured to send them) is MISSING, never a pose.
Sample times come from the message timestamps (the sender's clock), falling back
to the injected host clock when a sender leaves them at zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fluorosim.haptics.calibration import tip_and_direction, tool_roll_deg
from fluorosim.haptics.source import ReaderThreadSource, ToolSample, TrackingStatus

DEFAULT_PORT = 18944


def _default_client_factory(host: str, port: int) -> Any:
    import pyigtl

    return pyigtl.OpenIGTLinkClient(host=host, port=port, start_now=True)


class IgtlSource(ReaderThreadSource):
    """One tool's TRANSFORM stream from an OpenIGTLink server."""

    thread_name = "igtl-supervisor"

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        tool_name: str | None = None,
        tool_from_tip: ArrayLike | None = None,
        patient_from_tracker: ArrayLike | None = None,
        reconnect_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        client_factory: Callable[[str, int], Any] = _default_client_factory,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = int(port)
        self.tool_name = tool_name
        self.tool_from_tip = (
            None if tool_from_tip is None else np.asarray(tool_from_tip, dtype=float)
        )
        self.patient_from_tracker = (
            None if patient_from_tracker is None else np.asarray(patient_from_tracker, dtype=float)
        )
        self.reconnect_after_s = reconnect_after_s
        self.clock = clock
        self.name = f"OpenIGTLink {host}:{port}" + (f" ({tool_name})" if tool_name else "")
        self._client_factory = client_factory
        self._client: Any = None
        self._first_timestamp: float | None = None
        self._last_heard: float | None = None

    def stop(self) -> None:
        """Stop receiving and drop the connection."""
        self._stop_reader()
        self.status = TrackingStatus.DISCONNECTED

    # -- supervisor thread -------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            self._client = self._client_factory(self.host, self.port)
        except Exception as exc:  # noqa: BLE001 - bad host name, etc.
            self._client = None
            self.message = f"OpenIGTLink {self.host}:{self.port}: cannot connect ({exc})"
        self._last_heard = self.clock()

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.stop()
            except Exception:  # noqa: BLE001 - a dead client must not stop the supervisor
                self.count("client_stop_errors")

    def _publish(self, sample: ToolSample) -> None:
        self.status = sample.status
        super()._publish(sample)

    def _take_message(self) -> Any:
        client = self._client
        if client is None:
            return None
        with client.lock_incoming_messages:
            names = [
                name
                for name, message in client.incoming_messages.items()
                if getattr(message, "message_type", getattr(message, "_message_type", ""))
                == "TRANSFORM"
            ]
            if self.tool_name is None and names:
                self.tool_name = names[0]
                self.name = f"OpenIGTLink {self.host}:{self.port} ({self.tool_name})"
            if self.tool_name in names:
                return client.incoming_messages.pop(self.tool_name)
            for name in names:  # other tools' transforms: drop so the dict does not go stale
                if name != self.tool_name:
                    client.incoming_messages.pop(name, None)
        return None

    def _sample_from(self, message: Any) -> ToolSample:
        timestamp = float(getattr(message, "timestamp", 0.0) or 0.0)
        if timestamp > 0:
            if self._first_timestamp is None:
                self._first_timestamp = timestamp
            t_s = timestamp - self._first_timestamp
        else:
            t_s = self.clock()
        matrix = np.asarray(message.matrix, dtype=np.float64)
        raw: dict[str, Any] = {"device_name": message.device_name, "timestamp_s": timestamp}
        metadata = getattr(message, "metadata", None) or {}
        status_text = str(metadata.get("TransformStatus", "OK")).strip().upper()
        if status_text != "OK":
            raw["transform_status"] = status_text
            return ToolSample(t_s, TrackingStatus.MISSING, None, None, frozenset(), raw)
        rotation_ok = bool(matrix.shape == (4, 4) and np.all(np.isfinite(matrix)))
        if rotation_ok:
            gram = matrix[:3, :3].T @ matrix[:3, :3]
            rotation_ok = bool(np.abs(gram - np.eye(3)).max() < 1e-3)
        if not rotation_ok:
            self.count("bad_matrices")
            return ToolSample(t_s, TrackingStatus.MISSING, None, None, frozenset(), raw)
        raw["tracker_from_tool"] = matrix
        tip, direction = tip_and_direction(matrix, self.tool_from_tip, self.patient_from_tracker)
        roll = tool_roll_deg(matrix, self.tool_from_tip, self.patient_from_tracker)
        status = (
            TrackingStatus.OK
            if self.patient_from_tracker is not None
            else TrackingStatus.UNCALIBRATED
        )
        return ToolSample(t_s, status, tip, direction, frozenset(), raw, roll)

    def _run(self) -> None:
        self._connect()
        lost = False
        while not self._stop.is_set():
            message = self._take_message()
            now = self.clock()
            if message is not None:
                self._last_heard = now
                if lost:
                    self.count("reconnects")
                    self.message = ""
                    lost = False
                self.count("messages")
                self._publish(self._sample_from(message))
            elif self._last_heard is not None and now - self._last_heard > self.reconnect_after_s:
                if not lost:
                    lost = True
                    self.message = (
                        f"OpenIGTLink {self.host}:{self.port}: no {self.tool_name or 'TRANSFORM'} "
                        f"message for {self.reconnect_after_s:.1f} s; reconnecting"
                    )
                    self._publish(ToolSample(now, TrackingStatus.MISSING, None, None))
                self._disconnect()
                self._connect()
            self._stop.wait(0.005)
        self._disconnect()

"""One string names any instrument source: ``open_source(url) -> InstrumentSource``.

=====================================  =============================================================
``/dev/ttyACM0``, ``COM3``, a pty path  STP/1 serial rig (:class:`~haptics.serial_source.SerialStp1Source`)
``loop://``, ``socket://host:port``     STP/1 over a pyserial URL (tests, emulator on TCP)
``stp1:<port or url>``                  STP/1, explicitly
``ndi:/dev/ttyUSB0``                    NDI Aurora/Polaris, serial (``haptics.ndi.NdiSource``)
``ndi+tcp://host[:8765]``               NDI Vega over TCP
``igtl://host[:18944][/ToolName]``      OpenIGTLink TRANSFORM from a PLUS server (``haptics.igtl_source``)
``recording.mha[#ToolName]``            PLUS sequence file replay (``haptics.replay.PlusReplaySource``)
other files                             a recorded attempt, with ``attempt_loader`` (from the app)
``mouse``                               mouse and keyboard (``haptics.mouse.MouseSource``)
=====================================  =============================================================

The non-STP/1 classes live in modules of their own and are imported only when asked for; a missing
module gives a :class:`SourceUrlError` saying what is not available. Keyword arguments are passed to
the source's constructor (e.g. ``rig=``, ``recorder=``, ``patient_from_tracker=``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fluorosim.haptics.source import InstrumentSource, ToolSample

#: Default OpenIGTLink port (PLUS server).
IGTL_DEFAULT_PORT = 18944
#: Replay file suffixes of PLUS sequence files.
PLUS_SUFFIXES = (".mha", ".igs.mha", ".mhd")


class SourceUrlError(ValueError):
    """A source URL that cannot be opened; the message says why and what would work."""


def _load(module: str, name: str, url: str) -> Callable[..., InstrumentSource]:
    try:
        factory: Callable[..., InstrumentSource] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise SourceUrlError(
            f"{url}: this build has no {name} ({module} is not available: {error})"
        ) from None
    return factory


def parse_igtl_url(url: str) -> tuple[str, int, str | None]:
    """``igtl://host:port/Tool`` → (host, port, tool name or None)."""
    rest = url[len("igtl://") :]
    address, _, tool = rest.partition("/")
    host, _, port_text = address.partition(":")
    if not host:
        raise SourceUrlError(f"{url}: no host (expected igtl://host[:port][/ToolName])")
    try:
        port = int(port_text) if port_text else IGTL_DEFAULT_PORT
    except ValueError:
        raise SourceUrlError(f"{url}: port {port_text!r} is not a number") from None
    return host, port, tool or None


def describe_url(url: str) -> str:
    """The kind of source ``url`` names: stp1, ndi, igtl, plus_replay, attempt_replay, mouse."""
    if url == "mouse":
        return "mouse"
    if url.startswith(("ndi:", "ndi+tcp://")):
        return "ndi"
    if url.startswith("igtl://"):
        return "igtl"
    if url.startswith(("stp1:", "loop://", "socket://", "rfc2217://", "/dev/")) or (
        url.upper().startswith("COM") and url[3:].isdigit()
    ):
        return "stp1"
    path = url.partition("#")[0]
    if path.lower().endswith(PLUS_SUFFIXES):
        return "plus_replay"
    if Path(path).is_file():
        return "attempt_replay"
    return "stp1"  # a serial port path that is not there yet: the source says "no device at …"


def open_source(
    url: str,
    *,
    attempt_loader: Callable[[str], Iterable[tuple[float, ToolSample]]] | None = None,
    **kwargs: Any,
) -> InstrumentSource:
    """The (not yet started) source that ``url`` names; :class:`SourceUrlError` if it cannot be."""
    kind = describe_url(url)
    if kind == "mouse":
        return _load("fluorosim.haptics.mouse", "MouseSource", url)(**kwargs)
    if kind == "ndi":
        return _load("fluorosim.haptics.ndi", "NdiSource", url)(url, **kwargs)
    if kind == "igtl":
        host, port, tool = parse_igtl_url(url)
        return _load("fluorosim.haptics.igtl_source", "IgtlSource", url)(host, port, tool, **kwargs)
    if kind == "plus_replay":
        path, _, tool = url.partition("#")
        if not Path(path).is_file():
            raise SourceUrlError(f"{path}: no such PLUS sequence file")
        cls = _load("fluorosim.haptics.replay", "PlusReplaySource", url)
        return cls(path, tool=tool, **kwargs) if tool else cls(path, **kwargs)
    if kind == "attempt_replay":
        if attempt_loader is None:
            raise SourceUrlError(
                f"{url}: not a PLUS .mha file; replay a recorded attempt with 'fluorosim replay'"
            )
        cls = _load("fluorosim.haptics.replay", "AttemptReplaySource", url)
        return cls(attempt_loader(url), **kwargs)
    from fluorosim.haptics.serial_source import SerialStp1Source

    serial_port = url[len("stp1:") :] if url.startswith("stp1:") else url
    if not serial_port:
        raise SourceUrlError(f"{url}: no port (expected stp1:/dev/ttyACM0 or a pyserial URL)")
    return SerialStp1Source(serial_port, **kwargs)

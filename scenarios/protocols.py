"""The seams the headless session is built on: what it needs of a renderer and of a recorder.

The session (scenarios/session.py) is handed its renderer, recorder and instrument source; these
protocols say exactly what it calls, so a stand-in (tests, the review window's frame keeper) is
checked by the type checker instead of probed at run time. The instrument source's protocol is
haptics.source.SampleSource and the patient's view geometry needs models.patient.PatientLandmarks
(each lives in the layer below that also consumes it).

- :class:`Renderer`: ``render_frame(joints, instruments, exposure, chain_settings=, rng=)`` →
  a :class:`Frame` (the displayed image, its projection geometry and its dose record).
- :class:`TechniqueRenderer`: a renderer whose magnification mode the panel sets and whose tube
  voltage the automatic dose-rate control starts from (render.renderer.FluoroRenderer); a renderer
  without them (a test stand-in) renders at its own settings. Checked with ``isinstance``.
- :class:`Recorder`: the attempt file writer's calls (scenarios.recording.AttemptWriter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from fluorosim.models.instruments import InstrumentPose
    from fluorosim.render.carm import CArmJoints
    from fluorosim.render.exposure import Exposure
    from fluorosim.render.geometry import ProjectionGeometry
    from fluorosim.render.image_chain import ChainSettings
    from fluorosim.scenarios import commands as cmd
    from fluorosim.scenarios.scoring.report import Report
    from fluorosim.scenarios.session import Event, Session


class FrameDose(Protocol):
    """The dose of one frame as the session adds it up (render.dose.DoseRecord)."""

    @property
    def beam_on_s(self) -> float: ...
    @property
    def kap_gycm2(self) -> float: ...
    @property
    def air_kerma_mgy(self) -> float: ...


class Frame(Protocol):
    """A rendered frame as the session reads it (render.renderer.FluoroFrame)."""

    @property
    def image(self) -> NDArray[np.uint8]: ...
    @property
    def geometry(self) -> ProjectionGeometry: ...
    @property
    def dose(self) -> FrameDose | None: ...


@runtime_checkable
class Renderer(Protocol):
    """Renders one frame of the C-arm at ``joints`` with the instruments in place."""

    def render_frame(
        self,
        joints: CArmJoints,
        instruments: Sequence[InstrumentPose] = (),
        exposure: Exposure | None = None,
        chain_settings: ChainSettings | None = None,
        rng: np.random.Generator | None = None,
    ) -> Frame: ...


@runtime_checkable
class TechniqueRenderer(Renderer, Protocol):
    """A renderer with a magnification mode the session sets and the tube voltage its dose-rate
    control starts from (the control raises it for a thick view: render.dose.automatic_technique)."""

    mode: str
    kvp: float


class Recorder(Protocol):
    """Receives everything the session does, in order (scenarios.recording.AttemptWriter)."""

    def start(self, session: Session) -> None:
        """The session was created (write the header)."""

    def command(self, t_s: float, command: cmd.Command) -> None:
        """A command is about to be applied."""

    def event(self, event: Event) -> None:
        """An event was emitted."""

    def tick(self) -> None:
        """Time advanced (flush what is buffered when due)."""

    def sync(self) -> None:
        """A step changed: make what is written durable."""

    def finish(self, report: Report) -> None:
        """The attempt was scored: write the report and close."""

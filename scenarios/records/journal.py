"""Crash safety: the journal of attempts in progress, and recovery of interrupted ones on restart.

Every attempt is written as it runs (:class:`scenarios.recording.AttemptWriter`, flushed at least
every second). Beside it the journal keeps a small sidecar ``<attempt>.journal.json`` saying whose
attempt it is (trainee, scenario, mode, start time). When the attempt is recorded in the database the
sidecar is removed. So after a crash or a power cut, any sidecar left behind points at an attempt
that never reached the records: :func:`interrupted_attempts` finds them, and :func:`recover`
records each as ``interrupted`` (scored as it stood, from its replayed commands), losing at most the
last second before the crash.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluorosim.scenarios.records.database import RecordStore

SIDECAR_SUFFIX = ".journal.json"


@dataclass(frozen=True)
class JournalEntry:
    """An attempt in progress (or interrupted): its file and whose it is."""

    attempt_path: Path
    trainee_id: str
    scenario_id: str
    mode: str
    started_utc: str

    @property
    def sidecar_path(self) -> Path:
        return sidecar_for(self.attempt_path)


def sidecar_for(attempt_path: Path) -> Path:
    """The journal sidecar of an attempt file."""
    return attempt_path.with_name(attempt_path.name + SIDECAR_SUFFIX)


def begin(
    attempt_path: Path, trainee_id: str, scenario_id: str, mode: str, started_utc: str | None = None
) -> JournalEntry:
    """Journal an attempt that is starting (written and fsynced before the first command)."""
    entry = JournalEntry(
        Path(attempt_path),
        trainee_id,
        scenario_id,
        mode,
        started_utc or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    )
    payload = {
        "attempt": entry.attempt_path.name,
        "trainee_id": trainee_id,
        "scenario_id": scenario_id,
        "mode": mode,
        "started_utc": entry.started_utc,
    }
    temporary = entry.sidecar_path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, entry.sidecar_path)
    return entry


def end(entry: JournalEntry) -> None:
    """The attempt reached the records: forget it."""
    entry.sidecar_path.unlink(missing_ok=True)


def interrupted_attempts(directory: Path) -> tuple[list[JournalEntry], list[str]]:
    """Attempts journaled in ``directory`` that never reached the records, and unreadable sidecars."""
    entries: list[JournalEntry] = []
    problems: list[str] = []
    if not directory.is_dir():
        return entries, problems
    for sidecar in sorted(directory.glob(f"*{SIDECAR_SUFFIX}")):
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            attempt_path = sidecar.with_name(data["attempt"])
            entries.append(
                JournalEntry(
                    attempt_path,
                    str(data["trainee_id"]),
                    str(data["scenario_id"]),
                    str(data.get("mode", "learning")),
                    str(data["started_utc"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            problems.append(f"{sidecar}: unreadable journal entry ({error})")
    return entries, problems


def recover(store: RecordStore, entry: JournalEntry, replay: Any = None) -> int:
    """Record an interrupted attempt as ``interrupted``, scored as it stood; returns its id.

    ``replay(path) -> report dict`` scores it (default: :func:`scenarios.recording.replay_attempt`
    without re-rendering images, which scoring does not need). An attempt file too damaged to
    replay is still recorded, with the reason instead of a score, so nothing silently disappears.
    """
    report: dict[str, Any]
    if not entry.attempt_path.is_file():
        report = {
            "findings": [
                f"The attempt file {entry.attempt_path.name} is missing; nothing could be scored."
            ]
        }
    else:
        try:
            report = (replay or _replay_without_images)(entry.attempt_path)
        except (OSError, ValueError, KeyError) as error:
            report = {"findings": [f"The attempt could not be replayed: {error}"]}
    report["passed"] = None  # an interrupted attempt neither passes nor fails a learning curve
    store.add_trainee(entry.trainee_id, entry.trainee_id)
    attempt_id = store.record_attempt(
        entry.trainee_id,
        entry.scenario_id,
        report,
        entry.started_utc,
        None,
        entry.attempt_path if entry.attempt_path.is_file() else None,
        mode=entry.mode,
        status="interrupted",
    )
    end(entry)
    return attempt_id


def _replay_without_images(path: Path) -> dict[str, Any]:
    from fluorosim.scenarios.recording import replay_attempt

    return replay_attempt(path, renderer_factory=lambda patient, carm_model: None).as_json()

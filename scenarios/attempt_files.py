"""Where a live attempt is written and how it ends up in the records.

An attempt started from the GUI is recorded to ``<attempts dir>/<stamp>-<trainee>-<scenario>.jsonl``
with a journal sidecar (:mod:`fluorosim.scenarios.records.journal`) so an attempt cut short by a
crash can be recovered; a finished attempt is added to the record store with its report, an
interrupted one is recovered from its file and kept as interrupted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluorosim.scenarios.recording import AttemptWriter
from fluorosim.scenarios.records import journal


def attempts_directory() -> Path:
    """Where attempt files are written (``FLUOROSIM_ATTEMPTS_DIR``, else the per-user data dir)."""
    import platformdirs

    override = os.environ.get("FLUOROSIM_ATTEMPTS_DIR")
    return (
        Path(override) if override else Path(platformdirs.user_data_dir("fluorosim")) / "attempts"
    )


def utc_stamp() -> str:
    """Now, as the records store times (ISO 8601, UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


@dataclass
class AttemptFile:
    """One attempt's file, its journal entry and when it started."""

    path: Path
    trainee_id: str
    scenario_id: str
    mode: str
    started_utc: str
    entry: journal.JournalEntry | None
    writer: AttemptWriter

    @classmethod
    def begin(
        cls,
        trainee_id: str,
        scenario_id: str,
        mode: str,
        patient_parameters: dict[str, Any],
        directory: Path | None = None,
    ) -> AttemptFile:
        """Open a new attempt file (and its journal entry) in ``directory``."""
        directory = directory if directory is not None else attempts_directory()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe_trainee = "".join(c if c.isalnum() or c in "-_" else "_" for c in trainee_id)
        path = directory / f"{stamp}-{safe_trainee}-{scenario_id}.jsonl"
        started = utc_stamp()
        entry = journal.begin(path, trainee_id, scenario_id, mode, started)
        writer = AttemptWriter(path, patient_parameters=patient_parameters)
        return cls(path, trainee_id, scenario_id, mode, started, entry, writer)

    def record_finished(self, scenario_title: str, report: dict[str, Any]) -> None:
        """Add the finished attempt and its report to the records; close the journal entry."""
        from fluorosim.scenarios.records.database import RecordStore

        with RecordStore.open() as store:
            store.add_trainee(self.trainee_id, self.trainee_id)
            store.ensure_scenario(self.scenario_id, scenario_title)
            store.record_attempt(
                self.trainee_id,
                self.scenario_id,
                report,
                self.started_utc,
                utc_stamp(),
                self.path,
                mode=self.mode,
            )
        if self.entry is not None:
            journal.end(self.entry)
            self.entry = None

    def record_interrupted(self) -> None:
        """Keep the attempt in the records as interrupted (scored as it stood; close the writer
        first)."""
        from fluorosim.scenarios.records.database import RecordStore

        if self.entry is None:
            return
        with RecordStore.open() as store:
            journal.recover(store, self.entry)
        self.entry = None

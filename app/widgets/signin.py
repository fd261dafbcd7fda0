"""Sign in: the trainee's name or ID, the scenario, the mode (learning or exam), and the patient.

The procedures come first in the scenario list and the C-arm drills after them, and a first sign-in
starts on the first procedure: that is what a trainee came for. Later sign-ins start from the last
trainee, scenario, mode and patient (kept in QSettings by the main window).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)


@dataclass(frozen=True)
class SignInChoice:
    """What the trainee chose at sign-in."""

    trainee_id: str
    scenario_id: str
    mode: str  # "learning" | "exam"
    seed: int
    random_patient: bool


class SignInDialog(QDialog):
    """Asks who is training and on what; OK stays disabled until a name or ID is entered."""

    def __init__(
        self,
        scenarios: dict[str, str],
        last: SignInChoice | None = None,
        parent: QWidget | None = None,
        drills: Collection[str] = (),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("fluorosim — sign in")
        form = QFormLayout(self)
        intro = QLabel(
            "Sign in to start an attempt. Every attempt is recorded for replay and for your instructor."
        )
        intro.setWordWrap(True)
        form.addRow(intro)
        self.trainee = QLineEdit(last.trainee_id if last else "")
        self.trainee.setPlaceholderText("your name or trainee ID")
        self.scenario = QComboBox()
        procedures = [i for i in scenarios if i not in drills]
        drill_ids = [i for i in scenarios if i in drills]
        for scenario_id in procedures:
            self.scenario.addItem(f"{scenarios[scenario_id]} ({scenario_id})", scenario_id)
        if procedures and drill_ids:
            self.scenario.insertSeparator(self.scenario.count())
        for scenario_id in drill_ids:
            self.scenario.addItem(f"{scenarios[scenario_id]} ({scenario_id})", scenario_id)
        wanted = last.scenario_id if last and last.scenario_id in scenarios else None
        index = self.scenario.findData(wanted) if wanted else 0
        self.scenario.setCurrentIndex(max(0, index))
        self.mode = QComboBox()
        self.mode.addItem("Learning — named views, hints and the 3D view", "learning")
        self.mode.addItem("Exam — no hints, no 3D view", "exam")
        if last and last.mode == "exam":
            self.mode.setCurrentIndex(1)
        self.seed = QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setValue(last.seed if last else 0)
        self.random_patient = QCheckBox("A new random patient each attempt")
        self.random_patient.setChecked(bool(last and last.random_patient))
        form.addRow("Trainee", self.trainee)
        form.addRow("Scenario", self.scenario)
        form.addRow("Mode", self.mode)
        form.addRow("Patient seed", self.seed)
        form.addRow(self.random_patient)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.trainee.textChanged.connect(self._update_ok)
        self._update_ok()

    def _update_ok(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
            bool(self.trainee.text().strip())
        )

    def choice(self) -> SignInChoice:
        """The current choice."""
        return SignInChoice(
            trainee_id=self.trainee.text().strip(),
            scenario_id=self.scenario.currentData(),
            mode=self.mode.currentData(),
            seed=self.seed.value(),
            random_patient=self.random_patient.isChecked(),
        )

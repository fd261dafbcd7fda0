"""Start the simulator window: the QApplication, sign-in, the main window and the session controller.

Kept apart from :mod:`app.cli` so that every other subcommand runs without importing Qt.
"""

from __future__ import annotations

import sys

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication, QDialog

from app import __version__
from app.controller import SessionController
from app.main_window import MainWindow
from app.widgets.signin import SignInChoice, SignInDialog


def shipped_scenario_titles() -> dict[str, str]:
    """Scenario id → title of every shipped scenario (for the sign-in list)."""
    from scenarios.loader import load_shipped, shipped_scenarios

    titles = {}
    for scenario_id in shipped_scenarios():
        try:
            titles[scenario_id] = load_shipped(scenario_id).title
        except Exception as error:  # a broken shipped file must not keep the others from the list
            print(f"fluorosim: skipping scenario {scenario_id}: {error}", file=sys.stderr)
    return titles


def last_choice(settings: QSettings) -> SignInChoice | None:
    """The sign-in remembered from the previous run."""
    value = settings.value("signin/last")
    try:
        trainee, scenario, mode, seed, random_patient = value
        return SignInChoice(
            str(trainee), str(scenario), str(mode), int(seed), str(random_patient).lower() == "true"
        )
    except (TypeError, ValueError):
        return None


def run_gui(
    device_url: str = "mouse",
    scenario_id: str | None = None,
    trainee: str | None = None,
    mode: str = "learning",
    seed: int = 0,
) -> int:
    """Show sign-in (unless trainee and scenario are given), then the window; returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("fluorosim")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("fluorosim")
    settings = QSettings("fluorosim", "fluorosim")
    controller = SessionController(device_url=device_url)
    window = MainWindow(controller, settings)
    window.show()
    titles = shipped_scenario_titles()
    if trainee and scenario_id:
        choice = SignInChoice(trainee, scenario_id, mode, seed, False)
    else:
        dialog = SignInDialog(titles, last_choice(settings), window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            window.close()
            return 0
        choice = dialog.choice()
    window.new_attempt_action.triggered.connect(lambda: _sign_in_again(window, titles, settings))
    window.start_attempt(choice)
    return app.exec()


def _sign_in_again(window: MainWindow, titles: dict[str, str], settings: QSettings) -> None:
    dialog = SignInDialog(titles, last_choice(settings), window)
    if dialog.exec() == QDialog.DialogCode.Accepted:
        window.start_attempt(dialog.choice())

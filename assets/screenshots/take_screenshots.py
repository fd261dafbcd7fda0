"""Retake the README's screenshots from the real window on an X server (Xvfb at 1920×1080).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python assets/screenshots/take_screenshots.py

Signs in to ``sij-lateral`` (learning mode, built-in patient), takes an inlet shot and pins it as
the reference, turns to the true lateral of the sacrum, taps the guide pin in and takes a shot, and grabs the X
screen (``window.png``); then finishes and grabs the score report (``report.png``). Records and
settings go to a scratch folder, never to the user's own.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
SCRATCH = Path(tempfile.mkdtemp(prefix="fluorosim-shots-"))
os.environ["FLUOROSIM_DB_URL"] = f"sqlite:///{SCRATCH / 'records.sqlite'}"
os.environ["FLUOROSIM_ATTEMPTS_DIR"] = str(SCRATCH / "attempts")
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")

from PyQt6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from fluorosim.app.controller import SessionController  # noqa: E402
from fluorosim.app.main_window import MainWindow  # noqa: E402
from fluorosim.app.widgets.signin import SignInChoice  # noqa: E402


def wait(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def wait_for(condition, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("take_screenshots: timed out")
        wait(0.1)


def grab(app: QApplication, name: str) -> None:
    app.processEvents()
    path = HERE / name
    app.primaryScreen().grabWindow(0).save(str(path))  # the X screen, as a person sees it
    print(f"take_screenshots: {path}")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    controller = SessionController()
    window = MainWindow(
        controller, QSettings(str(SCRATCH / "settings.ini"), QSettings.Format.IniFormat)
    )
    window.ask_to_leave = lambda: True
    window.show()
    loaded, frames, surfaces, reports = [], [], [], []
    controller.scenario_loaded.connect(loaded.append)
    controller.frame_ready.connect(lambda image, info: frames.append(info))
    controller.surfaces_ready.connect(surfaces.append)
    controller.report_ready.connect(reports.append)
    window.start_attempt(SignInChoice("demo", "sij-lateral", "learning", 0, False))
    wait_for(lambda: bool(loaded))
    wait_for(lambda: bool(surfaces), 120)

    def shot_in(view: str) -> None:
        controller.go_to_view(view)
        wait(1.0)
        count = len(frames)
        controller.single_shot()
        wait_for(lambda: len(frames) > count, 60)
        wait(0.5)

    shot_in("inlet")
    window.pin_reference()
    controller.set_button("tap", True)
    for _ in range(200):  # 100 mm of guide pin: soft tissue, then the ilium, tapping the cortex
        controller.advance(0.5)
        wait(0.02)
    controller.set_button("tap", False)
    shot_in("true_lateral_sacrum")
    wait(2.0)  # the 3D view redraws with the pin
    grab(app, "window.png")
    controller.finish()
    wait_for(lambda: bool(reports), 120)
    wait(1.0)
    grab(app, "report.png")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

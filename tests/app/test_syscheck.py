"""The system check names the apt-get package for a missing library and a missing display."""

import sys

import pytest

from app import syscheck

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only check")


def test_reports_missing_library_by_package():
    def find_library(name):
        return None if name == "xcb-cursor" else f"lib{name}.so"

    assert syscheck.missing_packages(gui=True, find_library=find_library) == ["libxcb-cursor0"]
    assert syscheck.missing_packages(gui=False, find_library=find_library) == []


def test_display_needed_for_a_window():
    assert syscheck.display_problem(True, {}) is not None
    assert "Xvfb" in syscheck.display_problem(True, {})
    assert syscheck.display_problem(True, {"DISPLAY": ":0"}) is None
    assert syscheck.display_problem(True, {"QT_QPA_PLATFORM": "offscreen"}) is None
    assert syscheck.display_problem(False, {}) is None


def test_main_prints_one_line_per_problem(monkeypatch, capsys):
    monkeypatch.setattr(syscheck, "missing_packages", lambda gui: ["libxcb-cursor0"])
    monkeypatch.setattr(syscheck, "display_problem", lambda gui: None)
    assert syscheck.main(["--gui"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "fluorosim: missing system libraries for Qt/VTK; install them with: "
        "sudo apt-get install libxcb-cursor0"
    ]

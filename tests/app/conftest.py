"""GUI tests: the only place that creates a QApplication (pytest-qt's ``qtbot``), offscreen."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

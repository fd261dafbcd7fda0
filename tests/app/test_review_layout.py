"""The review window as an instructor uses it on a lab laptop: at 1366×768 no column of the
attempts list is off-screen, Ctrl+Q and Ctrl+↑/↓ act wherever focus is, and the replay's "Jump to"
box names the shot being shown.
"""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest

from fluorosim.app.review_window import ATTEMPT_COLUMNS, ReviewWindow
from tests.app.test_review import (  # noqa: F401 - pytest fixtures
    INSTRUCTOR,
    records,
    review,
    select_trainee,
    stand_in_replayer,
    synthetic,
)


def press(window, key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A key typed on the keyboard: delivered to the window, so shortcuts see it first and the
    focused widget gets it after, as with a real keyboard."""
    QTest.keyClick(window.windowHandle(), key, modifiers)


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_every_attempt_column_is_on_screen(qtbot, review, size):  # noqa: F811
    review.resize(*size)
    select_trainee(review, "t-1")
    qtbot.waitUntil(lambda: review.attempts.rowCount() == 2)
    qtbot.wait(50)
    table = review.attempts
    visible = table.viewport().width()
    for column, name in enumerate(ATTEMPT_COLUMNS):
        right = table.columnViewportPosition(column) + table.columnWidth(column)
        assert right <= visible, f"column '{name}' ends at {right} px of {visible}"
        assert table.columnWidth(column) >= 20, name
    score = table.item(1, ATTEMPT_COLUMNS.index("score"))
    assert score.text() == f"{review.store.attempts('t-1')[1].score:.1f}"


def test_attempt_keys_work_wherever_focus_is(qtbot, review):  # noqa: F811
    select_trainee(review, "t-1")
    qtbot.waitUntil(lambda: review.attempts.rowCount() == 2)
    review.activateWindow()
    qtbot.waitActive(review)
    for widget in (review.cohort, review.attempts, review.programme, review.replay.slider):
        review.attempts.clearSelection()
        review.attempts.setCurrentCell(-1, -1)
        widget.setFocus()
        qtbot.waitUntil(widget.hasFocus)
        press(review, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
        assert review.attempts.currentRow() == 0, widget
        press(review, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
        assert review.attempts.currentRow() == 1, widget
        press(review, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
        assert review.attempts.currentRow() == 0, widget
        qtbot.waitUntil(lambda: review.replaying_attempt is None, timeout=60_000)


def test_ctrl_q_closes_the_review(qtbot, records, synthetic):  # noqa: F811
    window = ReviewWindow(records, INSTRUCTOR, replayer=stand_in_replayer(synthetic))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitActive(window)
    window.programme.setFocus()
    press(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible())


def test_jump_box_names_the_shot_shown(qtbot):
    from fluorosim.app.review_window import ReplayTimeline

    timeline = ReplayTimeline()
    qtbot.addWidget(timeline)
    image = np.zeros((8, 8), np.float32)
    frames = [
        (float(t), image, {"shot": shot, "view": view})
        for t, (shot, view) in enumerate(
            [(1, "lateral"), (1, "lateral"), (2, "inlet"), (2, "inlet"), (2, "inlet"), (3, "ap")]
        )
    ]
    timeline.set_frames(frames)
    assert timeline.shot_jump.count() == 3
    for frame_index, expected_shot in [(0, 1), (3, 2), (4, 2), (5, 3), (1, 1)]:
        timeline.slider.setValue(frame_index)
        assert timeline.shot_jump.currentText().startswith(f"shot {expected_shot} "), frame_index
    timeline.shot_jump.activated.emit(1)
    assert timeline.slider.value() == 2
    timeline.step(+1)
    assert timeline.slider.value() == 3 and timeline.shot_jump.currentIndex() == 1

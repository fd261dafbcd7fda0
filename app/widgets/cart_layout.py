"""The C-arm cart on the screen: the two monitors side by side, square and as large as the screen
allows, the panels as dock widgets around them, and the swap of the 3D view (or the score report)
with the reference monitor.

The default layout (first start, or View → Default layout) gives the monitors all the width the
dock column on the right (C-arm and instrument panels over the 3D view) does not need: at
1920×1080 each monitor is ≈64 % of the screen height, at 1366×768 ≈60 %; the procedure panel
fills the strip under them. Every dock can be collapsed, moved or floated; Qt's
saveState/restoreState (kept in QSettings by the main window) brings the arrangement back next
start.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

#: Monitor side the default layout aims for, as a fraction of the window height.
TARGET_MONITOR_FRACTION = 0.64
#: Narrowest the dock column gets (the panels' forms need about this much).
MIN_DOCK_WIDTH_PX = 420
#: Margins, spacing and dock separators between the window edge and the monitors (px).
CHROME_WIDTH_PX = 40
#: Share of the dock column's height the panels get over the 3D view (learning mode).
PANELS_HEIGHT_SHARE = 0.6
#: Height of the row of buttons under the monitors, with margins (px).
BUTTON_ROW_PX = 48
#: The strip under the monitors is never lower than this (px).
MIN_STRIP_PX = 150
#: Version passed to QMainWindow.saveState/restoreState: an older arrangement is not restored.
LAYOUT_VERSION = 3


def dock_column_width(window_width_px: int, window_height_px: int) -> int:
    """Width of the dock column that leaves the monitors their target size (never below the
    panels' own need)."""
    monitors_px = 2 * TARGET_MONITOR_FRACTION * window_height_px + CHROME_WIDTH_PX
    return int(max(MIN_DOCK_WIDTH_PX, window_width_px - monitors_px))


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area, so a small dock never squeezes or cuts its form."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    return area


def make_dock(window: QMainWindow, title: str, name: str, widget: QWidget) -> QDockWidget:
    """A movable, floatable, closable dock (View menu brings it back) named for saveState."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetClosable
        | QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
    )
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return dock


def apply_default_layout(
    window: QMainWindow,
    column: list[QDockWidget],
    bottom: QDockWidget,
    scene: QDockWidget,
    monitor_side_px: int,
) -> None:
    """The ``column`` docks tabified on the right (the first raised) over the 3D view (when it is
    shown: learning mode, not swapped onto the reference monitor), the full window height; the
    ``bottom`` dock in the strip under the monitors (``monitor_side_px`` high, with their buttons).
    """
    scene_shown = not scene.isHidden()
    window.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    for dock in [*column, bottom, scene]:
        window.removeDockWidget(dock)
        dock.setFloating(False)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, column[0])
    window.splitDockWidget(column[0], scene, Qt.Orientation.Vertical)
    for dock in column[1:]:
        window.tabifyDockWidget(column[0], dock)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, bottom)
    for dock in [*column, bottom]:
        dock.show()
    scene.setVisible(scene_shown)
    column[0].raise_()
    width = dock_column_width(window.width(), window.height())
    window.resizeDocks([column[0]], [width], Qt.Orientation.Horizontal)
    bars_px = window.menuBar().height() + window.statusBar().height()
    strip_px = window.height() - bars_px - monitor_side_px - BUTTON_ROW_PX
    window.resizeDocks([bottom], [max(MIN_STRIP_PX, strip_px)], Qt.Orientation.Vertical)
    if scene_shown:
        height = max(1, window.height() - bars_px)
        panels_px = int(height * PANELS_HEIGHT_SHARE)
        window.resizeDocks(
            [column[0], scene], [panels_px, height - panels_px], Qt.Orientation.Vertical
        )


def default_monitor_side(window_width_px: int, window_height_px: int) -> int:
    """The monitors' side the default layout leaves: the width beside the dock column, halved."""
    free_px = window_width_px - dock_column_width(window_width_px, window_height_px)
    return int((free_px - CHROME_WIDTH_PX) // 2)


class MonitorPair(QWidget):
    """Two square monitors side by side, as large as the space allows, at the top."""

    SPACING_PX = 6

    def __init__(self, left: QWidget, right: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.left, self.right = left, right
        for child in (left, right):
            child.setParent(self)
        self.setMinimumSize(2 * 240 + self.SPACING_PX, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def side_px(self) -> int:
        """The monitors' side for the current size."""
        return max(1, min((self.width() - self.SPACING_PX) // 2, self.height()))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        side = self.side_px()
        x0 = (self.width() - 2 * side - self.SPACING_PX) // 2
        self.left.setGeometry(x0, 0, side, side)
        self.right.setGeometry(x0 + side + self.SPACING_PX, 0, side, side)
        super().resizeEvent(event)


class ReferenceSlot(QStackedWidget):
    """Where the reference monitor stands; the 3D view can take its place (and give it back)."""

    def __init__(self, reference: QWidget, scene_dock: QDockWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.reference = reference
        self.scene_dock = scene_dock
        self.scene = scene_dock.widget()
        self.addWidget(reference)
        self.dock_note = QWidget()

    @property
    def swapped(self) -> bool:
        """True while the 3D view stands in the reference monitor's place."""
        return self.currentWidget() is self.scene

    def show_page(self, page: QWidget) -> None:
        """Show ``page`` (e.g. the score report) in the reference monitor's place."""
        if self.swapped:
            self.swap()
        if self.indexOf(page) < 0:
            self.addWidget(page)
        self.setCurrentWidget(page)

    def show_reference(self) -> None:
        """The reference monitor again (after the report or the 3D view)."""
        if self.swapped:
            self.swap()
        self.setCurrentWidget(self.reference)

    def swap(self) -> None:
        """Put the 3D view where the reference monitor is, or back into its dock."""
        if self.swapped:
            self.removeWidget(self.scene)
            self.scene_dock.setWidget(self.scene)
            self.setCurrentWidget(self.reference)
        else:
            self.scene_dock.setWidget(self.dock_note)
            self.addWidget(self.scene)
            self.setCurrentWidget(self.scene)
        self.scene.show()

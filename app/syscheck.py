"""Check the system libraries Qt and VTK need before starting, and name the apt-get to fix it.

PyQt6 and VTK wheels bundle Qt and VTK themselves but load a few system libraries (OpenGL, EGL,
fontconfig, xkbcommon, and for a real window the X11/xcb ones). When one is missing Qt aborts
with a long plugin traceback; this check prints one line naming the package to install instead.
Run as ``python -m app.syscheck`` (tests) or ``python -m app.syscheck --gui`` (the window).
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from collections.abc import Callable, Sequence

#: Library soname stem (as ctypes.util.find_library takes it) → Debian package that ships it.
HEADLESS_LIBRARIES: dict[str, str] = {
    "GL": "libgl1",
    "EGL": "libegl1",
    "fontconfig": "libfontconfig1",
    "xkbcommon": "libxkbcommon0",
    "glib-2.0": "libglib2.0-0",
    "dbus-1": "libdbus-1-3",
}
#: Extra libraries the xcb platform plugin loads for a real window on X11.
WINDOW_LIBRARIES: dict[str, str] = {
    "xcb-cursor": "libxcb-cursor0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-randr": "libxcb-randr0",
    "xcb-shape": "libxcb-shape0",
    "Xrender": "libxrender1",
}


def missing_packages(
    gui: bool, find_library: Callable[[str], str | None] = ctypes.util.find_library
) -> list[str]:
    """Debian packages whose libraries cannot be found (empty when all is well)."""
    if not sys.platform.startswith("linux"):
        return []  # the Windows and macOS wheels carry everything they need
    wanted = dict(HEADLESS_LIBRARIES)
    if gui:
        wanted.update(WINDOW_LIBRARIES)
    return sorted({package for lib, package in wanted.items() if find_library(lib) is None})


def display_problem(gui: bool, environ: dict[str, str] | None = None) -> str | None:
    """A one-line message when a window is wanted but there is no display to show it on."""
    env = os.environ if environ is None else environ
    if not gui or not sys.platform.startswith("linux"):
        return None
    if env.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "fluorosim run needs a display: no DISPLAY or WAYLAND_DISPLAY is set "
        "(on a server, run it under Xvfb: xvfb-run -a make run)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the system can run fluorosim, else print one line per problem and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m app.syscheck", description=__doc__)
    parser.add_argument("--gui", action="store_true", help="also check what a real window needs")
    args = parser.parse_args(argv)
    problems = []
    packages = missing_packages(args.gui)
    if packages:
        problems.append(
            "fluorosim: missing system libraries for Qt/VTK; install them with: "
            f"sudo apt-get install {' '.join(packages)}"
        )
    display = display_problem(args.gui)
    if display:
        problems.append(display)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

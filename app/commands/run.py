"""``fluorosim run``: start the simulator window on the built-in patient"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "start the simulator window on the built-in patient"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim run``."""
    parser.add_argument(
        "--mouse", action="store_true", help="use the mouse and keyboard instrument"
    )


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("run", 7, "the simulator window")

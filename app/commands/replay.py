"""``fluorosim replay``: score a recorded or scripted attempt headlessly and print the report"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "score a recorded or scripted attempt headlessly and print the report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim replay``."""
    parser.add_argument("file", nargs="?", help="attempt file or scripted attempt (JSON)")


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("replay", 6, "scoring of recorded and scripted attempts")

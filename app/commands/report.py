"""``fluorosim report``: instructor reports, learning curves and ledger verification"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "instructor reports, learning curves and ledger verification"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim report``."""
    parser.add_argument("--trainee", help="trainee ID")


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("report", 8, "instructor reports and the ledger")

"""``fluorosim devices``: list, monitor and emulate instrument tracking devices"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "list, monitor and emulate instrument tracking devices"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim devices``."""
    parser.add_argument("action", nargs="?", choices=["list", "monitor", "emulate"], default="list")


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("devices", 5, "instrument devices")

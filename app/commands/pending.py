"""Shared answer of a subcommand whose issue has not landed yet: say so, exit non-zero."""

from __future__ import annotations

import sys

#: Exit code of a subcommand that is not available in this build.
NOT_AVAILABLE_EXIT = 3


def not_available(command: str, issue: int, what: str) -> int:
    """Print a one-line explanation naming the issue that delivers ``command``; return 3."""
    print(
        f"fluorosim {command}: not available yet in this build ({what} arrives with issue #{issue}).",
        file=sys.stderr,
    )
    return NOT_AVAILABLE_EXIT

"""Every shipped file's references resolve inside the repository (issue #14).

No file a user receives names a machine path or a document outside the repository (a reference
folder, an architecture page); the README's links and images point at files that exist.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Pointers that lead nowhere for a user who installed fluorosim.
FORBIDDEN = ("/work/", "shared/reference", "ARCHITECTURE.md")
SHIPPED_SUFFIXES = {".py", ".toml", ".md", ".json", ".txt", ".cfg"}


def _shipped_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        REPO / name
        for name in listed
        if Path(name).suffix in SHIPPED_SUFFIXES and not name.startswith(("tests/", ".ci/"))
    ]


def test_no_shipped_file_points_outside_the_repository():
    offenders = []
    for path in _shipped_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in FORBIDDEN:
            if needle in text:
                line = text[: text.index(needle)].count("\n") + 1
                offenders.append(f"{path.relative_to(REPO)}:{line} names {needle}")
    assert not offenders, "\n".join(offenders)


def test_readme_links_and_images_exist():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)\)", readme)
    local = [t for t in targets if not re.match(r"^[a-z]+://", t)]
    assert local, "the README links no repository file"
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, missing

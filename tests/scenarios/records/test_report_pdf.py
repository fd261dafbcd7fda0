"""The credentialing PDF as a committee reads it: pages rendered to PNG and their text checked.

A tampered store must be unmistakable on page 1 (a red banner) and on every page (a watermark);
procedures and drills each get their own learning curve, CUSUM and LC-CUSUM with whole-number
attempt axes labelled by the table's attempt IDs; sign-offs show the instructor's name and plain
words; every page is numbered; the report ends with a signature block.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.figure import Figure

from fluorosim.scenarios.records.database import RecordStore
from fluorosim.scenarios.records.learning import learning_curve
from fluorosim.scenarios.records.plots import _attempt_axis
from fluorosim.scenarios.records.report import build_trainee_report, write_report
from tests.scenarios.records.conftest import make_instructor, sample_report

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) not installed",
)
#: (scenario, score, passed) in the order attempted: two procedures and a drill, interleaved.
SEQUENCE = [
    ("sij-lateral", 30, False),
    ("drill-inlet", 80, True),
    ("sij-lateral", 48, False),
    ("sij-lateral", 61, True),
    ("teld-l4l5", 55, False),
    ("sij-lateral", 70, True),
]


@pytest.fixture
def store(tmp_path):
    with RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}") as opened:
        opened.add_cohort("c1", "Cohort 1")
        opened.add_trainee("t-1", "Sam Trainee", "c1")
        instructor = make_instructor(opened, "dr-lee", "Dr Alex Lee")
        for day, (scenario, score, passed) in enumerate(SEQUENCE, start=1):
            opened.record_attempt(
                "t-1",
                scenario,
                sample_report(score, passed),
                f"2026-11-{day:02d}T10:00:00+00:00",
                f"2026-11-{day:02d}T10:15:00+00:00",
            )
        opened.set_programme_setting("default", "pass_mark", 58, instructor)
        opened.sign_off(5, instructor, "needs_practice", "Dilator too lateral.")
        yield opened


def _pages_text(pdf) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")[:-1]


def _page_png(pdf, page: int, tmp_path) -> np.ndarray:
    import cv2

    prefix = tmp_path / f"page{page}"
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", str(page), "-l", str(page), str(pdf), str(prefix)],
        check=True,
    )
    (png,) = tmp_path.glob(f"page{page}-*.png")
    return cv2.imread(str(png))[:, :, ::-1]  # RGB


def _red_fraction(rgb: np.ndarray) -> float:
    """Share of the page in the banner's saturated red."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return float(np.mean((r > 150) & (g < 80) & (b < 80)))


def _watermark_fraction(rgb: np.ndarray) -> float:
    """Share of the page in the watermark's pale red (red well above green and blue, light)."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return float(np.mean((r > 225) & (r - g > 15) & (r - b > 15) & (g > 150)))


def test_report_groups_procedures_apart_from_drills(store):
    report = build_trainee_report(store, "t-1")
    kinds = [(g["scenario"], g["kind"]) for g in report["procedures"]]
    assert kinds[-1] == ("drill-inlet", "drill")
    assert {k for _, k in kinds[:-1]} == {"procedure"}
    sij = next(g for g in report["procedures"] if g["scenario"] == "sij-lateral")
    assert sij["attempt_ids"] == [1, 3, 4, 6]
    assert sij["passed"] == 2 and sij["finished"] == 4
    assert report["ledger"]["record_count"] == report["ledger"]["records_checked"] > 0
    signoff = report["attempts"][4]["signoffs"][0]
    assert signoff["instructor_name"] == "Dr Alex Lee"


def test_attempt_axis_is_whole_numbers_labelled_with_attempt_ids(store):
    curve = learning_curve(store.attempts("t-1"), "t-1", "sij-lateral")
    axes = Figure().add_subplot(1, 1, 1)
    _attempt_axis(axes, curve.attempt_ids, with_start=True)
    positions = list(axes.get_xticks())
    labels = [t.get_text() for t in axes.get_xticklabels()]
    assert positions == [0, 1, 2, 3, 4]
    assert labels == ["start", "1", "3", "4", "6"]


@needs_poppler
def test_verified_report_reads_at_a_glance(store, tmp_path):
    out = tmp_path / "ok.pdf"
    write_report(store, "t-1", "pdf", out)
    pages = _pages_text(out)
    total = len(pages)
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {total}" in page
        assert "UNVERIFIED" not in page
    text = "\n".join(pages)
    for heading in ("Learning curve", "CUSUM", "LC-CUSUM", "Sign-offs", "Signatures"):
        assert heading in text
    assert text.count("LC-CUSUM\n") + text.count("LC-CUSUM ") >= 3  # one per procedure/drill
    assert "Drills (C-arm positioning, apart from the procedures)" in text
    assert "Needs more practice" in text and "needs_practice" not in text
    assert "Dr Alex Lee" in text
    assert "Reviewed by (name)" in text
    head = build_trainee_report(store, "t-1")["ledger"]["head_hash"]
    assert head in text.replace("\n", "")
    assert _red_fraction(_page_png(out, 1, tmp_path)) < 0.001
    for number in range(1, total + 1):
        assert _watermark_fraction(_page_png(out, number, tmp_path)) < 0.005, number


@needs_poppler
def test_tampered_store_has_a_red_banner_on_page_one_and_a_watermark_on_every_page(store, tmp_path):
    store.execute("UPDATE attempts SET score = 95 WHERE id = 1")
    store.connection.commit()
    out = tmp_path / "bad.pdf"
    write_report(store, "t-1", "pdf", out)
    pages = _pages_text(out)
    assert "RECORDS FAILED VERIFICATION" in pages[0]
    assert pages[0].index("RECORDS FAILED VERIFICATION") < pages[0].index("Summary")
    assert _red_fraction(_page_png(out, 1, tmp_path)) > 0.01
    for number in range(1, len(pages) + 1):
        assert _watermark_fraction(_page_png(out, number, tmp_path)) > 0.01, number

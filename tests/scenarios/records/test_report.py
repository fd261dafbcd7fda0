"""Learning curves, the credentialing report in JSON/CSV/PDF, and ``fluorosim report``."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest

from fluorosim.app import cli
from fluorosim.scenarios.records.database import RecordStore
from fluorosim.scenarios.records.learning import cohort_summary, learning_curve
from fluorosim.scenarios.records.report import REPORT_SECTIONS, build_trainee_report
from tests.scenarios.records.conftest import make_instructor, sample_report


@pytest.fixture
def db_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    with RecordStore.open(url) as store:
        store.add_cohort("c1", "Cohort 1")
        store.add_trainee("t-1", "Sam Trainee", "c1")
        store.add_trainee("t-2", "Kim Trainee", "c1")
        instructor = make_instructor(store)
        for index, (score, passed) in enumerate([(30, False), (48, False), (61, True), (70, True)]):
            store.record_attempt(
                "t-1",
                "sij-lateral",
                sample_report(score, passed),
                f"2026-11-0{index + 1}T10:00:00+00:00",
                f"2026-11-0{index + 1}T10:15:00+00:00",
            )
        store.record_attempt(
            "t-2",
            "teld-l4l5",
            sample_report(80, True),
            "2026-11-05T10:00:00+00:00",
            "2026-11-05T10:10:00+00:00",
        )
        store.sign_off(3, instructor, "approved", "Ready for supervised cases.")
    return url


def test_learning_curve_and_cohort(db_url):
    with RecordStore.open(db_url) as store:
        rows = store.attempts()
    curve = learning_curve(rows, "t-1")
    assert curve.scores == [30, 48, 61, 70]
    assert curve.passed == [False, False, True, True]
    assert curve.series["total_time_s"] == [900.0] * 4
    assert curve.series["shots"] == [14.0] * 4
    assert curve.cusum.values[1] == pytest.approx(2 * (1 - 0.145246), abs=1e-5)
    summary = {row["trainee_id"]: row for row in cohort_summary(rows)}
    assert summary["t-1"]["attempts_to_first_pass"] == 3
    assert summary["t-2"]["pass_rate"] == 1.0


def test_json_and_csv(db_url, tmp_path, capsys):
    out = tmp_path / "t1.json"
    assert (
        cli.main(
            ["report", "--db", db_url, "--trainee", "t-1", "--format", "json", "--out", str(out)]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["summary"]["attempts"] == 4 and data["summary"]["passed"] == 2
    assert data["ledger"]["ok"] is True and len(data["ledger"]["head_hash"]) == 64
    assert data["attempts"][2]["signoffs"][0]["decision"] == "approved"
    out_csv = tmp_path / "t1.csv"
    assert (
        cli.main(
            ["report", "--db", db_url, "--trainee", "t-1", "--format", "csv", "--out", str(out_csv)]
        )
        == 0
    )
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["score"] for r in rows] == ["30.0", "48.0", "61.0", "70.0"]
    assert rows[2]["signed_off_by"] == "dr-lee"
    assert "wrote" in capsys.readouterr().out


@pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed"
)
def test_pdf_has_every_section(db_url, tmp_path):
    out = tmp_path / "t1.pdf"
    assert (
        cli.main(
            ["report", "--db", db_url, "--trainee", "t-1", "--format", "pdf", "--out", str(out)]
        )
        == 0
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    for section in REPORT_SECTIONS:
        assert section in text, f"section '{section}' missing from the PDF"
    assert "Sam Trainee" in text
    assert "VERIFIED" in text
    assert "Ready for supervised cases." in text


def test_verify_command_names_tampering(db_url, capsys):
    assert cli.main(["report", "verify", "--db", db_url]) == 0
    assert "ledger OK" in capsys.readouterr().out
    with RecordStore.open(db_url) as store:
        store.execute("UPDATE attempts SET passed = 1 WHERE id = 1")
        store.connection.commit()
        assert build_trainee_report(store, "t-1")["ledger"]["ok"] is False
    assert cli.main(["report", "verify", "--db", db_url]) == 1
    assert "attempt 1 was altered" in capsys.readouterr().err


def test_user_errors_are_messages(db_url, tmp_path, capsys):
    assert (
        cli.main(
            [
                "report",
                "--db",
                db_url,
                "--trainee",
                "nobody",
                "--format",
                "json",
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
        == 2
    )
    assert "unknown trainee 'nobody'" in capsys.readouterr().err
    assert cli.main(["report", "--db", db_url]) == 2
    assert "--trainee ID and --out FILE are required" in capsys.readouterr().err
    assert set(REPORT_SECTIONS) >= {"CUSUM", "Sign-offs", "Ledger status"}

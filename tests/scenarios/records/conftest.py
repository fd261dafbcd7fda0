"""Record stores on SQLite (always) and PostgreSQL (when FLUOROSIM_TEST_PG_URL names a server).

CI starts a real PostgreSQL server and sets FLUOROSIM_TEST_PG_URL (see .ci/run); each test gets a
fresh schema there so the same tests run against both.
"""

from __future__ import annotations

import os
import uuid

import pytest

from fluorosim.scenarios.records.database import RecordStore

PG_URL = os.environ.get("FLUOROSIM_TEST_PG_URL")


def sample_report(score: float, passed: bool) -> dict:
    return {
        "score": score,
        "passed": passed,
        "metrics": {
            "tip_to_target_mm": {"value": 2.5, "unit": "mm", "reference": "<= 5", "passed": True},
            "shots": {"value": 14, "unit": "", "reference": "<= 30", "passed": True},
        },
        "breaches": [],
        "findings": ["Pin 1 ended 2.5 mm from the S1 target.", "14 shots."],
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        with RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}") as opened:
            yield opened
        return
    if not PG_URL:
        pytest.skip("no PostgreSQL server (set FLUOROSIM_TEST_PG_URL; CI does)")
    import psycopg

    schema_name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema_name}")
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema_name}"
    with RecordStore.open(url) as opened:
        yield opened
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema_name} CASCADE")


@pytest.fixture(autouse=True)
def quick_scrypt(monkeypatch):
    """Cheaper scrypt for new accounts in tests (N is stored with each hash, so checks still work);
    test_identity checks the shipped parameters themselves."""
    from fluorosim.scenarios.records import identity

    monkeypatch.setattr(identity, "SCRYPT_LOG2_N", 10)
    monkeypatch.setattr(identity, "SCRYPT_P", 1)


def make_instructor(
    store: RecordStore, instructor_id: str = "dr-lee", name: str = "Dr Lee", by=None
):
    """An instructor account (first set-up, or added by ``by``), signed in."""
    return store.create_instructor(instructor_id, name, f"pass-{instructor_id}", by)

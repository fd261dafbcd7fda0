"""The records queries the instructor's review runs: cohorts, one attempt, the scenarios a trainee
attempted, the contrasting-groups pass mark. They run on SQLite and PostgreSQL alike (through
:meth:`RecordStore.query`, which adapts the parameter style), so the review window holds no SQL.
"""

from __future__ import annotations

from fluorosim.scenarios.records.database import AttemptRow, RecordStore
from fluorosim.scenarios.records.passmark import PassMark, contrasting_groups


def cohorts(store: RecordStore) -> list[tuple[str, str]]:
    """(id, name) of every cohort, ordered by id."""
    return [
        (str(i), str(name)) for i, name in store.query("SELECT id, name FROM cohorts ORDER BY id")
    ]


def attempt(store: RecordStore, attempt_id: int) -> AttemptRow | None:
    """One attempt with its metrics, findings and sign-offs; None when there is no such attempt."""
    rows = store.query("SELECT trainee_id FROM attempts WHERE id = ?", (int(attempt_id),))
    if not rows:
        return None
    return next((a for a in store.attempts(rows[0][0]) if a.id == attempt_id), None)


def scenarios_attempted(store: RecordStore, trainee_id: str | None) -> list[str]:
    """The scenario IDs the trainee has attempts of, sorted (none when no trainee is given)."""
    if not trainee_id:
        return []
    rows = store.query(
        "SELECT DISTINCT scenario_id FROM attempts WHERE trainee_id = ?", (trainee_id,)
    )
    return sorted(str(r[0]) for r in rows)  # Python's order: PostgreSQL's collation may differ


def pass_mark_for(
    store: RecordStore, scenario_id: str | None = None
) -> tuple[PassMark | None, str]:
    """The contrasting-groups pass mark from expert vs other trainees' finished attempts, and the
    text to show (the method's refusal when the groups are too small or do not separate)."""
    experts = {t["id"] for t in store.trainees() if t["is_expert"]}
    expert_scores: list[float] = []
    novice_scores: list[float] = []
    for row in store.attempts(scenario_id=scenario_id):
        if row.status != "finished" or row.score is None:
            continue
        (expert_scores if row.trainee_id in experts else novice_scores).append(row.score)
    try:
        mark = contrasting_groups(expert_scores, novice_scores)
    except ValueError as error:
        return None, f"No pass mark: {error}."
    return mark, (
        f"Pass mark {mark.score:.1f} (contrasting groups: experts {mark.expert_mean:.1f} ± "
        f"{mark.expert_sd:.1f}, n = {len(expert_scores)}; others {mark.novice_mean:.1f} ± "
        f"{mark.novice_sd:.1f}, n = {len(novice_scores)}; experts failed "
        f"{100 * mark.false_fail_experts:.0f} %, others passed {100 * mark.false_pass_novices:.0f} %)"
    )

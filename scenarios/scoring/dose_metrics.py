"""Dose and exposure metrics: shots, beam-on time, KAP, cumulative air kerma, shots per advance,
hands in the beam, total time — each against the scenario's reference levels (carm.md).

Dose values come from the renderer's per-frame dose records (render/dose.py); when no frame carried
a dose record they are reported as not measured (``passed`` None, left out of the composite) rather
than as a perfect zero.
"""

from __future__ import annotations

from scenarios.attempt import AttemptLog
from scenarios.scoring.report import Metric
from scenarios.scoring.steps import graded_at_most
from scenarios.spec import Scenario

SHOTS_PER_ADVANCE_REFERENCE = 3.0
UNCONFIRMED_ADVANCES_REFERENCE = 1


def dose_metrics(
    scenario: Scenario, log: AttemptLog, advances: int, unconfirmed: int
) -> list[Metric]:
    """The attempt's exposure metrics."""
    ref = scenario.dose
    shots = len(log.shots)
    beam_on = sum(s.beam_on_s for s in log.shots)
    kap = sum(s.kap_gycm2 for s in log.shots)
    kerma = sum(s.air_kerma_mgy for s in log.shots)
    measured = any(s.kap_gycm2 > 0 or s.beam_on_s > 0 for s in log.shots)
    metrics = [
        Metric(
            "shots",
            shots,
            "",
            f"≤ {ref.shots}",
            shots <= ref.shots,
            weight=0.5 if scenario.procedure != "view_drill" else 2.0,
            credit=graded_at_most(shots, ref.shots),
            finding=f"{shots} shots were taken (reference {ref.shots}).",
        )
    ]
    for name, value, unit, reference in (
        ("beam_on_s", beam_on, "s", ref.beam_on_s),
        ("kap_gycm2", kap, "Gy·cm²", ref.kap_gycm2),
        ("air_kerma_mgy", kerma, "mGy", ref.air_kerma_mgy),
    ):
        words = {
            "beam_on_s": "beam-on time",
            "kap_gycm2": "kerma-area product",
            "air_kerma_mgy": "cumulative air kerma",
        }[name]
        metrics.append(
            Metric(
                name,
                value if measured else None,
                unit,
                f"≤ {reference:g}",
                (value <= reference) if measured else None,
                weight=0.5,
                credit=graded_at_most(value, reference) if measured else None,
                finding=f"The {words} was {value:.3g} {unit} (reference {reference:g} {unit}).",
            )
        )
    if scenario.procedure != "view_drill":
        per_advance = shots / advances if advances else float(shots)
        metrics.append(
            Metric(
                "shots_per_advance",
                per_advance,
                "",
                f"≤ {SHOTS_PER_ADVANCE_REFERENCE:g}",
                per_advance <= SHOTS_PER_ADVANCE_REFERENCE,
                weight=0.25,
                credit=graded_at_most(per_advance, SHOTS_PER_ADVANCE_REFERENCE),
                finding=f"{per_advance:.1f} shots per advance of the instrument.",
            )
        )
        metrics.append(
            Metric(
                "unconfirmed_advances",
                unconfirmed,
                "",
                f"≤ {UNCONFIRMED_ADVANCES_REFERENCE}",
                unconfirmed <= UNCONFIRMED_ADVANCES_REFERENCE,
                weight=1.0,
                credit=graded_at_most(unconfirmed + 1, UNCONFIRMED_ADVANCES_REFERENCE + 1),
                finding=f"{unconfirmed} of {advances} advances were not checked on a second view.",
            )
        )
    hands = [s.index for s in log.shots if s.hand_in_beam]
    metrics.append(
        Metric(
            "hands_in_beam",
            len(hands),
            "shots",
            "0",
            not hands,
            weight=0.5,
            finding=None
            if not hands
            else "The hand or instrument handle was in the beam on shot"
            f"{'s' if len(hands) > 1 else ''} {', '.join(str(i) for i in hands)}.",
        )
    )
    total = log.finished_t_s or 0.0
    metrics.append(
        Metric(
            "total_time_s",
            total,
            "s",
            f"≤ {scenario.time_limit_s:g}",
            total <= scenario.time_limit_s,
            weight=0.25,
            credit=graded_at_most(total, scenario.time_limit_s),
            finding=f"The attempt took {total / 60:.1f} min (limit {scenario.time_limit_s / 60:g} min).",
        )
    )
    return metrics

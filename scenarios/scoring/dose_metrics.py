"""Dose and exposure metrics: shots, beam-on time, KAP, cumulative air kerma, shots per advance,
hands in the beam, total time — each against the scenario's reference levels (carm.md).

Dose values come from the renderer's per-frame dose records (render/dose.py); when no frame carried
a dose record they are reported as not measured (``passed`` None, left out of the composite) rather
than as a perfect zero.
"""

from __future__ import annotations

from fluorosim.scenarios.attempt import AttemptLog
from fluorosim.scenarios.scoring.credit import scored
from fluorosim.scenarios.scoring.report import Metric
from fluorosim.scenarios.spec import Scenario


def dose_metrics(
    scenario: Scenario, log: AttemptLog, advances: int, unconfirmed: int
) -> list[Metric]:
    """The attempt's exposure metrics, each against its definition in the scenario file."""
    shots = len(log.shots)
    beam_on = sum(s.beam_on_s for s in log.shots)
    kap = sum(s.kap_gycm2 for s in log.shots)
    kerma = sum(s.air_kerma_mgy for s in log.shots)
    measured = any(s.kap_gycm2 > 0 or s.beam_on_s > 0 for s in log.shots)
    shots_def = scenario.metric("shots")
    metrics = [
        scored(
            shots_def,
            shots,
            f"{shots} shots were taken (reference {shots_def.allowed():g}).",
        )
    ]
    words = {
        "beam_on_s": "beam-on time",
        "kap_gycm2": "kerma-area product",
        "air_kerma_mgy": "cumulative air kerma",
    }
    for name, value in (("beam_on_s", beam_on), ("kap_gycm2", kap), ("air_kerma_mgy", kerma)):
        definition = scenario.metric(name)
        unit = definition.unit
        finding = (
            f"The {words[name]} was {value:.3g} {unit} (reference {definition.allowed():g} {unit})."
        )
        if measured:
            metrics.append(scored(definition, value, finding))
        else:  # no frame carried a dose record: not measured, left out of the composite
            metrics.append(
                Metric(name, None, unit, definition.reference_text(), None, definition.weight)
            )
    if scenario.procedure != "view_drill":
        per_advance = shots / advances if advances else float(shots)
        metrics.append(
            scored(
                scenario.metric("shots_per_advance"),
                per_advance,
                f"{per_advance:.1f} shots per advance of the instrument.",
            )
        )
        metrics.append(
            scored(
                scenario.metric("unconfirmed_advances"),
                unconfirmed,
                f"{unconfirmed} of {advances} advances were not checked on a second view.",
            )
        )
    hands = [s.index for s in log.shots if s.hand_in_beam]
    metrics.append(
        scored(
            scenario.metric("hands_in_beam"),
            len(hands),
            None
            if not hands
            else "The hand or instrument handle was in the beam on shot"
            f"{'s' if len(hands) > 1 else ''} {', '.join(str(i) for i in hands)}.",
        )
    )
    total = log.finished_t_s or 0.0
    time_def = scenario.metric("total_time_s")
    metrics.append(
        scored(
            time_def,
            total,
            f"The attempt took {total / 60:.1f} min (limit {time_def.allowed() / 60:g} min).",
        )
    )
    return metrics

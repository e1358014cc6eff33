"""TPE search round by round, rebuilt from the stored results every time.

The driver keeps no Optuna state: round r's trials are asked from a fresh study that is
told every stored result of the rounds before it, sampled with a TPESampler seeded by
(seed, r). So the same seed gives the same trials run after run, whatever the number of
workers or a backend restart in the middle (the round is asked again and comes out the
same).
"""

from __future__ import annotations

import math
from typing import Any

from ktrdr.campaigns.ranking import objective_score
from ktrdr.campaigns.results import CampaignResult
from ktrdr.engine.strategy.search import SearchSpace
from ktrdr.jobs.campaigns import SweepParams

# Asks per trial before falling back to a seeded feasible draw (constraints may reject).
_MAX_ASKS = 50


def round_count(params: SweepParams) -> int:
    assert params.trials is not None  # checked on entry
    return math.ceil(params.trials / params.batch_size)


def round_indices(params: SweepParams, round_no: int) -> range:
    assert params.trials is not None
    start = round_no * params.batch_size
    return range(start, min(start + params.batch_size, params.trials))


def round_of(params: SweepParams, index: int) -> int:
    return index // params.batch_size


def ask_round(
    params: SweepParams, space: SearchSpace, history: list[CampaignResult], round_no: int
) -> list[dict[str, Any]]:
    """The parameter sets of round ``round_no``, given every result of earlier rounds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {p.path: p.optuna_distribution() for p in space.parameters}
    sampler = optuna.samplers.TPESampler(seed=params.seed * 100_003 + round_no)
    # Scores are "higher is better" for either direction of the objective.
    study = optuna.create_study(direction=optuna.study.StudyDirection.MAXIMIZE, sampler=sampler)
    for result in sorted(history, key=lambda r: r.combination):
        value = objective_score(result, params)
        study.add_trial(
            optuna.trial.create_trial(
                params=result.params,
                distributions=distributions,
                value=value,
                state=(
                    optuna.trial.TrialState.COMPLETE
                    if value is not None
                    else optuna.trial.TrialState.FAIL
                ),
            )
        )
    picked: list[dict[str, Any]] = []
    for i in round_indices(params, round_no):
        for _ in range(_MAX_ASKS):
            trial = study.ask(distributions)
            candidate = {path: trial.params[path] for path in space.paths}
            if space.is_feasible(candidate):
                # Told as failed for now: the next ask in this round moves elsewhere.
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                picked.append(candidate)
                break
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            picked.append(space.sample(1, seed=params.seed * 100_003 + i)[0])
    return picked

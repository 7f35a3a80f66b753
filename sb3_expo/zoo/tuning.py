"""Optuna sampler for `rl_zoo3 train --algo expo -optimize`: the edit beta grid of the paper and a few more."""

from __future__ import annotations

from typing import Any

import optuna

EDIT_BETAS = [0.05, 0.1, 0.3, 0.7]  # the paper's grid: small for good data, large where exploration is needed


def sample_expo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sample what the paper tunes (edit_beta) and what matters most besides it.

    N = K as in the paper; num_min_qs is 1 in the reference's AntMaze scripts and 2 elsewhere.
    """
    trial.suggest_categorical("edit_beta", EDIT_BETAS)
    trial.suggest_categorical("n_base_samples", [4, 8, 16])
    trial.suggest_categorical("num_min_qs", [1, 2])
    trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True)
    return convert_expo_params(trial.params)


def convert_expo_params(params: dict[str, Any]) -> dict[str, Any]:
    """Trial parameters -> EXPO keyword arguments (also used by `--trial-id` to reload a trial)."""
    hyperparams = dict(params)
    hyperparams["n_edit_samples"] = hyperparams["n_base_samples"]
    return hyperparams


SAMPLERS = {"expo": sample_expo_params}
CONVERTERS = {"expo": convert_expo_params}

"""Optuna samplers for `rl_zoo3 train --algo expo|gorl|rlpd -optimize`: EXPO's edit beta grid, GoRL's and RLPD's knobs."""

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


STAGE_SPLITS = {  # GoRL's stage shares of the budget: the official split and two simpler ones
    "official": (1 / 3, 1 / 3, 1 / 6, 1 / 6),
    "quarters": (0.25, 0.25, 0.25, 0.25),
    "halves": (0.5, 0.5),
}


def sample_gorl_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """GoRL's main knobs: the latent penalty (stage 0; later stages use twice it, as officially), the stage split,
    the decoder's sampler steps, and PPO's learning rate."""
    trial.suggest_float("latent_penalty", 1e-4, 1e-2, log=True)
    trial.suggest_categorical("stage_split", list(STAGE_SPLITS))
    trial.suggest_categorical("decoder_steps", [2, 5, 10])
    trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True)
    return convert_gorl_params(trial.params)


def convert_gorl_params(params: dict[str, Any]) -> dict[str, Any]:
    hyperparams = dict(params)
    hyperparams["later_latent_penalty"] = 2 * hyperparams["latent_penalty"]
    hyperparams["stage_fractions"] = STAGE_SPLITS[hyperparams.pop("stage_split")]
    return hyperparams


def sample_rlpd_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """RLPD's knobs: the target subset size (REDQ's min over 1 or 2 critics) and the learning rate."""
    trial.suggest_categorical("num_min_qs", [1, 2])
    trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True)
    return dict(trial.params)


SAMPLERS = {"expo": sample_expo_params, "gorl": sample_gorl_params, "rlpd": sample_rlpd_params}
CONVERTERS = {"expo": convert_expo_params, "gorl": convert_gorl_params, "rlpd": dict}

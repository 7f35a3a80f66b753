"""The generative policies EXPO and GoRL share: one small file per idea (see base.py for the interface)."""

from sb3_expo.common.generative.base import (
    DenoisingPolicy,
    GenerativePolicy,
    check_generative_policy,
    check_samples,
    load_generative_policy,
)
from sb3_expo.common.generative.diffusion import DiffusionPolicy, noise_schedule, vp_beta_schedule
from sb3_expo.common.generative.flow import FlowPolicy
from sb3_expo.common.generative.networks import LAYER_NORM_EPS, Denoiser, TimeMLP

__all__ = [
    "LAYER_NORM_EPS",
    "Denoiser",
    "DenoisingPolicy",
    "DiffusionPolicy",
    "FlowPolicy",
    "GenerativePolicy",
    "TimeMLP",
    "check_generative_policy",
    "check_samples",
    "load_generative_policy",
    "noise_schedule",
    "vp_beta_schedule",
]

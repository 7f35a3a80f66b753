"""A user's own pretrained policy as EXPO's base: the interface, its errors, and the whole path end to end."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

from sb3_expo import EXPO
from sb3_expo.datasets import collect_demonstrations, mountain_car_expert

from .conftest import SMALL

ALGO = {k: v for k, v in SMALL.items() if k != "policy_kwargs"}


class MyDiffusionPolicy(nn.Module):
    """A small DDPM written in plain PyTorch, without sb3_expo: what a user brings from elsewhere (docs: base policies).

    It provides what EXPO needs of a base policy: obs_dim / action_dim, draw_noise, sample (in [-1, 1]) and loss.
    """

    def __init__(self, obs_dim, action_dim, steps=10, width=128, obs_mean=None, obs_std=None):
        super().__init__()
        self.obs_dim, self.action_dim, self.steps = obs_dim, action_dim, steps
        self.net = nn.Sequential(
            nn.Linear(obs_dim + action_dim + 1, width),
            nn.Mish(),
            nn.Linear(width, width),
            nn.Mish(),
            nn.Linear(width, action_dim),
        )
        betas = th.linspace(0.05, 0.6, steps)
        self.register_buffer("alphas", 1 - betas)
        self.register_buffer("alpha_bars", th.cumprod(1 - betas, 0))
        self.register_buffer("obs_mean", th.zeros(obs_dim) if obs_mean is None else th.as_tensor(obs_mean))
        self.register_buffer("obs_std", th.ones(obs_dim) if obs_std is None else th.as_tensor(obs_std))

    def eps(self, obs, x, t):
        obs = (obs - self.obs_mean) / self.obs_std
        return self.net(th.cat([obs, x, t.float().unsqueeze(-1) / self.steps], -1))

    def loss(self, obs, actions):
        t = th.randint(0, self.steps, (len(actions),), device=actions.device)
        noise, abar = th.randn_like(actions), self.alpha_bars[t].unsqueeze(-1)
        return (self.eps(obs, abar.sqrt() * actions + (1 - abar).sqrt() * noise, t) - noise).pow(2).mean()

    def draw_noise(self, rows, device, generator=None):
        return th.randn(self.steps, rows, self.action_dim, device=device, generator=generator)

    def sample(self, obs, noise):
        x = noise[0]
        for t in reversed(range(self.steps)):
            eps = self.eps(obs, x, th.full((len(x),), t, device=x.device))
            alpha, abar = self.alphas[t], self.alpha_bars[t]
            x = (x - (1 - alpha) / (1 - abar).sqrt() * eps) / alpha.sqrt()
            if t > 0:
                x = x + (1 - alpha).sqrt() * noise[t]
        return x.clamp(-1, 1)


def behaviour_cloning(demos, steps=2000, seed=0):
    """Plain PyTorch BC on (observation, action) pairs, as a user would train a policy outside EXPO."""
    th.manual_seed(seed)
    obs, actions = th.as_tensor(demos.observations), th.as_tensor(demos.actions, dtype=th.float32)
    policy = MyDiffusionPolicy(obs.shape[1], actions.shape[1], obs_mean=obs.mean(0), obs_std=obs.std(0) + 1e-6)
    optimizer = th.optim.Adam(policy.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = th.randint(0, len(obs), (256,))
        loss = policy.loss(obs[idx], actions[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return policy


def success(model, env, episodes=5):
    returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=False, return_episode_rewards=True)
    return np.mean(np.array(returns) > 50)  # the flag gives +100; failing episodes end below 0


def test_a_policy_trained_elsewhere_is_fine_tuned_by_expo(tmp_path):
    env = gym.make("MountainCarContinuous-v0")
    demos = collect_demonstrations(env, mountain_car_expert, n_episodes=5, seed=1000)
    th.save(behaviour_cloning(demos), tmp_path / "bc_policy.pt")  # trained and saved outside EXPO

    pretrained = th.load(tmp_path / "bc_policy.pt", weights_only=False)
    model = EXPO(
        "MlpPolicy",
        env,
        demonstrations=demos,
        seed=0,
        **{**ALGO, "learning_starts": 0, "batch_size": 64},
        policy_kwargs={**SMALL["policy_kwargs"], "base": pretrained},
    )
    assert model.base is pretrained and isinstance(model.base_ema, MyDiffusionPolicy)
    before = success(model, env)
    model.learn(600)
    after = success(model, env)
    assert before >= 0.8 and after >= 0.8, (before, after)
    assert model._n_base_updates == 600  # the base kept learning by imitation

    model.save(tmp_path / "expo_custom")
    loaded = EXPO.load(tmp_path / "expo_custom", env=env, demonstrations=demos)
    assert isinstance(loaded.base, MyDiffusionPolicy)
    for a, b in zip(model.policy.state_dict().values(), loaded.policy.state_dict().values()):
        th.testing.assert_close(a, b)
    obs = np.array([[-0.5, 0.01], [-0.3, -0.02]], np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(20, reset_num_timesteps=False)

    from_file = EXPO("MlpPolicy", env, policy_kwargs={**SMALL["policy_kwargs"], "base": str(tmp_path / "bc_policy.pt")})
    assert isinstance(from_file.policy_kwargs["base"], MyDiffusionPolicy)  # loaded once: the saved model holds it
    (tmp_path / "bc_policy.pt").unlink()
    from_file.save(tmp_path / "from_file")
    assert isinstance(EXPO.load(tmp_path / "from_file").base, MyDiffusionPolicy)


def test_a_base_class_is_built_for_the_env():
    model = EXPO(
        "MlpPolicy",
        "Pendulum-v1",
        policy_kwargs={**SMALL["policy_kwargs"], "base": MyDiffusionPolicy, "base_kwargs": dict(width=16)},
        **ALGO,
    )
    assert model.base.obs_dim == 3 and model.base.net[0].out_features == 16
    model.learn(25)


class Broken(MyDiffusionPolicy):
    def __init__(self, obs_dim=3, action_dim=1, fault="", **kwargs):
        super().__init__(obs_dim, action_dim, width=8, **kwargs)
        self.fault = fault

    def sample(self, obs, noise):
        x = super().sample(obs, noise)
        if self.fault == "shape":
            return th.cat([x, x], dim=-1)
        if self.fault == "range":
            return 3.0 * x.sign()
        if self.fault == "nan":
            return x * float("nan")
        return x


class NoLoss(nn.Module):
    obs_dim, action_dim = 3, 1

    def draw_noise(self, rows, device, generator=None):
        return th.zeros(1, rows, 1)

    def sample(self, obs, noise):
        return noise[0]


class IgnoresGenerator(MyDiffusionPolicy):
    def draw_noise(self, rows, device, generator=None):
        return th.randn(self.steps, rows, self.action_dim, device=device)  # the global RNG, whatever it is given


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (IgnoresGenerator(3, 1, width=8), "gave different noise for two generators in the same state"),
        (Broken(fault="shape"), r"shape \(3, 2\) for 3 rows; expected \(3, 1\)"),
        (Broken(fault="range"), r"magnitude 3, outside \[-1, 1\]"),
        (Broken(fault="nan"), "non-finite actions"),
        (NoLoss(), "has no loss\\(\\): it needs an imitation loss"),
        (Broken(obs_dim=5), "built for observations of size 5, but this env's observations have size 3"),
        ("diffusion", "base='diffusion' is neither a built-in base"),
    ],
)
def test_a_base_that_cannot_serve_is_refused_with_what_to_fix(base, message):
    with pytest.raises(ValueError, match=message):
        EXPO("MlpPolicy", "Pendulum-v1", policy_kwargs={**SMALL["policy_kwargs"], "base": base})


def test_a_base_that_goes_wrong_later_is_caught_while_acting():
    base = Broken()
    model = EXPO("MlpPolicy", "Pendulum-v1", policy_kwargs={**SMALL["policy_kwargs"], "base": base}, learning_starts=0)
    model.predict(np.zeros(3, np.float32))
    model.base_ema.fault = "nan"
    with pytest.raises(ValueError, match="the base policy Broken returned non-finite actions"):
        model.predict(np.zeros(3, np.float32))

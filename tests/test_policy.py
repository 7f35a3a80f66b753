import math

import gymnasium as gym
import numpy as np
import torch as th
from torch import distributions as D
from torch import nn

from sb3_expo import EXPO
from sb3_expo.common.ensemble import CriticEnsemble
from sb3_expo.expo.policies import EditPolicy

from .conftest import SMALL


def test_edit_log_prob_matches_direct_computation():
    """log pi(beta * tanh(u)) = Normal log-prob - tanh Jacobian - d*log(beta), as torch.distributions computes it."""
    th.manual_seed(0)
    beta, d = 0.05, 3
    edit = EditPolicy(features_dim=4, action_dim=d, net_arch=[16, 16], edit_beta=beta)
    feats, base = th.randn(10, 4), th.rand(10, d) * 2 - 1
    th.manual_seed(1)
    edited, log_prob = edit(feats, base)
    h = edit.trunk(th.cat([feats, base], -1))
    normal = D.Normal(edit.mu(h), edit.log_std(h).clamp(-20, 2).exp())
    dist = D.TransformedDistribution(normal, [D.TanhTransform(), D.AffineTransform(0.0, beta)])
    expected = dist.log_prob(edited - base).sum(-1)
    th.testing.assert_close(log_prob, expected, atol=1e-4, rtol=1e-4)
    assert (edited - base).abs().max() <= beta  # an edit never moves an action by more than beta


def test_edit_deterministic_is_the_mean_edit():
    edit = EditPolicy(4, 2, [16], edit_beta=0.3)
    feats, base = th.randn(5, 4), th.zeros(5, 2)
    a1, _ = edit(feats, base, deterministic=True)
    a2, _ = edit(feats, base, deterministic=True)
    th.testing.assert_close(a1, a2)
    h = edit.trunk(th.cat([feats, base], -1))
    th.testing.assert_close(a1, 0.3 * th.tanh(edit.mu(h)))


def test_batched_ensemble_equals_separate_critics():
    """One [E, in, out] weight set computes the same Q values as E separate LayerNorm MLPs."""
    th.manual_seed(0)
    ens = CriticEnsemble(input_dim=6, net_arch=[16, 16], n_critics=5)
    assert ens.hidden[0].weight.shape == (5, 6, 16)
    feats, acts = th.randn(9, 4), th.randn(9, 2)
    q = ens(feats, acts)
    assert q.shape == (5, 9)
    x = th.cat([feats, acts], -1)
    for i in range(5):
        h = x
        for lin, norm in zip(ens.hidden, ens.norms):
            h = h @ lin.weight[i] + lin.bias[i, 0]
            h = nn.functional.layer_norm(h, h.shape[-1:], norm.weight[i, 0], norm.bias[i, 0], eps=1e-6).relu()
        th.testing.assert_close(q[i], (h @ ens.out.weight[i] + ens.out.bias[i, 0]).squeeze(-1), atol=1e-5, rtol=1e-5)
    members = th.tensor([3, 1])
    th.testing.assert_close(ens(feats, acts, members), q[members], atol=1e-5, rtol=1e-5)


def test_random_subsets_have_the_right_size_and_cover_the_ensemble():
    ens = CriticEnsemble(input_dim=3, net_arch=[8], n_critics=10)
    seen = set()
    for _ in range(200):
        idx = ens.random_subset(2)
        assert len(idx) == 2 and len(set(idx.tolist())) == 2
        seen.update(idx.tolist())
    assert seen == set(range(10))


def _model(env_id="Pendulum-v1", **kwargs):
    args = {**SMALL, **kwargs}
    return EXPO("MlpPolicy", gym.make(env_id), seed=0, **args)


def test_otf_picks_the_candidate_with_the_highest_subset_min_q():
    """With K = 0 and the subset = the whole ensemble, the chosen action is the argmax of min_i Q'_i."""
    model = _model(n_edit_samples=0, num_min_qs=4)
    policy = model.policy
    candidates = th.linspace(-1, 1, 4).view(1, 4, 1).repeat(3, 1, 1)  # 3 states x 4 candidates
    policy.base_ema.sample = lambda feats, noise=None, net=None: candidates.reshape(-1, 1)
    obs = th.randn(3, 3)
    chosen = policy.sample_actions(obs)
    feats = policy.features(obs)
    q = policy.critic_target(feats.repeat_interleave(4, 0), candidates.reshape(-1, 1)).min(0).values.view(3, 4)
    expected = candidates[th.arange(3), q.argmax(1)]
    th.testing.assert_close(chosen.actions, expected)
    assert not chosen.edited.any()


def test_otf_with_edits_chooses_among_base_and_edited_candidates():
    model = _model(num_min_qs=4, edit_beta=0.5)
    policy = model.policy
    base_candidates = th.linspace(-0.9, 0.9, 4).view(1, 4, 1).repeat(8, 1, 1)
    policy.base_ema.sample = lambda feats, noise=None, net=None: base_candidates.reshape(-1, 1)
    obs = th.randn(8, 3)
    chosen = policy.sample_actions(obs)
    feats = policy.features(obs)
    q_chosen = policy.critic_target(feats, chosen.actions).min(0).values
    q_base = policy.critic_target(feats.repeat_interleave(4, 0), base_candidates.reshape(-1, 1)).min(0).values.view(8, 4)
    assert (q_chosen >= q_base.max(1).values - 1e-6).all()  # never worse than the best base sample
    # an edited choice lies within beta of one of the first K base samples, and is flagged
    dist = (chosen.actions - base_candidates[:, :, 0]).abs().min(1).values
    assert (dist[chosen.edited] <= 0.5 + 1e-6).all()


def test_n_equals_one_returns_the_base_sample():
    model = _model(n_base_samples=1, n_edit_samples=0)
    model.policy.base_ema.sample = lambda feats, noise=None, net=None: th.full((len(feats), 1), 0.123)
    chosen = model.policy.sample_actions(th.randn(5, 3))
    th.testing.assert_close(chosen.actions, th.full((5, 1), 0.123))


def test_critic_step_draws_two_independent_subsets():
    """Candidate selection and the TD value each draw their own random subset of the target critic."""
    model = _model()
    model.learn(40)
    calls = []
    original = model.critic_target.random_subset
    model.critic_target.random_subset = lambda size: calls.append(size) or original(size)
    model.train(gradient_steps=3, batch_size=16)
    assert calls == [model.num_min_qs] * 6


def test_target_entropy_reference_and_adjusted():
    assert _model().target_entropy == -0.5
    adjusted = _model(adjust_target_entropy=True, edit_beta=0.05)
    assert math.isclose(adjusted.target_entropy, -0.5 + math.log(0.05))


def test_rollouts_store_the_unclipped_edited_action():
    """The env sees clip(a); the buffer keeps a, which may leave [-1, 1] by up to beta (reference 8.6)."""
    model = _model(learning_starts=0, edit_beta=0.5)
    model.policy.base_ema.sample = lambda feats, noise=None, net=None: th.ones(len(feats), 1)  # every base sample at the bound
    model.learn(30)
    stored = model.replay_buffer.actions[: model.replay_buffer.pos, 0, 0]
    assert stored.max() > 1.0 and stored.max() <= 1.5
    assert np.all(stored >= 0.5)

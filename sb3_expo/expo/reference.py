"""The straightforward EXPO update, kept as the yardstick for the fast one in expo.py (tests and benchmarks only).

Everything is done the obvious way: one nn.Module per critic, a buffer draw and a full on-the-fly sampling per
minibatch, the plain concat[a_t, s, cond(t)] denoiser call at every step, parameter-by-parameter Polyak updates.
Given the same random numbers it computes what EXPO.train() computes; tests/test_exactness.py checks that.
"""

from __future__ import annotations

import math

import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_expo.common.ensemble import CriticEnsemble
from sb3_expo.common.generative import LAYER_NORM_EPS, DiffusionPolicy
from sb3_expo.expo.expo import EXPO


def critic_modules(ensemble: CriticEnsemble) -> nn.ModuleList:
    """The batched ensemble as E separate MLPs with the same weights."""
    members = []
    for i in range(ensemble.n_critics):
        layers: list[nn.Module] = []
        for linear, norm in zip(ensemble.hidden, ensemble.norms):
            dense = nn.Linear(linear.weight.shape[1], linear.weight.shape[2])
            dense.weight.data.copy_(linear.weight[i].T)
            dense.bias.data.copy_(linear.bias[i, 0])
            layer_norm = nn.LayerNorm(linear.weight.shape[2], eps=LAYER_NORM_EPS)
            layer_norm.weight.data.copy_(norm.weight[i, 0])
            layer_norm.bias.data.copy_(norm.bias[i, 0])
            layers += [dense, layer_norm, nn.ReLU()]
        out = nn.Linear(ensemble.out.weight.shape[1], 1)
        out.weight.data.copy_(ensemble.out.weight[i].T)
        out.bias.data.copy_(ensemble.out.bias[i, 0])
        members.append(nn.Sequential(*layers, out))
    return nn.ModuleList(members).to(ensemble.out.weight.device)


def stacked(members: nn.ModuleList) -> list[th.Tensor]:
    """Per-critic modules back in the batched layout, to compare with a CriticEnsemble's parameters."""
    n_layers = (len(members[0]) - 1) // 3
    out = []
    for layer in range(n_layers):
        out.append(th.stack([m[3 * layer].weight.T for m in members]))
        out.append(th.stack([m[3 * layer].bias[None] for m in members]))
    for layer in range(n_layers):
        out.append(th.stack([m[3 * layer + 1].weight[None] for m in members]))
        out.append(th.stack([m[3 * layer + 1].bias[None] for m in members]))
    out.append(th.stack([m[-1].weight.T for m in members]))
    out.append(th.stack([m[-1].bias[None] for m in members]))
    return out


class ReferenceUpdate:
    """Runs the straightforward update on an EXPO model's networks (the critics as separate modules)."""

    def __init__(self, model: EXPO):
        self.model = model
        self.critics = critic_modules(model.critic)
        self.targets = critic_modules(model.critic_target)
        group = model.critic.optimizer.param_groups[0]
        self.critic_optimizer = th.optim.Adam(
            self.critics.parameters(), lr=group["lr"], betas=group["betas"], eps=group["eps"]
        )

    def q_all(
        self, members: nn.ModuleList, features: th.Tensor, actions: th.Tensor, idx: th.Tensor | None = None
    ) -> th.Tensor:
        x = th.cat([features, actions], dim=-1)
        chosen = range(len(members)) if idx is None else idx.tolist()
        return th.stack([members[i](x).squeeze(-1) for i in chosen])

    def sample_base(self, base: DiffusionPolicy, obs: th.Tensor, noise: th.Tensor) -> th.Tensor:
        x = noise[0]
        for t in range(base.n_steps - 1, -1, -1):
            eps = base.net(obs, x, th.full((obs.shape[0],), t, device=obs.device))
            x = (x - base.betas[t] / th.sqrt(1 - base.alpha_bars[t]) * eps) / th.sqrt(base.alphas[t])
            if t > 0:
                x = x + th.sqrt(base.betas[t]) * noise[t]
            x = x.clamp(-1.0, 1.0)
        return x.clamp(-1.0, 1.0)

    def backup_action(self, next_features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """On-the-fly action for one minibatch: online base policy, current edit, target critic subset min."""
        model, policy = self.model, self.model.policy
        n, k = policy.n_base_samples, policy.n_edit_samples
        batch, d = next_features.shape[0], model.action_space.shape[0]
        if not model.otf_backup:
            noise = model.base.draw_noise(batch, next_features.device)
            return self.sample_base(model.base, next_features, noise), th.zeros(batch, dtype=th.bool)
        base_noise, edit_noise = policy.candidate_noise(batch, next_features.device)
        base_actions = self.sample_base(model.base, next_features.repeat_interleave(n, 0), base_noise).view(batch, n, d)
        candidates = base_actions
        if n > 1 and k > 0:
            edited, _ = model.edit(
                next_features.repeat_interleave(k, 0), base_actions[:, :k].reshape(-1, d), False, edit_noise
            )
            candidates = th.cat([base_actions, edited.view(batch, k, d)], dim=1)
        if candidates.shape[1] == 1:
            return candidates[:, 0], th.zeros(batch, dtype=th.bool)
        idx = th.randperm(len(self.targets), device=next_features.device)[: model.num_min_qs]
        n_cand = candidates.shape[1]
        q = self.q_all(self.targets, next_features.repeat_interleave(n_cand, 0), candidates.reshape(-1, d), idx)
        best = q.min(0).values.view(batch, n_cand).argmax(1)
        return candidates[th.arange(batch), best], best >= n

    def train(self, gradient_steps: int, batch_size: int) -> dict[str, list[th.Tensor]]:
        model, policy = self.model, self.model.policy
        lr = model.lr_schedule(model._current_progress_remaining)
        record: dict[str, list[th.Tensor]] = {"critic_loss": [], "next_actions": []}
        for _ in range(gradient_steps):
            data = model.replay_buffer.sample(batch_size, env=model._vec_normalize_env)
            with th.no_grad():
                features, next_features = policy.features(data.observations), policy.features(data.next_observations)
                next_actions, _ = self.backup_action(next_features)
                idx = th.randperm(len(self.targets), device=features.device)[: model.num_min_qs]
                next_q = self.q_all(self.targets, next_features, next_actions, idx).min(0).values
                target = data.rewards.squeeze(-1) + (1 - data.dones.squeeze(-1)) * model.gamma * next_q
            losses = [F.mse_loss(critic(th.cat([features, data.actions], -1)).squeeze(-1), target) for critic in self.critics]
            loss = sum(losses) / len(losses)
            self.critic_optimizer.zero_grad()
            loss.backward()
            self.critic_optimizer.step()
            with th.no_grad():
                for p, p_target in zip(self.critics.parameters(), self.targets.parameters()):
                    p_target.mul_(1 - model.tau).add_(model.tau * p)
            record["critic_loss"].append(loss.detach())
            record["next_actions"].append(next_actions)

        # base policy: one imitation step on the last minibatch, then the EMA copy
        for group in model.base.optimizer.param_groups:
            group["lr"] = (
                lr * 0.5 * (1 + math.cos(math.pi * min(model._n_base_updates, model.lr_decay_steps) / model.lr_decay_steps))
            )
        base_loss = model.base.loss(features, data.actions)
        model.base.optimizer.zero_grad()
        base_loss.backward()
        model.base.optimizer.step()
        model._n_base_updates += 1
        with th.no_grad():
            for p, p_ema in zip(model.base.parameters(), model.base_ema.parameters()):
                p_ema.mul_(1 - model.ema_tau).add_(model.ema_tau * p)
        record["base_loss"] = [base_loss.detach()]

        if policy.n_edit_samples > 0:  # edit policy against the mean of all online critics, then the temperature
            for group in model.edit.optimizer.param_groups:
                group["lr"] = (
                    lr
                    * 0.5
                    * (1 + math.cos(math.pi * min(model._n_edit_updates, model.lr_decay_steps) / model.lr_decay_steps))
                )
            alpha = model.log_ent_coef.detach().exp()
            model.edit.train(True)
            edited, log_prob = model.edit(features, data.actions)
            model.edit.train(False)
            for p in self.critics.parameters():
                p.requires_grad_(False)
            q = self.q_all(self.critics, features, edited).mean(0)
            for p in self.critics.parameters():
                p.requires_grad_(True)
            edit_loss = (alpha * log_prob - q).mean()
            model.edit.optimizer.zero_grad()
            edit_loss.backward()
            model.edit.optimizer.step()
            model._n_edit_updates += 1
            entropy = -log_prob.detach().mean()
            temperature_loss = (model.log_ent_coef.exp() * (entropy - model.target_entropy)).sum()
            model.ent_coef_optimizer.zero_grad()
            temperature_loss.backward()
            model.ent_coef_optimizer.step()
            with th.no_grad():
                model.log_ent_coef.clamp_(-model.max_log_ent_coef, model.max_log_ent_coef)
            record["edit_loss"] = [edit_loss.detach()]
        model._n_updates += gradient_steps
        return record

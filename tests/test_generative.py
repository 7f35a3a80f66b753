import numpy as np
import pytest
import torch as th
from torch import nn

from sb3_expo.common.generative import DiffusionPolicy, FlowPolicy, TimeMLP, vp_beta_schedule

# Reference section 1.1.5 (T = 10, b_min 0.1, b_max 10).
REF_BETAS = [0.0578, 0.1466, 0.2270, 0.2999, 0.3659, 0.4256, 0.4798, 0.5288, 0.5732, 0.6135]
REF_ALPHA_BARS = [0.9422, 0.8041, 0.6216, 0.4352, 0.2760, 0.1585, 0.0825, 0.0389, 0.0166, 0.0064]


def test_vp_schedule_matches_reference_values():
    policy = DiffusionPolicy(obs_dim=3, action_dim=2, n_steps=10, width=16, n_blocks=1)
    np.testing.assert_allclose(vp_beta_schedule(10).numpy(), REF_BETAS, atol=1e-4)
    np.testing.assert_allclose(policy.alpha_bars.numpy(), REF_ALPHA_BARS, atol=1e-4)


def test_denoiser_matches_reference_shape_and_size():
    policy = DiffusionPolicy(obs_dim=29, action_dim=8)  # AntMaze sizes, paper width 256, 3 blocks
    n_params = sum(p.numel() for p in policy.parameters())
    assert 1.6e6 < n_params < 1.8e6  # "about 1.7 M parameters"
    ln = policy.net.blocks[0].norm
    assert ln.eps == 1e-6 and ln.weight.requires_grad  # flax LayerNorm, learnable scale


def test_sampler_projected_path_equals_plain_network():
    """The sampler's split input layer computes exactly the reference network concat[a_t, s, cond(t)]."""
    th.manual_seed(0)
    policy = DiffusionPolicy(obs_dim=5, action_dim=3, width=32, n_blocks=2)
    obs, x = th.randn(7, 5), th.randn(7, 3)
    w_action, obs_proj, w_cond = policy.net.split_input(obs)
    for t in range(10):
        cond_proj = policy.net.time_embedding(th.tensor([t])) @ w_cond.T
        fast = policy.net.forward_projected(obs_proj, w_action, cond_proj[0], x)
        plain = policy.net(obs, x, th.full((7,), t))
        th.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_sampler_clips_after_every_step():
    """A denoiser that pushes far out of range still yields actions in [-1, 1], and clip_sample changes the path."""
    th.manual_seed(0)
    policy = DiffusionPolicy(obs_dim=2, action_dim=4, width=16, n_blocks=1)
    steps = []

    def push(obs_proj, w_action, cond_proj, x, linears=None):
        steps.append(x.clone())
        return th.full_like(x, -50.0)  # eps so negative that every update overshoots +1

    policy.net.forward_projected = push
    out = policy.sample(th.zeros(64, 2))
    assert out.abs().max() <= 1.0
    assert all(s.abs().max() <= 1.0 for s in steps[1:])  # every intermediate x was clipped
    policy.clip_sample = False
    steps.clear()
    policy.sample(th.zeros(64, 2))
    assert max(s.abs().max() for s in steps[1:]) > 1.0


def test_imitation_loss_falls_and_samples_follow_the_data():
    """Trained on a state-dependent target a = -s, the sampler reproduces it."""
    th.manual_seed(0)
    policy = DiffusionPolicy(obs_dim=1, action_dim=1, width=64, n_blocks=2)
    opt = th.optim.AdamW(policy.parameters(), lr=1e-3, weight_decay=1e-4)
    losses = []
    for _ in range(600):
        obs = th.rand(128, 1) * 1.6 - 0.8
        loss = policy.loss(obs, -obs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-50:]) < 0.5 * np.mean(losses[:50])
    obs = th.tensor([[-0.6], [0.0], [0.6]]).repeat_interleave(100, 0)
    with th.no_grad():
        means = policy.sample(obs).view(3, 100).mean(1)
    np.testing.assert_allclose(means.numpy(), [0.6, 0.0, -0.6], atol=0.15)


@pytest.mark.parametrize("t", [0, 9])
def test_time_features_use_raw_step_index(t):
    policy = DiffusionPolicy(obs_dim=1, action_dim=1, width=16, n_blocks=1)
    feats = policy.net.time_features(th.tensor([t]))
    f = 2 * np.pi * t * policy.net.time_features.kernel.detach().numpy()[:, 0]
    np.testing.assert_allclose(feats.detach().numpy()[0], np.concatenate([np.cos(f), np.sin(f)]), atol=1e-5)


def test_chunked_sampling_gives_the_same_actions_as_one_pass():
    """The sampler works through large batches in cache-sized chunks (CPU); results must not depend on it."""
    th.manual_seed(0)
    policy = DiffusionPolicy(obs_dim=4, action_dim=2, width=32, n_blocks=1)
    obs = th.randn(2500, 4)  # more than one fp32 chunk
    noise = policy.draw_noise(2500, "cpu")
    with th.no_grad():
        th.testing.assert_close(policy.sample(obs, noise), policy._sample(obs, noise, policy.net), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- flow matching and DDIM, closed forms
class ExactVelocity(nn.Module):
    """The exact rectified-flow velocity for 1-D data a ~ N(m, s^2) (s = 0: a point mass), x_t = t eps + (1 - t) a:
    v(x, t) = -m + (t - (1 - t) s^2) / (t^2 + (1 - t)^2 s^2) (x - (1 - t) m)."""

    def __init__(self, m: float, s: float):
        super().__init__()
        self.m, self.s = m, s

    def forward(self, obs, x, t):
        t = (t / 10.0).reshape(-1, 1).to(x.dtype)  # FlowPolicy feeds 10 t to the residual denoiser's time features
        m, s2 = self.m, self.s**2
        return -m + (t - (1 - t) * s2) / (t**2 + (1 - t) ** 2 * s2) * (x - (1 - t) * m)


@pytest.mark.parametrize("steps", [1, 2, 10])
def test_flow_sampler_maps_noise_onto_a_point_mass_in_any_number_of_steps(steps):
    flow = FlowPolicy(1, 1, n_steps=steps, net=ExactVelocity(0.4, 0.0), clip_output=False)
    out = flow.sample(th.zeros(1000, 1))
    th.testing.assert_close(out, th.full_like(out, 0.4), atol=1e-5, rtol=0)  # straight paths: Euler is exact


def test_flow_sampler_transports_a_gaussian_and_one_step_gives_its_mean():
    th.manual_seed(0)
    many = FlowPolicy(1, 1, n_steps=200, net=ExactVelocity(0.3, 0.2), clip_output=False).sample(th.zeros(20000, 1))
    assert abs(many.mean().item() - 0.3) < 0.01 and abs(many.std().item() - 0.2) < 0.01
    one = FlowPolicy(1, 1, n_steps=1, net=ExactVelocity(0.3, 0.2), clip_output=False).sample(th.zeros(100, 1))
    th.testing.assert_close(one, th.full_like(one, 0.3), atol=1e-5, rtol=0)  # one Euler step from t = 1: E[a]


def test_flow_learns_a_known_gaussian():
    th.manual_seed(0)
    flow = FlowPolicy(1, 1, n_steps=10, width=64, n_blocks=2)
    opt = th.optim.Adam(flow.parameters(), lr=1e-3)
    for _ in range(1500):
        a = 0.3 + 0.15 * th.randn(256, 1)
        loss = flow.loss(th.zeros(256, 1), a)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with th.no_grad():
        out = flow.sample(th.zeros(4000, 1))
    assert abs(out.mean().item() - 0.3) < 0.05 and abs(out.std().item() - 0.15) < 0.05


class ExactNoise(nn.Module):
    """The exact noise prediction for a point mass at m: eps(x_t, t) = (x_t - sqrt(abar_t) m) / sqrt(1 - abar_t)."""

    def __init__(self, m: float, alpha_bars: th.Tensor):
        super().__init__()
        self.m, self.alpha_bars = m, alpha_bars

    def forward(self, obs, x, t):
        abar = self.alpha_bars[t.long()].reshape(-1, 1)
        return (x - abar.sqrt() * self.m) / (1 - abar).sqrt()


def test_ddim_is_deterministic_in_its_start_and_exact_on_a_point_mass():
    ddim = DiffusionPolicy(1, 1, sampler="ddim", width=16, n_blocks=1)
    assert ddim.draw_noise(5, "cpu").shape == (1, 5, 1)  # only x_T
    ddim.net = ExactNoise(-0.35, ddim.alpha_bars)
    out = ddim.sample(th.zeros(500, 1))
    th.testing.assert_close(out, th.full_like(out, -0.35), atol=1e-5, rtol=0)
    trained = DiffusionPolicy(2, 1, sampler="ddim", width=16, n_blocks=1)
    obs, start = th.randn(50, 2), trained.draw_noise(50, "cpu")
    th.testing.assert_close(trained.sample(obs, start), trained.sample(obs, start))  # a map from x_T, no other noise


def test_gorl_style_diffusion_decoder_is_the_identity_when_its_network_is_zero():
    decoder = DiffusionPolicy(
        3,
        2,
        sampler="ddim",
        schedule="linear_alpha_bar",
        parameterization="epsilon_delta",
        clip_sample=False,
        net=TimeMLP(3, 2, zero_final=True),
        time_input="fraction",
        output_scale=0.25,
        loss_reduction="mean",
    )
    z = 3.0 * th.randn(1, 40, 2)  # far outside [-1, 1]: nothing is clipped
    th.testing.assert_close(decoder.sample(th.randn(40, 3), z), z[0])
    np.testing.assert_allclose(decoder.alpha_bars[[0, -1]].numpy(), [0.9001, 0.001], atol=1e-6)
    decoder.loss(th.randn(16, 3), th.randn(16, 2)).backward()  # trains

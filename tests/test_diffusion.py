import numpy as np
import pytest
import torch as th

from sb3_expo.common.diffusion import DiffusionPolicy, vp_beta_schedule

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
    """A denoiser that pushes far out of range still yields actions in [-1, 1], and clip_sampler changes the path."""
    th.manual_seed(0)
    policy = DiffusionPolicy(obs_dim=2, action_dim=4, width=16, n_blocks=1)
    steps = []

    def push(obs_proj, w_action, cond_proj, x):
        steps.append(x.clone())
        return th.full_like(x, -50.0)  # eps so negative that every update overshoots +1

    policy.net.forward_projected = push
    out = policy.sample(th.zeros(64, 2))
    assert out.abs().max() <= 1.0
    assert all(s.abs().max() <= 1.0 for s in steps[1:])  # every intermediate x was clipped
    policy.clip_sampler = False
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

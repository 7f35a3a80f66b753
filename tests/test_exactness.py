"""The fast update (EXPO.train) computes the same algorithm as the straightforward one (expo/reference.py)."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import configure

from sb3_expo import EXPO
from sb3_expo.expo.reference import ReferenceUpdate, stacked

from .conftest import SMALL

G, B = 4, 16


def _model(**kwargs):
    model = EXPO("MlpPolicy", gym.make("Pendulum-v1"), seed=3, **{**SMALL, **kwargs})
    rng = np.random.default_rng(0)
    for _ in range(64):  # identical online data in every model
        obs = rng.normal(size=(1, 3))
        model.replay_buffer.add(obs, obs + 0.1, rng.uniform(-1, 1, (1, 1)), rng.normal(size=1), rng.random(1) < 0.1, [{}])
    return model


def _shared_randomness(model_fast, model_ref, n_base, n_edit):
    """Both paths get the same minibatches and the same sampler/edit noise, in their own call pattern."""
    np.random.seed(0)
    big = model_fast.replay_buffer.sample_minibatches(G, B)
    model_fast.replay_buffer.sample_minibatches = lambda n, b, env=None: big
    slices = itertools.cycle([type(big)(*(None if f is None else f[g * B : (g + 1) * B] for f in big)) for g in range(G)])
    model_ref.replay_buffer.sample = lambda b, env=None: next(slices)

    gen = th.Generator().manual_seed(1)
    base_noise = th.randn(model_fast.base.n_steps, G * B * n_base, 1, generator=gen)
    edit_noise = th.randn(G * B * n_edit if n_base > 1 else 0, 1, generator=gen)
    model_fast.policy.candidate_noise = lambda n, device: (base_noise, edit_noise)
    calls = itertools.cycle(range(G))

    def per_minibatch(n, device):
        g = next(calls)
        return base_noise[:, g * B * n_base : (g + 1) * B * n_base], edit_noise[g * B * n_edit : (g + 1) * B * n_edit]

    model_ref.policy.candidate_noise = per_minibatch


@pytest.mark.parametrize(
    "kwargs", [{}, dict(n_edit_samples=0), dict(n_base_samples=1, n_edit_samples=0), dict(torch_compile=True)]
)
def test_fast_update_matches_the_straightforward_one(kwargs):
    """torch_compile applies to the fast path only: its compiled sampler and critics against the eager reference."""
    fast, ref_model = _model(**kwargs), _model(**{**kwargs, "torch_compile": False})
    for p, q in zip(fast.policy.parameters(), ref_model.policy.parameters()):
        assert th.equal(p, q)  # same seed, same start
    reference = ReferenceUpdate(ref_model)
    _shared_randomness(fast, ref_model, fast.n_base_samples, fast.n_edit_samples)

    chosen, losses = [], []
    select, critic_step = fast.policy.select, fast._critic_step

    def recording_select(features, candidates):
        chosen.append(select(features, candidates))
        return chosen[-1]

    def recording_critic_step(*args):
        out = critic_step(*args)
        losses.append(out[0])
        return out

    fast.policy.select, fast._critic_step = recording_select, recording_critic_step
    fast._current_progress_remaining = ref_model._current_progress_remaining = 1.0
    fast.set_logger(configure(None, [""]))
    for _ in range(2):  # two train() calls: the second starts from updated networks and optimizer states
        th.manual_seed(5)
        fast.train(G, B)
        th.manual_seed(5)
        record = reference.train(G, B)
        # chosen backup actions and critic losses of every critic step agree
        fast_chosen = [c.actions for c in chosen[-G:]] if fast.n_base_samples > 1 else None
        if fast_chosen is not None:
            for a, b in zip(fast_chosen, record["next_actions"]):
                th.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        th.testing.assert_close(th.stack(losses[-G:]), th.stack(record["critic_loss"]), atol=1e-5, rtol=1e-4)

    for mine, theirs in zip(fast.critic.parameters(), stacked(reference.critics)):
        th.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)
    for mine, theirs in zip(fast.critic_target.parameters(), stacked(reference.targets)):
        th.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)
    for name in ("base", "base_ema", "edit"):
        for mine, theirs in zip(getattr(fast.policy, name).parameters(), getattr(ref_model.policy, name).parameters()):
            th.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)
    th.testing.assert_close(fast.log_ent_coef, ref_model.log_ent_coef)
    if fast.torch_compile:  # the compiled networks ran, none fell back to eager
        assert fast.base.compile_mode == fast.critic.compile_mode == fast.critic_target.compile_mode == "default"


def test_bf16_backup_sampler_stays_close_to_float32():
    """precision="bf16" trades a little precision in the backup's denoiser for speed; the chain itself stays fp32."""
    model = _model(precision="bf16", policy_kwargs=dict(net_arch=[32, 32], n_critics=4, denoiser_width=64))
    model.set_logger(configure(None, [""]))
    model.train(2, 16)  # the bf16 path trains
    feats = th.randn(64, 3)
    noise = model.policy.candidate_noise(64, "cpu")
    with th.no_grad():
        fp32 = model.policy.candidates(feats, model.base, noise=noise)
        bf16 = model.policy.candidates(feats, model.base, noise=noise, net=model.base.low_precision_net())
    assert bf16.dtype == th.float32
    assert (bf16 - fp32).abs().mean() < 0.02 and (bf16 - fp32).abs().max() < 0.2


def _recorded_gradients(model) -> dict[str, list[th.Tensor]]:
    """Every gradient the critic, edit and base optimizers step with during one train() (flattened per step)."""
    grads: dict[str, list[th.Tensor]] = {"critic": [], "edit": [], "base": []}
    for name, module in (("critic", model.critic), ("edit", model.edit), ("base", model.base)):
        optimizer, step = module.optimizer, module.optimizer.step

        def recording_step(*args, _name=name, _optimizer=optimizer, _step=step, **kwargs):
            params = [p for group in _optimizer.param_groups for p in group["params"] if p.grad is not None]
            grads[_name].append(th.cat([p.grad.flatten() for p in params]).clone())
            return _step(*args, **kwargs)

        optimizer.step = recording_step
    return grads


def test_bf16_update_stays_within_tolerance_of_fp32_on_the_same_batch():
    """precision="bf16" (mixed precision for the whole update) on the same minibatches and noise as fp32.

    Stated tolerance (docs/guide/performance.md): every gradient the critic, edit and base optimizers step with has
    cosine similarity >= 0.99 with fp32's and a relative error <= 10%; the logged critic loss and TD targets
    agree within 2%. Q values, losses and master weights are float32 either way.
    """
    kwargs = dict(policy_kwargs=dict(net_arch=[64, 64], n_critics=4, denoiser_width=64, denoiser_blocks=2))
    grads, logs = {}, {}
    for precision in ("fp32", "bf16"):
        model = _model(precision=precision, **kwargs)
        model.set_logger(configure(None, [""]))
        grads[precision] = _recorded_gradients(model)
        np.random.seed(0)
        th.manual_seed(0)
        model.train(G, B)
        logs[precision] = dict(model.logger.name_to_value)
        assert all(p.dtype == th.float32 for p in model.policy.parameters())  # master weights
    for name in ("critic", "edit", "base"):
        assert len(grads["fp32"][name]) == len(grads["bf16"][name]) > 0
        for g32, g16 in zip(grads["fp32"][name], grads["bf16"][name]):
            assert g16.dtype == th.float32
            assert th.nn.functional.cosine_similarity(g32, g16, dim=0) >= 0.99, name
            assert (g16 - g32).norm() <= 0.1 * g32.norm(), name
    for key in ("train/critic_loss", "train/target_q_values"):
        assert logs["bf16"][key] == pytest.approx(logs["fp32"][key], rel=0.02, abs=1e-3), key


def test_bf16_acting_samples_from_a_copy_of_the_ema_weights_that_follows_them():
    """precision="bf16" acts from a bfloat16 copy of the EMA base: the same actions as fp32 within bf16's rounding,
    and a copy refreshed whenever the EMA weights change (a train step), without a new allocation."""
    model = _model(precision="bf16", policy_kwargs=dict(net_arch=[32, 32], n_critics=4, denoiser_width=64))
    model.set_logger(configure(None, [""]))
    obs = th.randn(64, 3)
    with th.no_grad():
        noise = model.policy.candidate_noise(64, "cpu")
        bf16 = model.policy.candidates(obs, model.base_ema, noise=noise, net=model.policy.acting_net())
        fp32 = model.policy.candidates(obs, model.base_ema, noise=noise)
    assert (bf16 - fp32).abs().mean() < 0.02
    first = model.policy.acting_net()
    model.train(2, 16)  # moves the EMA weights
    again = model.policy.acting_net()
    assert again is first
    for mine, ema in zip(again.parameters(), model.base_ema.net.parameters()):
        assert th.equal(mine, ema.to(mine.dtype))
    model.policy.bf16_acting = False  # fp32 models act from the EMA weights themselves
    assert model.policy.acting_net() is None


def test_bf16_copy_is_refreshed_from_the_current_weights():
    """The backup's bfloat16 denoiser is one persistent copy: every train() must see the base policy's new weights."""
    model = _model(precision="bf16")
    first = model._low_precision_net()
    with th.no_grad():
        for p in model.base.net.parameters():
            p.add_(0.5)
    again = model._low_precision_net()
    assert again is first  # no new allocation per call
    for mine, fresh in zip(again.parameters(), model.base.low_precision_net().parameters()):
        assert th.equal(mine, fresh)
        assert mine.is_leaf and not mine.requires_grad  # refreshed without recording autograd history


def test_compiled_networks_act_and_train_like_the_eager_ones(tmp_path):
    """torch_compile=True: same actions and Q values as eager from the same inputs, and the flag survives save/load."""
    model = _model(torch_compile=True)
    model.learn(40)  # compiles the acting chain and critic, the backup chain (G x B x N rows), the critic updates
    modules = (model.base, model.base_ema, model.critic, model.critic_target)
    assert all(m.compile_mode == "default" for m in modules)  # compiled, not fallen back to eager
    obs, noise = th.randn(4, 3), model.base_ema.draw_noise(4, "cpu")
    actions, members = th.rand(4, 1) * 2 - 1, th.tensor([0, 1])
    with th.no_grad():
        compiled = model.base_ema.sample(obs, noise), model.critic(obs, actions), model.critic_target(obs, actions, members)
        for m in modules:
            m.compile_mode = None
        eager = model.base_ema.sample(obs, noise), model.critic(obs, actions), model.critic_target(obs, actions, members)
    th.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    model.save(tmp_path / "m.zip")
    loaded = EXPO.load(tmp_path / "m.zip")
    assert loaded.torch_compile
    assert all(m.compile_mode == "default" for m in (loaded.base, loaded.base_ema, loaded.critic, loaded.critic_target))


def test_falls_back_to_eager_when_compilation_fails(monkeypatch):
    from sb3_expo.common import compiled

    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(compiled, "_COMPILED", {})
    monkeypatch.setattr(th, "compile", broken_compile)
    model = _model(torch_compile=True)
    obs, noise = th.randn(4, 3), model.base.draw_noise(4, "cpu")
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler"), th.no_grad():
        fallback = model.base.sample(obs, noise)
    assert model.base.compile_mode is None
    with th.no_grad():
        th.testing.assert_close(fallback, model.base.sample(obs, noise))
    with pytest.warns(UserWarning, match="CriticEnsemble._forward eagerly"):
        model.learn(30)  # past learning_starts: acting and training go on eagerly
    assert model.critic.compile_mode is None and model.critic_target.compile_mode is None


def test_precision_is_one_switch_saved_with_the_model_and_bf16_sampler_still_loads(tmp_path, monkeypatch):
    import sb3_expo.expo.expo as expo_module

    with pytest.warns(FutureWarning, match="precision='bf16'"):
        model = _model(bf16_sampler=True)
    assert model.precision == "bf16" and model._bf16
    model.save(tmp_path / "new")
    assert EXPO.load(tmp_path / "new").precision == "bf16"

    old = _model(precision="fp32")  # a model saved before `precision` existed: only the old attribute in its zip
    del old.precision
    old.bf16_sampler = True
    old.save(tmp_path / "old")
    with pytest.warns(FutureWarning, match="saved with bf16_sampler"):
        loaded = EXPO.load(tmp_path / "old")
    assert loaded.precision == "bf16" and loaded._bf16 and not hasattr(loaded, "bf16_sampler")

    monkeypatch.setattr(expo_module, "native_bf16", lambda device: False)  # a CPU without bf16 units
    assert not _model(precision="auto")._bf16
    monkeypatch.setattr(expo_module, "native_bf16", lambda device: True)
    assert _model(precision="auto")._bf16
    with pytest.raises(ValueError, match="precision='bf17'"):
        _model(precision="bf17")


def test_fast_update_matches_the_straightforward_one_on_onednn(monkeypatch):
    """With the sampler's linears on oneDNN (weights packed, common/kernels.py), the same tolerances hold."""
    monkeypatch.setenv("SB3_EXPO_CPU_GEMM", "onednn")
    test_fast_update_matches_the_straightforward_one({})

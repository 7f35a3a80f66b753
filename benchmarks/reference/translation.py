"""Our settings (the `evidence` block of hyperparams/expo.yml) translated one to one into the reference learners' own.

Pure Python (PyYAML only): the reference driver imports it in the reference venv, and tests/test_reference_driver.py in
the project's venv, where it checks OURS_DEFAULTS against the signatures of EXPO, RLPD and their policies.

    translate("expo", config, task, action_dim) -> Translation(create_kwargs, loop, widths, rows)

`create_kwargs` go to the reference learner's create() classmethod; `loop` holds what their training scripts decide
(batch size, UTD, warm-up, offline ratio, budget, evaluation); `rows` is the side-by-side table, one row per setting:
(setting, ours, theirs, status). A setting of ours that has no translation raises, so the table is never silently
incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

REFERENCES = {
    "expo": dict(
        method="EXPO (authors' code)",
        slug="expo_authors",
        repo="Servo97/EXPO",
        url="https://github.com/Servo97/EXPO",
        commit="b7ed7103089ad2d15d3f32386469dcc0e1333279",
        folder="EXPO-b7ed710",
        package="expo",
        learner="expo.agents.sac.expo_learner.EXPOLearner",
        ours="EXPO",
    ),
    "rlpd": dict(
        method="RLPD (authors' code)",
        slug="rlpd_authors",
        repo="ikostrikov/rlpd",
        url="https://github.com/ikostrikov/rlpd",
        commit="c90fd4baf28c9c9ef40a81460a2e395092844f88",
        folder="rlpd-c90fd4b",
        package="rlpd",
        learner="rlpd.agents.sac.sac_learner.SACLearner",
        ours="RLPD",
    ),
}

# Our constructor and policy defaults that the evidence block leaves as they are (tests/test_reference_driver.py checks
# them against sb3_expo's signatures, so a changed default cannot go unnoticed here).
OURS_DEFAULTS: dict[str, dict[str, Any]] = {
    "expo": dict(
        learning_rate=3e-4,
        buffer_size=1_000_000,
        learning_starts=5000,
        batch_size=256,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=20,
        n_steps=1,
        demo_ratio=None,
        edit_beta=0.05,
        n_base_samples=8,
        n_edit_samples=8,
        num_min_qs=None,
        otf_backup=True,
        ema_tau=0.001,
        lr_decay_steps=3_000_000,
        ent_coef="auto",
        target_entropy="auto",
        adjust_target_entropy=False,
        max_log_ent_coef=20.0,
        clip_edited_actions=False,
        precision="fp32",
        torch_compile=False,
    ),
    "expo_policy": dict(
        net_arch=None,  # [256, 256, 256]
        n_critics=10,
        base="ddpm",
        diffusion_steps=10,
        denoiser_width=256,
        denoiser_blocks=3,
        edit_dropout=0.0,
        base_weight_decay=1e-4,
    ),
    "rlpd": dict(
        learning_rate=3e-4,
        buffer_size=1_000_000,
        learning_starts=5000,
        batch_size=256,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=20,
        n_steps=1,
        demo_ratio=None,
        num_min_qs=None,
        backup_entropy=True,
        ent_coef="auto",
        target_entropy="auto",
    ),
    "rlpd_policy": dict(net_arch=None, n_critics=10, critic_layer_norm=True),  # net_arch None: [256, 256]
}
EXPO_NET_ARCH, RLPD_NET_ARCH = [256, 256, 256], [256, 256]
TIME_FEATURES = 128  # our Denoiser's Fourier features (time_dim), not a constructor argument of EXPO
DEMO_ACTION_CLIP = 1 - 1e-5  # the reference dataset loaders clip offline actions to +-(1 - 1e-5)
EVAL_SEED = 10_000  # benchmarks/evidence.py: held-out reset seeds 10000, 10001, ...


@dataclass
class Translation:
    algo: str
    create_kwargs: dict[str, Any]
    loop: dict[str, Any]
    widths: dict[str, Any]  # injected widths the reference's create() does not expose (EXPO's denoiser), or {}
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def table(self) -> str:
        """Markdown: ours | theirs | status, setting by setting."""
        lines = ["| setting | ours (sb3-expo) | theirs (reference) | status |", "|---|---|---|---|"]
        lines += [f"| {s} | {o} | {t} | {st} |" for s, o, t, st in self.rows]
        return "\n".join(lines)

    def side_by_side(self) -> str:
        """Plain text for the terminal."""
        widths = [max(len(r[i]) for r in [("setting", "ours", "theirs", "status"), *self.rows]) for i in range(4)]
        widths = [min(w, 60) for w in widths]
        out = []
        for row in [("setting", "ours", "theirs", "status"), *self.rows]:
            out.append("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths)))
        return "\n".join(out)


def load_block() -> dict:
    return yaml.safe_load((ROOT / "hyperparams" / "expo.yml").read_text())["evidence"]


def _ours(algo: str, config: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our effective settings: defaults overlaid with the scale's block (and its policy_kwargs)."""
    key = "expo" if algo == "expo" else "rlpd"
    settings = dict(OURS_DEFAULTS[key])
    policy = dict(OURS_DEFAULTS[f"{key}_policy"])
    block = dict(config[key])
    policy.update(block.pop("policy_kwargs", {}) or {})
    unknown = set(block) - set(settings)
    if unknown:
        raise ValueError(f"no translation for {key} setting(s) {sorted(unknown)} of the evidence block: extend translation.py")
    unknown = set(policy) - set(OURS_DEFAULTS[f"{key}_policy"])
    if unknown:
        raise ValueError(f"no translation for {key} policy_kwargs {sorted(unknown)}: extend translation.py")
    settings.update(block)
    settings["demo_ratio"] = 0.5 if settings["demo_ratio"] is None else settings["demo_ratio"]  # with demonstrations
    if policy["net_arch"] is None:
        policy["net_arch"] = EXPO_NET_ARCH if algo == "expo" else RLPD_NET_ARCH
    n_critics = policy["n_critics"]
    settings["num_min_qs"] = min(2, n_critics) if settings["num_min_qs"] is None else settings["num_min_qs"]
    return settings, policy


def _init_temperature(ent_coef: Any) -> float | None:
    if isinstance(ent_coef, str) and ent_coef.startswith("auto"):
        return float(ent_coef.split("_")[1]) if "_" in ent_coef else 1.0
    return None  # a fixed coefficient: the reference always learns its temperature


def translate(algo: str, config: dict, task: str, action_dim: int, match_widths: bool = True) -> Translation:
    """Translate the scale's settings (`config` = the evidence block's scale) for `task` into the reference's."""
    ours, policy = _ours(algo, config)
    task_cfg = config["tasks"][task]
    rows: list[tuple[str, str, str, str]] = []
    unmatched: list[str] = []

    def row(setting: str, our: Any, their: Any, status: str = "same") -> None:
        rows.append((setting, str(our), str(their), status))
        if status.startswith("NOT"):
            unmatched.append(f"{setting}: ours {our}, theirs {their}")

    net_arch = policy["net_arch"]
    if isinstance(net_arch, dict):
        pi, qf = list(net_arch.get("pi", [])), list(net_arch.get("qf", []))
        if pi != qf:
            raise ValueError(f"net_arch {net_arch}: the reference shares hidden_dims between actor and critics")
        net_arch = pi
    lr = ours["learning_rate"]
    if not isinstance(lr, (int, float)):
        raise ValueError("a learning-rate schedule has no translation (the reference takes a number)")
    init_temp = _init_temperature(ours["ent_coef"])
    target_entropy = None if ours["target_entropy"] == "auto" else float(ours["target_entropy"])
    loop = dict(
        batch_size=ours["batch_size"],
        utd_ratio=ours["gradient_steps"],
        start_training=ours["learning_starts"],
        offline_ratio=ours["demo_ratio"],
        max_steps=task_cfg["steps"],
        eval_interval=task_cfg["eval_every"],
        eval_episodes=config["eval_episodes"],
        eval_seed=EVAL_SEED,
        demos=task_cfg["demos"],
        replay_capacity=task_cfg["steps"],
    )

    # --- the loop: what the reference's training script decides
    row("batch size B", ours["batch_size"], f"--batch_size {loop['batch_size']}")
    row(
        "UTD G (critic steps per env step)",
        f"gradient_steps {ours['gradient_steps']}",
        f"update(batch, utd_ratio={loop['utd_ratio']})",
    )
    row(
        "warm-up (uniform random actions, no updates)",
        f"learning_starts {ours['learning_starts']}",
        f"--start_training {loop['start_training']}",
    )
    b, g, r = loop["batch_size"], loop["utd_ratio"], loop["offline_ratio"]
    row(
        "demonstrations per minibatch",
        f"demo_ratio {r}: {round(b * r)} demo + {b - round(b * r)} online",
        f"--offline_ratio {r}: {int(b * g * r)} offline + {int(b * g * (1 - r))} online interleaved, "
        f"sliced into {g} minibatches of {b // 2} + {b // 2}",
        "same" if r == 0.5 else "NOT matched (their interleave needs 0.5)",
    )
    row(
        "replay capacity",
        f"buffer_size {ours['buffer_size']:,} (never full)",
        f"max_steps {loop['replay_capacity']:,} (never full)",
        "same in effect",
    )
    row("n-step returns", ours["n_steps"], "1 (none)", "same" if ours["n_steps"] == 1 else "NOT matched")
    row("train_freq", ours["train_freq"], "one update per env step", "same" if ours["train_freq"] == 1 else "NOT matched")
    row(
        "budget (env steps)",
        f"{task_cfg['steps']:,}",
        f"{loop['max_steps']:,} (their loop runs max_steps + 1)",
        "protocol (ours)",
    )
    row(
        "evaluation",
        f"every {task_cfg['eval_every']:,} steps and at 0, {config['eval_episodes']} episodes, reset seeds {EVAL_SEED}+i",
        "every 5,000 (D4RL) / 10,000 (robomimic) steps, 100 episodes, eval env seed + 42",
        "protocol (ours)",
    )
    row("success", "info['is_success'], else termination", "script logs the return", "protocol (ours)")
    row(
        "demonstrations",
        f"{task_cfg['demos']} scripted episodes (evidence.py, reset seeds 1000+)",
        "the same, read from an .npz",
        "same",
    )
    row("demo action clip", "none (in bounds)", f"+-{DEMO_ACTION_CLIP} (their dataset loaders)", "theirs applied")
    row("offline sampling seed", "the run's seed", "unseeded in their scripts; the driver seeds it", "protocol (ours)")
    row("masks", "terminated -> 0, truncated bootstraps", "done and no 'TimeLimit.truncated' -> 0", "same")
    row(
        "env action",
        "clip to bounds, buffer keeps the raw action",
        "RescaleAction(-1, 1) + ClipAction, buffer keeps the raw action",
        "same",
    )
    row("observations", "float32 tensors", "SinglePrecision (float32)", "same")
    row("discount", ours["gamma"], f"discount={ours['gamma']}")
    row("critic target EMA", f"tau {ours['tau']} after every critic step", f"tau={ours['tau']} after every critic step")
    row(
        "critic ensemble",
        f"n_critics {policy['n_critics']}, LayerNorm",
        f"num_qs={policy['n_critics']}, critic_layer_norm=True",
    )
    row("subset in the min", f"num_min_qs {ours['num_min_qs']}", f"num_min_qs={ours['num_min_qs']}")
    row("critic / actor hidden sizes", f"net_arch {net_arch}", f"hidden_dims={tuple(net_arch)}")
    row("learning rates", f"{lr} (all networks)", f"actor_lr={lr}, critic_lr={lr}, temp_lr={lr}")
    row("critic optimiser", "Adam, no weight decay", "optax.adam (critic_weight_decay=None)")
    row("critic dropout", "none", "critic_dropout_rate=None")
    row(
        "temperature",
        f"ent_coef {ours['ent_coef']!r}",
        f"init_temperature={init_temp}" if init_temp else "always learned",
        "same" if init_temp else "NOT matched (theirs always learns it)",
    )
    row("temperature loss", "alpha * (H - target), Adam", "temp * (entropy - target_entropy), optax.adam")
    precision = ours.get("precision", "fp32")
    row("precision", precision, "float32", "same" if precision == "fp32" else "NOT matched (theirs float32)")

    if algo == "expo":
        beta, n, k = ours["edit_beta"], ours["n_base_samples"], ours["n_edit_samples"]
        width = policy["denoiser_width"]
        widths = dict(denoiser_width=width, cond_widths=(width, width)) if match_widths else {}
        row(
            "target entropy",
            "-d/2" if target_entropy is None else target_entropy,
            f"target_entropy={target_entropy} (-d/2 = {-action_dim / 2})",
        )
        row("adjust_target_entropy", ours["adjust_target_entropy"], f"adjust_target_entropy={ours['adjust_target_entropy']}")
        row(
            "bound on log alpha",
            f"max_log_ent_coef {ours['max_log_ent_coef']}",
            "none",
            "NOT matched (ours only; inactive while |log alpha| < bound)",
        )
        row("entropy scale in the edit loss", "1", "entropy_scale=1.0")
        row("backup entropy", "none (EXPO's backup has none)", "backup_entropy=False (ignored by EXPOLearner)")
        row("N base samples", n, f"N={n}")
        row("K edited samples", k, f"n_edit_samples={k}")
        row("edit scale beta", beta, f"edit_action_scale={beta}")
        row("OTF backup", ours["otf_backup"], "always (sample_batch_actions)", "same" if ours["otf_backup"] else "NOT matched")
        row(
            "edited actions clipped in the agent",
            ours["clip_edited_actions"],
            "never",
            "same" if not ours["clip_edited_actions"] else "NOT matched",
        )
        row("diffusion steps T", policy["diffusion_steps"], f"T={policy['diffusion_steps']}")
        row(
            "base policy",
            policy["base"],
            "DDPM, beta_schedule='vp', clip_sampler=True, ddpm_temperature=1.0, M=0",
            "same" if policy["base"] == "ddpm" else "NOT matched",
        )
        row("denoiser residual blocks", policy["denoiser_blocks"], f"actor_num_blocks={policy['denoiser_blocks']}")
        row(
            "denoiser width",
            width,
            f"hidden_dim={width} bound on DiffusionMLPResNet (create() hard-codes 256)"
            if match_widths
            else "256 (hard-coded)",
            ("same (injected)" if match_widths else "NOT matched (hard-coded in their create())") if width != 256 else "same",
        )
        row("time features", TIME_FEATURES, "time_dim=128 (learnable Fourier)")
        row(
            "time-conditioning MLP",
            f"({width}, {width})",
            f"hidden_dims=({width}, {width}) bound on DiffusionMLP (create(): 2 * time_dim = 256)"
            if match_widths
            else "(256, 256)",
            ("same (injected)" if match_widths else "NOT matched (2 * time_dim in their create())")
            if width != 256
            else "same",
        )
        row("denoiser LayerNorm / dropout", "pre-LN blocks, eps 1e-6, no dropout", "actor_layer_norm=True, d_actor_drop=0.0")
        row("edit-policy dropout", policy["edit_dropout"], f"actor_drop={policy['edit_dropout']}")
        row(
            "base optimiser",
            f"AdamW, weight decay {policy['base_weight_decay']}",
            "optax.adamw (weight_decay 1e-4, its default)",
            "same" if policy["base_weight_decay"] == 1e-4 else "NOT matched",
        )
        decay = ours["lr_decay_steps"]
        row(
            "base / edit lr schedule",
            f"cosine to 0 over lr_decay_steps {decay:,}" if decay else "constant",
            f"decay_steps={decay if decay else None}",
        )
        row("base EMA (acting copy)", f"ema_tau {ours['ema_tau']}", f"actor_tau={ours['ema_tau']}")
        row("evaluation actions", "sampled (deterministic=False)", "eval_actions: sampled, argmax over N + K")
        if action_dim == 1:
            row(
                "1-d action space",
                "supported",
                "sample_batch_actions squeezes [B, 1] to [B]: update() fails; the driver's subclass reshapes to [B, 1]",
                "theirs fixed (shape only)",
            )
        row(
            "randomness",
            "independent draws everywhere",
            "sample_batch_actions reuses the agent key (expo-reference 8.14)",
            "NOT matched (their code)",
        )
        create = dict(
            actor_lr=lr,
            critic_lr=lr,
            temp_lr=lr,
            hidden_dims=tuple(net_arch),
            discount=ours["gamma"],
            tau=ours["tau"],
            num_qs=policy["n_critics"],
            num_min_qs=ours["num_min_qs"],
            critic_dropout_rate=None,
            critic_weight_decay=None,
            critic_layer_norm=True,
            target_entropy=target_entropy,
            entropy_scale=1.0,
            init_temperature=init_temp if init_temp else 1.0,
            backup_entropy=False,
            use_pnorm=False,
            adjust_target_entropy=ours["adjust_target_entropy"],
            use_critic_resnet=False,
            time_dim=TIME_FEATURES,
            actor_drop=policy["edit_dropout"],
            d_actor_drop=0.0,
            T=policy["diffusion_steps"],
            N=n,
            batch_split=1,
            M=0,
            n_edit_samples=k,
            edit_action_scale=beta,
            actor_layer_norm=True,
            clip_sampler=True,
            decay_steps=decay if decay else None,
            actor_tau=ours["ema_tau"],
            actor_dropout_rate=None,
            actor_num_blocks=policy["denoiser_blocks"],
            ddpm_temperature=1.0,
            beta_schedule="vp",
        )
    else:
        widths = {}
        row(
            "target entropy",
            "-d/2" if target_entropy is None else target_entropy,
            f"target_entropy={target_entropy} (-d/2 = {-action_dim / 2})",
        )
        row("backup entropy", ours["backup_entropy"], f"backup_entropy={ours['backup_entropy']}")
        row("actor", "tanh-Gaussian, log std in [-20, 2], ReLU", "TanhNormal, log std in [-20, 2], ReLU")
        row("actor init", "PyTorch default (SB3's SAC actor)", "xavier_uniform", "NOT matched (SB3's actor)")
        row("actor loss", "alpha log pi - mean of all critics", "temp * log_probs - mean of all critics")
        row("evaluation actions", "mean action (deterministic=True)", "eval_actions: the mode, tanh(mean)")
        create = dict(
            actor_lr=lr,
            critic_lr=lr,
            temp_lr=lr,
            hidden_dims=tuple(net_arch),
            discount=ours["gamma"],
            tau=ours["tau"],
            num_qs=policy["n_critics"],
            num_min_qs=ours["num_min_qs"],
            critic_dropout_rate=None,
            critic_weight_decay=None,
            critic_layer_norm=bool(policy["critic_layer_norm"]),
            target_entropy=target_entropy,
            init_temperature=init_temp if init_temp else 1.0,
            backup_entropy=bool(ours["backup_entropy"]),
            use_pnorm=False,
            use_critic_resnet=False,
        )
    row("random numbers", "PyTorch generators", "JAX PRNG keys", "NOT matched (same seed, different draws)")
    return Translation(algo, create, loop, widths, rows, unmatched)

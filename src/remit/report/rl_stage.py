"""Did the RL stage work? The held-out reward of each post-training stage, SFT -> DPO -> GRPO.

For every post-training chain of the run (``<label>+post``) the stages' manifests hold the greedy
held-out reward before and after the stage, prompt by prompt (``eval.pre_values``,
``eval.post_values``). The section reports the SFT model's reward, the final RL model's reward and
the gain with a paired bootstrap CI over prompts (the same prompts, in the same order), plus the
share of GRPO groups without reward spread and the number of DPO pairs: the numbers that say
whether the "RL model" differs from the SFT model at all.
"""

from __future__ import annotations

from remit.eval import stats
from remit.manifest import read_manifest
from remit.report.sections import NA, _md_table, verdict_section


def chain_numbers(stages: dict, *, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict | None:
    """Numbers of one post-training chain from its ``stages`` summary (the chain manifest's ``stages``)."""
    evals = {}
    for name in ("sft", "dpo", "grpo"):
        st = stages.get(name) or {}
        m = read_manifest(st["out"]) if st.get("out") else None
        if m and m.get("eval"):
            evals[name] = m
    if "sft" not in evals:
        return None
    sft_vals = evals["sft"]["eval"].get("post_values")
    last = "grpo" if "grpo" in evals else ("dpo" if "dpo" in evals else "sft")
    rl_vals = evals[last]["eval"].get("post_values")
    out = {"sft": evals["sft"]["eval"]["post"], "rl": evals[last]["eval"]["post"], "rl_stage": last,
           "n": evals["sft"]["eval"].get("n")}
    for name in ("dpo", "grpo"):
        if name in evals:
            out[name] = evals[name]["eval"]["post"]
    if "grpo" in evals:
        out["grpo_zero_std"] = evals["grpo"].get("frac_reward_zero_std")
        g = evals["grpo"]["eval"]
        if g.get("pre_values") and g.get("post_values"):
            e, _ = stats.paired_bootstrap(g["pre_values"], g["post_values"], n_boot=n_boot, seed=seed,
                                          confidence=confidence)
            out["grpo_stage_gain"], out["grpo_stage_ci"] = e.mean, [e.lo, e.hi]
    if "dpo" in evals:
        out["dpo_pairs"] = (evals["dpo"].get("pairs") or {}).get("pairs")
        out["dpo_skipped"] = bool(evals["dpo"].get("skipped"))
    if sft_vals and rl_vals and len(sft_vals) == len(rl_vals):
        e, _ = stats.paired_bootstrap(sft_vals, rl_vals, n_boot=n_boot, seed=seed, confidence=confidence)
        d, lo, hi, p = e.mean, e.lo, e.hi, e.p
        out.update(gain=d, ci=[lo, hi], p=p)
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def rl_section(run, cfg, out):
    chains = {}
    for sid, st in run.stages.items():
        if st.get("kind") != "posttrain":
            continue
        m = read_manifest(st["path"]) or {}
        nums = chain_numbers(m.get("stages") or {}, n_boot=cfg.n_boot, seed=cfg.seed, confidence=cfg.confidence)
        if nums is not None:
            chains[st.get("label") or sid] = nums
    if not chains:
        return [("p", f"{NA}: no post-training stage with a held-out reward evaluation in this run.")], {}
    conf = int(round(100 * cfg.confidence))
    rows = []
    for label, c in chains.items():
        ci = c.get("ci")
        gain = "-" if ci is None else f"{100 * c['gain']:+.1f} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
        rows.append([label, c.get("n"), _pct(c["sft"]), _pct(c.get("dpo")), _pct(c.get("grpo")), gain,
                     _pct(c.get("grpo_zero_std")), "-" if c.get("dpo_pairs") is None else c["dpo_pairs"]])
    blocks = []
    first = chains.get("vanilla+post") or next(iter(chains.values()))
    if first.get("ci") is not None:
        lo, hi = first["ci"]
        sig = lo > 0 or hi < 0
        direction = "raised" if first["gain"] > 0 else "lowered"
        sentence = (f"The RL stage {direction} the held-out reward from {_pct(first['sft'])} (SFT model) to "
                    f"{_pct(first['rl'])} ({first['rl_stage'].upper()} model): {100 * first['gain']:+.1f} points, "
                    f"{conf}% CI [{100 * lo:+.1f}, {100 * hi:+.1f}], "
                    + ("significant." if sig else "not significant: the RL model is not shown to differ from SFT."))
        blocks.append(("p", "**" + sentence + "**"))
    blocks.append(("md", _md_table(["model", "n prompts", "SFT", "after DPO", "after GRPO",
                                    f"RL - SFT (points, {conf}% CI)", "GRPO groups with no reward spread",
                                    "DPO pairs"], rows)))
    blocks.append(("p", "Greedy decoding, exact answer, the same held-out prompts for every model; the CI is a "
                        "paired bootstrap over prompts."))
    return blocks, chains


def headline_section(run, cfg, out):
    """The report's first section: the RL stage's reward rise, then ReMiT vs vanilla (with their CIs)."""
    rl_blocks, rl_numbers = rl_section(run, cfg, out)
    v_blocks, v_numbers = verdict_section(run, cfg, out)
    return [("h3", "The RL stage")] + rl_blocks + [("h3", "ReMiT vs vanilla")] + v_blocks, \
        {"rl_stage": rl_numbers, "verdict": v_numbers}

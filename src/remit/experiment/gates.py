"""Gates G1-G4 and the manipulation checks of an experiment, read from its seed folders (issue #22).

    gates: {sft_range: [20, 50], grpo_gain_min: 10, ...}   # in the experiment YAML; absent: no gates

``remit experiment`` (``analyze``) calls :func:`evaluate` after the contrasts and writes
``summary["gates"]`` (``{G1..G4: {value, pass, rule}}``) and ``summary["checks"]`` (per seed). Each seed's
flywheel folder is read through the run-folder reader (:func:`remit.report.build.load_run`) and the stages'
own files:

- G1 (the RL stage works) from the post-training chain of the reference R0 (vanilla's post-trained model):
  each stage's greedy held-out reward per prompt (``<chain>/<stage>/manifest.json``, ``eval.post_values``,
  read by :func:`remit.report.rl_stage.chain_numbers`: SFT, GRPO, the paired bootstrap CI of the gain) and
  GRPO's share of groups without reward spread (TRL's ``frac_reward_zero_std``);
- G2 (the base matters after post-training) from the ``remit eval`` results of the primary metric: the
  half-budget arm against the full one after post-training, and the transmission slope (post-trained gaps on
  base gaps against ``full_arm``, through the origin, over every arm that has a ``+post`` model; a base value
  is the mean of ``<arm>`` and ``<arm>@chat`` when both arms have the chat evaluation);
- G3 (RL guidance differs from SFT guidance, and is not saturated) from the weights against R0 and against the
  SFT model S0 on the mid-training text (:func:`remit.report.guidance.compare_references`, the training code's
  weights), scored by ``g3_model``: ``vanilla`` (default), the end of vanilla mid-training, whose weights are
  the ones ReMiT applies for nearly all of its run (its live model leaves P within a few dozen steps; the
  calibration measured the clip share: 21% scored from P, 9% from the end, 8-10% in the ReMiT run's own log
  after step 20), or ``pre_annealing`` (P, step 0 only; up to calibration attempt J the gate's model). Both
  are reported (``corr_from_p``, ``diff_share_from_p``). Plus the ReMiT arm's ``w_frac_hi + w_frac_lo``
  (its ``metrics.jsonl``);
- G4 (generations fit) from GRPO's ``completions/clipped_ratio`` of every post-training chain. The held-out
  greedy generations do not record whether they hit the cap, so G4 covers the training completions only.

The manipulation checks add KL(R0 || P), KL(S0 || P) and KL(R0 || S0) on the mid-training text
(:func:`remit.report.shift.compute_shift`, nats/token) and ``p_worked`` (the ``world_probe`` evaluation: the
probability that a model starts a chat answer with the worked steps) of every chat-format evaluation.
What loads models (G3 and the KLs) is cached in ``seed<s>/checks.json``, keyed by the inputs' paths, sizes
and mtimes, so ``analyze_only=true`` reruns are instant. A gate whose input is missing in some seed has
``"pass": null`` and says why; a present input that fails makes it ``false``. A gate passes when its rule
holds in every seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_range
from remit.errors import ConfigError, RemitError
from remit.manifest import read_manifest
from remit.report.build import Run, _abs, load_run
from remit.utils.io import atomic_write_json


@dataclass
class GatesConfig:
    """The thresholds of the gates (defaults: issue #22's); accuracies in points (0-100)."""

    sft_range: list[float] = field(default_factory=lambda: [20.0, 50.0])  # G1: SFT held-out accuracy
    grpo_gain_min: float = 10.0     # G1: SFT -> GRPO gain, with its 95% paired-bootstrap CI above 0
    rl_range: list[float] = field(default_factory=lambda: [40.0, 80.0])   # G1: the RL model R0
    zero_spread_max: float = 0.5    # G1: share of GRPO groups without reward spread (below)
    half_arm: str = "vanilla-half"  # G2: the half-budget arm (post-trained: <half_arm>+post)
    full_arm: str = "vanilla"
    budget_gap_min: float = 3.0     # G2: full+post minus half+post, points
    slope_min: float = 0.3          # G2: the transmission slope through the origin
    base_arms_chat: bool = True     # G2: base value = mean of <arm> and <arm>@chat when both arms have it
    corr_max: float = 0.95          # G3: corr(w_RL, w_SFT) on mid-training text
    diff_share_min: float = 0.10    # G3: share of task tokens with |w_RL - w_SFT| > diff_threshold
    diff_threshold: float = 0.05
    saturation_max: float = 0.25    # G3: the ReMiT arm's share of weights at either clip
    g3_model: str = "vanilla"       # G3: weights scored against this role's model (vanilla | pre_annealing)
    remit_arm: str = "remit-r1"
    length_cap_max: float = 0.01    # G4: share of completions that hit the length cap (below)
    texts: int = 32                 # mid-training documents scored for G3 and the KLs
    max_length: int = 256
    n_boot: int = 2000
    confidence: float = 0.95

    def validate(self) -> None:
        for key in ("sft_range", "rl_range"):
            r = getattr(self, key)
            if len(r) != 2 or not 0 <= r[0] <= r[1] <= 100:
                raise ConfigError(f"{key}={r}: give [low, high] in points, 0 <= low <= high <= 100")
        if self.half_arm == self.full_arm:
            raise ConfigError(f"half_arm = full_arm = {self.full_arm!r}: G2 compares two different arms")
        for key in ("zero_spread_max", "corr_max", "diff_share_min", "saturation_max", "length_cap_max"):
            check_range(key, getattr(self, key), 0.0, 1.0)
        check_range("diff_threshold", self.diff_threshold, 0.0)
        if self.g3_model not in ("vanilla", "pre_annealing"):
            raise ConfigError(f"g3_model={self.g3_model!r}: give vanilla (the end of vanilla mid-training) or "
                              "pre_annealing (the model P)")
        check_range("texts", self.texts, 1)
        check_range("max_length", self.max_length, 2)
        check_range("n_boot", self.n_boot, 100)
        check_range("confidence", self.confidence, 0.0, 1.0, lo_open=True, hi_open=True)


# ---- the rules: pure functions of per-seed numbers ({seed: {...} or {"missing": reason}}) ----------------

def _verdict(conditions: list[bool | None]) -> bool | None:
    """False when any condition fails, None when one could not be evaluated, else True."""
    if any(c is False for c in conditions):
        return False
    return None if any(c is None for c in conditions) else True


def _gate(per_seed: dict[int, dict], rule: str, test) -> dict[str, Any]:
    """``test(values) -> [bool | None, ...]`` per seed; a seed with ``missing`` is at best not evaluated."""
    missing, seed_pass = {}, {}
    for s, v in per_seed.items():
        c = test(v)  # a value that is not there tests as None; one that is there can still fail
        if "missing" in v:
            missing[str(s)] = v["missing"]
            c.append(None)
        seed_pass[str(s)] = _verdict(c)
    out = {"value": {str(s): v for s, v in per_seed.items()},
           "pass": _verdict(list(seed_pass.values())) if per_seed else None, "per_seed_pass": seed_pass, "rule": rule}
    if missing:
        out["reason"] = "; ".join(f"seed {s}: {r}" for s, r in missing.items())
    elif not per_seed:
        out["reason"] = "no seed"
    return out


def _within(x: float | None, lo: float, hi: float) -> bool | None:
    return None if x is None or math.isnan(x) else lo <= x <= hi


def _at_least(x: float | None, lo: float) -> bool | None:
    return None if x is None or math.isnan(x) else x >= lo


def _below(x: float | None, hi: float, *, strict: bool = False) -> bool | None:
    return None if x is None or math.isnan(x) else (x < hi if strict else x <= hi)


def gate_g1(per_seed: dict[int, dict], g: GatesConfig) -> dict[str, Any]:
    """``{sft, rl, gain, gain_ci}`` in points and ``zero_spread`` (a share) per seed."""
    rule = (f"SFT in [{g.sft_range[0]:g}, {g.sft_range[1]:g}]; SFT -> GRPO gain >= {g.grpo_gain_min:g} points with "
            f"its {int(100 * g.confidence)}% paired-bootstrap CI above 0; RL model in [{g.rl_range[0]:g}, "
            f"{g.rl_range[1]:g}]; GRPO groups without reward spread < {g.zero_spread_max:g}; in every seed")
    return _gate(per_seed, rule, lambda v: [
        _within(v.get("sft"), *g.sft_range), _at_least(v.get("gain"), g.grpo_gain_min),
        None if not v.get("gain_ci") else v["gain_ci"][0] > 0, _within(v.get("rl"), *g.rl_range),
        _below(v.get("zero_spread"), g.zero_spread_max, strict=True)])


def slope_through_origin(x: list[float], y: list[float]) -> float:
    """Least squares of y = b x without intercept: b = sum(x y) / sum(x^2); nan without a non-zero x."""
    sxx = sum(a * a for a in x)
    return sum(a * b for a, b in zip(x, y)) / sxx if sxx > 0 else float("nan")


def _base_gap(arm: dict[str, float], full: dict[str, float]) -> float | None:
    """Mean over the prompt formats both arms were evaluated in of (arm - full); None without a shared one."""
    shared = [f for f in arm if f in full]
    return sum(arm[f] - full[f] for f in shared) / len(shared) if shared else None


def g2_numbers(base: dict[str, float | dict[str, float]], post: dict[str, float], g: GatesConfig) -> dict[str, Any]:
    """The budget gap and the transmission slope of one seed from the arms' base values (points; a number, or
    ``{format: value}`` whose shared formats are averaged) and post-trained values (``post[arm]``: the value of
    ``<arm>+post``)."""
    out: dict[str, Any] = {"base": base, "post": post}
    if g.full_arm not in post or g.half_arm not in post:
        out["missing"] = f"no post-trained evaluation of {g.full_arm!r} and {g.half_arm!r} ({g.full_arm}+post, " \
                         f"{g.half_arm}+post); post-trained arms: {sorted(post) or 'none'}"
        return out
    out["budget_gap"] = post[g.full_arm] - post[g.half_arm]
    fmt = {a: v if isinstance(v, dict) else {"plain": v} for a, v in base.items()}
    gaps = {a: _base_gap(fmt[a], fmt[g.full_arm]) for a in post if a != g.full_arm and a in fmt and g.full_arm in fmt}
    out["base_gaps"] = {a: x for a, x in gaps.items() if x is not None}
    out["post_gaps"] = {a: post[a] - post[g.full_arm] for a in out["base_gaps"]}
    arms = list(out["base_gaps"])
    out["slope"] = slope_through_origin([out["base_gaps"][a] for a in arms], [out["post_gaps"][a] for a in arms])
    if math.isnan(out["slope"]):
        out["slope_note"] = f"no arm with a +post model differs from {g.full_arm!r} on the base"
    return out


def gate_g2(per_seed: dict[int, dict], g: GatesConfig) -> dict[str, Any]:
    rule = (f"{g.full_arm}+post - {g.half_arm}+post >= {g.budget_gap_min:g} points; transmission slope (post-"
            f"trained gaps on base gaps against {g.full_arm}, through the origin) >= {g.slope_min:g}; in every seed")
    return _gate(per_seed, rule, lambda v: [_at_least(v.get("budget_gap"), g.budget_gap_min),
                                            _at_least(v.get("slope"), g.slope_min)])


def gate_g3(per_seed: dict[int, dict], g: GatesConfig) -> dict[str, Any]:
    """``corr`` (of the weights), ``diff_share`` (task tokens) and ``saturation`` per seed."""
    rule = (f"on mid-training text, weights scored from {g.g3_model}: corr(w_RL, w_SFT) <= {g.corr_max:g}; share of "
            f"task tokens with |w_RL - w_SFT| > {g.diff_threshold:g} >= {g.diff_share_min:g}; {g.remit_arm}'s share of weights at either clip <= {g.saturation_max:g}; "
            f"in every seed")
    return _gate(per_seed, rule, lambda v: [_below(v.get("corr"), g.corr_max),
                                            _at_least(v.get("diff_share"), g.diff_share_min),
                                            _below(v.get("saturation"), g.saturation_max)])


def gate_g4(per_seed: dict[int, dict], g: GatesConfig) -> dict[str, Any]:
    """``clipped`` ({chain: share of GRPO completions at the length cap}) and its ``max`` per seed."""
    rule = f"share of GRPO completions that hit the length cap < {g.length_cap_max:g} in every chain and seed"
    return _gate(per_seed, rule, lambda v: [_below(v.get("max"), g.length_cap_max, strict=True)])


# ---- reading one seed ----------------------------------------------------------------------------------

def _chains(run: Run) -> dict[str, dict]:
    """{post-trained label: the chain manifest's ``stages``, each stage's ``out`` resolved as the run folder's
    paths (a flywheel writes them relative to its working directory)."""
    out = {}
    for sid, st in run.stages.items():
        if st.get("kind") == "posttrain":
            stages = (read_manifest(st["path"]) or {}).get("stages") or {}
            out[st.get("label") or sid] = {k: {**v, **({"out": str(_abs(run.root, v["out"]))} if v.get("out") else {})}
                                           for k, v in stages.items()}
    return out


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _mean_of(records: list[dict], key: str) -> float | None:
    vals = [float(r[key]) for r in records if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def g1_values(run: Run, g: GatesConfig) -> dict[str, Any]:
    from remit.report.rl_stage import chain_numbers

    label = run.roles.get("rl") or f"{g.full_arm}+post"
    chain = _chains(run).get(label)
    if chain is None:
        return {"missing": f"no post-training chain {label!r} (the reference R0) in {run.root}"}
    if "grpo" not in chain:
        return {"missing": f"the chain {label!r} has no GRPO stage (stages: {', '.join(chain) or 'none'})"}
    c = chain_numbers(chain, n_boot=g.n_boot, confidence=g.confidence)
    if c is None or c.get("rl_stage") != "grpo" or "gain" not in c:
        return {"missing": f"the chain {label!r} has no paired held-out evaluation of its SFT and GRPO stages"}
    return {"chain": label, "n": c.get("n"), "sft": 100 * c["sft"], "rl": 100 * c["rl"], "gain": 100 * c["gain"],
            "gain_ci": [100 * c["ci"][0], 100 * c["ci"][1]], "zero_spread": c.get("grpo_zero_std")}


def _metric(path: Path | None, metric: str) -> float | None:
    from remit.eval.results import load_results

    if path is None:
        return None
    suite, task, name = metric.split("/")
    cell = (load_results(path)["tasks"].get(task) or {}).get(name)
    return None if cell is None else float(cell["value"])


def g2_values(run: Run, g: GatesConfig, metric: str) -> dict[str, Any]:
    from remit.report.tables import scale

    suite, name = metric.split("/")[0], metric.split("/")[2]
    arms = {a[:-5] for a in run.evals if a.endswith("+post")}
    needed = {f"{a}{x}" for a in arms for x in ("", "+post", "@chat")}  # what G2 reads, nothing else
    vals = {label: _metric(by.get(suite), metric) for label, by in run.evals.items() if label in needed}
    vals = {k: v for k, v in vals.items() if v is not None}
    k = scale(name, list(vals.values()))  # accuracies in points, as the contrasts
    post = {a[:-5]: k * v for a, v in vals.items() if a.endswith("+post")}
    base = {}
    for a in post:
        formats = {"plain": vals.get(a), **({"chat": vals.get(f"{a}@chat")} if g.base_arms_chat else {})}
        if formats := {f: k * v for f, v in formats.items() if v is not None}:
            base[a] = formats
    return g2_numbers(base, post, g)


def _midtrain(run: Run, arm: str) -> dict | None:
    return next((s for s in run.stages.values() if s.get("kind") == "midtrain" and s.get("label") == arm), None)


def saturation(run: Run, arm: str) -> float | str:
    """Mean over the arm's logged mid-training steps of ``w_frac_hi + w_frac_lo``; a string says why not."""
    st = _midtrain(run, arm)
    if st is None:
        return f"no mid-training arm {arm!r}"
    rows = [r for r in _jsonl(Path(st["path"]) / "metrics.jsonl") if "w_frac_hi" in r]
    if not rows:
        return f"{st['path']}/metrics.jsonl has no w_frac_hi (is {arm!r} a ReMiT arm?)"
    return sum(float(r["w_frac_hi"]) + float(r.get("w_frac_lo") or 0.0) for r in rows) / len(rows)


def g3_values(m: dict[str, Any], run: Run, g: GatesConfig) -> dict[str, Any]:
    """G3's numbers from :func:`model_checks`' ``m`` and the ReMiT arm's clip shares."""
    out = {k: m[k] for k in ("corr", "diff_share", "g3_model", "corr_from_p", "diff_share_from_p") if k in m}
    reasons = [m["missing"]] if "missing" in m else []
    sat = saturation(run, g.remit_arm)
    if isinstance(sat, str):
        reasons.append(sat)
    else:
        out["saturation"] = sat
    return out | ({"missing": "; ".join(reasons)} if reasons else {})


def g4_values(run: Run) -> dict[str, Any]:
    clipped = {}
    for label, chain in _chains(run).items():
        out = (chain.get("grpo") or {}).get("out")
        v = _mean_of(_jsonl(Path(out) / "metrics.jsonl"), "completions/clipped_ratio") if out else None
        if v is not None:
            clipped[label] = v
    if not clipped:
        return {"missing": "no GRPO stage logged completions/clipped_ratio"}
    return {"clipped": clipped, "max": max(clipped.values()),
            "heldout": "not recorded (the held-out greedy evaluations keep no lengths)"}


def p_worked(run: Run) -> dict[str, Any]:
    """{eval label: p_worked} of every chat-format ``world`` evaluation with the style probe (``missing``: the
    evaluations not there yet)."""
    from remit.eval.results import load_results

    out: dict[str, Any] = {}
    gone = []
    for label, by in run.evals.items():
        if "world" not in by:
            continue
        if not (Path(by["world"]) / "results.json").is_file():
            gone.append(label)
            continue
        res = load_results(by["world"])
        cell = (res["tasks"].get("world") or {}).get("p_worked")
        if cell is not None and (res.get("config") or {}).get("chat"):
            out[label] = float(cell["value"])
    return out | ({"missing": f"no world evaluation of {', '.join(gone)} yet"} if gone else {})


def _stamp(paths: list[Path]) -> list:
    """(path, total size, newest mtime) of each input: the cache key of what loads models."""
    out = []
    for p in paths:
        files = [q for q in p.iterdir() if q.is_file()] if p.is_dir() else ([p] if p.exists() else [])
        out.append([str(p), sum(q.stat().st_size for q in files), max((q.stat().st_mtime_ns for q in files), default=0)])
    return out


def model_checks(run: Run, g: GatesConfig) -> dict[str, Any]:
    """corr(w_RL, w_SFT), the diff share on task tokens and the KLs, from P, R0, S0 and the mid-training text;
    cached in ``<seed>/checks.json``."""
    from remit.report.sections import remit_epsilon

    need = {"pre-annealing model P": run.model("pre_annealing"), "RL reference R0": run.model("reference"),
            "SFT model S0": run.model("sft"), f"G3's model ({g.g3_model})": run.model(g.g3_model)}
    gone = [k for k, v in need.items() if v is None]
    src = run.data.get("midtrain")
    if gone or src is None:
        return {"missing": f"needs {', '.join(gone + ([] if src else ['the mid-training text']))} (roles: {run.roles})"}
    (_, p), (r_label, r), (s_label, s), (m_label, m) = need.values()
    # the ReMiT arm's own weights (its epsilon and temperature); without the arm, the report's default
    st = _midtrain(run, g.remit_arm)
    method = (((read_manifest(st["path"]) or {}).get("config") or {}).get("method") or {}) if st else {}
    eps, temp = float(method.get("epsilon") or remit_epsilon(run)), float(method.get("temperature") or 1.0)
    key = {"inputs": _stamp([p, r, s, m, Path(src)]), "epsilon": eps, "temperature": temp,
           **{k: getattr(g, k) for k in ("texts", "max_length", "diff_threshold", "g3_model")}}
    cache = run.root / "checks.json"
    if cache.is_file():
        prev = json.loads(cache.read_text(encoding="utf-8"))
        if prev.get("key") == key:
            return prev["values"]
    values = _score(p, r, s, m, Path(src), eps, temp, g) | {"reference": r_label, "sft": s_label, "g3_model": m_label,
                                                            "epsilon": eps, "temperature": temp}
    atomic_write_json(cache, {"key": key, "values": values})
    return values


def _weights(model, rl, sft, tok, texts: list[str], eps: float, temp: float, g: GatesConfig) -> dict[str, float]:
    """corr(w_RL, w_SFT), the share of task tokens whose weights differ by > ``diff_threshold`` (and of all tokens)."""
    from remit.report.guidance import compare_references

    nums, tokens = compare_references(model, rl, sft, tok, texts, epsilon=eps, temperature=temp,
                                        max_length=g.max_length)
    task = [i for i, k in enumerate(tokens["kinds"]) if k != "plain text"]
    diff = sum(abs(tokens["w_rl"][i] - tokens["w_sft"][i]) > g.diff_threshold for i in task)
    return {"tokens": nums["n_tokens"], "task_tokens": len(task), "corr": nums["corr_weight"],
            "corr_delta": nums["corr_delta"], "diff_share": diff / len(task) if task else float("nan"),
            "diff_share_all": nums["share_weight_diff_gt"]}


def _score(p: Path, r: Path, s: Path, m: Path, src: Path, eps: float, temp: float, g: GatesConfig) -> dict[str, Any]:
    from remit.report.lm import load_pair, read_text_file
    from remit.report.shift import compute_shift

    texts = read_text_file(src, limit=g.texts)[:g.texts]
    rl, tok = load_pair(r)
    sft, _ = load_pair(s)
    model, _ = load_pair(m)
    out = _weights(model, rl, sft, tok, texts, eps, temp, g)
    if Path(m).resolve() != Path(p).resolve():
        model, _ = load_pair(p)
    at_p = out if Path(m).resolve() == Path(p).resolve() else _weights(model, rl, sft, tok, texts, eps, temp, g)
    del model, rl, sft
    shift = compute_shift([str(p), str(s), str(r)], texts, labels=["P", "S0", "R0"], target="R0", origin="P",
                          max_length=g.max_length)
    rows = {row["label"]: row for row in shift["models"]}
    return {"texts": len(texts), **out, "corr_from_p": at_p["corr"], "diff_share_from_p": at_p["diff_share"],
            "kl_ref_p": rows["R0"]["kl_from_origin"], "kl_sft_p": rows["S0"]["kl_from_origin"],
            "kl_ref_sft": rows["S0"]["kl_to_target"]}


def _safe(fn, *args) -> dict[str, Any]:
    """A failing reader is a missing input (with its reason), never a crashed analysis (as a report section)."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - any reader's failure is reported in the gate, the rest goes on
        return {"missing": str(e) if isinstance(e, RemitError) else f"{type(e).__name__}: {e}"}


def evaluate(g: GatesConfig, root: Path, seeds: list[int], metric: str) -> tuple[dict, dict]:
    """(gates, checks) of the experiment folder ``root`` (``seed<s>/`` per seed)."""
    per: dict[str, dict[int, dict]] = {k: {} for k in ("G1", "G2", "G3", "G4")}
    checks: dict[str, dict] = {}
    for s in seeds:
        if not (root / f"seed{s}").is_dir():
            for k in per:
                per[k][s] = {"missing": f"{root / f'seed{s}'} does not exist"}
            continue
        run = load_run(root / f"seed{s}")
        per["G1"][s] = _safe(g1_values, run, g)
        per["G2"][s] = _safe(g2_values, run, g, metric)
        m = _safe(model_checks, run, g)
        per["G3"][s] = g3 = _safe(g3_values, m, run, g)
        per["G4"][s] = _safe(g4_values, run)
        g1 = per["G1"][s]
        checks[str(s)] = {
            "grpo_gain": None if "missing" in g1 else {k: g1[k] for k in ("sft", "rl", "gain", "gain_ci")},
            "corr_w": m.get("corr"), "diff_share": m.get("diff_share"), "g3_model": m.get("g3_model"),
            "corr_w_from_p": m.get("corr_from_p"), "diff_share_from_p": m.get("diff_share_from_p"),
            "saturation": g3.get("saturation"),
            "kl_ref_p": m.get("kl_ref_p"), "kl_sft_p": m.get("kl_sft_p"), "kl_ref_sft": m.get("kl_ref_sft"),
            "p_worked": _safe(p_worked, run)}
        if "missing" in m:
            checks[str(s)]["missing"] = m["missing"]
    gates = {"G1": gate_g1(per["G1"], g), "G2": gate_g2(per["G2"], g), "G3": gate_g3(per["G3"], g),
             "G4": gate_g4(per["G4"], g)}
    return gates, checks


# ---- results.md ----------------------------------------------------------------------------------------

def _n(x, fmt: str = ".2f") -> str:
    return "-" if not isinstance(x, (int, float)) or math.isnan(x) else format(x, fmt)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a rule's |w_RL - w_SFT| inside a markdown table


def _pass(p: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "n/a"}[p]


def _gate_numbers(name: str, v: dict) -> str:
    if name == "G1":
        ci = v.get("gain_ci") or [None, None]
        return (f"SFT {_n(v.get('sft'), '.1f')}, GRPO gain {_n(v.get('gain'), '+.1f')} [{_n(ci[0], '+.1f')}, "
                f"{_n(ci[1], '+.1f')}], RL {_n(v.get('rl'), '.1f')}, no spread {_n(v.get('zero_spread'), '.2f')}")
    if name == "G2":
        return f"budget gap {_n(v.get('budget_gap'), '+.1f')}, slope {_n(v.get('slope'), '.2f')}"
    if name == "G3":
        return (f"scored from {v.get('g3_model', '-')}: corr {_n(v.get('corr'), '.3f')}, diff share "
                f"{_n(v.get('diff_share'), '.3f')}; from P: {_n(v.get('corr_from_p'), '.3f')}, "
                f"{_n(v.get('diff_share_from_p'), '.3f')}; saturation {_n(v.get('saturation'), '.3f')}")
    return f"capped {_n(v.get('max'), '.4f')} (max over chains)"


def to_markdown(s: dict) -> list[str]:
    """The "Gates" and "Manipulation checks" tables of results.md (empty without gates)."""
    gates, checks = s.get("gates"), s.get("checks")
    if not gates:
        return []
    lines = ["", "## Gates", "", "| gate | seed | numbers | pass | rule |", "|---|---|---|---|---|"]
    for name in ("G1", "G2", "G3", "G4"):
        gt = gates[name]
        each = gt.get("per_seed_pass") or {}
        for seed, v in gt["value"].items():
            why = f" ({v['missing']})" if "missing" in v else ""
            lines.append(f"| {name} | {seed} | {_cell(_gate_numbers(name, v) + why)} | {_pass(each.get(seed))} | "
                         f"{_cell(gt['rule'])} |")
        n_ok = sum(p is True for p in each.values())
        lines.append(f"| **{name}** | all | {n_ok} of {len(gt['value'])} seeds pass | **{_pass(gt['pass'])}** | "
                     f"{_cell(gt['rule'])} |")
    lines += ["", "## Manipulation checks", "",
              "| seed | SFT -> GRPO gain (points, CI) | corr(w_RL, w_SFT) | diff share (task tokens) | saturation | "
              "KL(R0 \\|\\| P) | KL(S0 \\|\\| P) | KL(R0 \\|\\| S0) | p_worked (chat) |", "|---|---|---|---|---|---|---|---|---|"]
    for seed, c in (checks or {}).items():
        gg = c.get("grpo_gain") or {}
        ci = gg.get("gain_ci") or [None, None]
        pw = c.get("p_worked") or {}
        pws = "; ".join(f"{k} {v:.3f}" for k, v in pw.items() if isinstance(v, float)) or pw.get("missing", "-")
        lines.append(f"| {seed} | {_n(gg.get('gain'), '+.1f')} [{_n(ci[0], '+.1f')}, {_n(ci[1], '+.1f')}] | "
                     f"{_n(c.get('corr_w'), '.3f')} | {_n(c.get('diff_share'), '.3f')} | {_n(c.get('saturation'), '.3f')} | "
                     f"{_n(c.get('kl_ref_p'), '.4f')} | {_n(c.get('kl_sft_p'), '.4f')} | {_n(c.get('kl_ref_sft'), '.4f')} | {pws} |")
    return lines

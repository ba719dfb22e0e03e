"""The report's first section, "The loop, arrow by arrow": each arrow of the ReMiT flywheel in one run.

1. **RL learns**: the held-out reward of the SFT model and of the RL model (greedy, the same prompts), the
   gain with its paired bootstrap CI over prompts (:func:`remit.report.rl_stage.chain_numbers`).
2. **The reference carries it**: on the mid-training text, ReMiT's weights with the RL vs the SFT reference on
   the tokens where the two references' log-probs differ (what RL changed; :func:`remit.report.guidance.summarize`).
3. **ReMiT passes it into the base**: the probability that P, vanilla, ReMiT and the RL model start a chat answer
   with the worked steps (``p_worked`` of the style probe, teacher-forced; the flywheel's chat evaluations).
4. **The outcome**: ReMiT vs vanilla next to an A/A noise floor (``roles.vanilla_aa``: vanilla again with another
   data order), and the committed multi-seed verdict (``verdict_file``, the confirmatory experiment's
   ``summary.json``: its H1 and H2) or "not yet run".

Everything but the verdict describes this one run: its intervals resample held-out tasks (or tokens), not seeds.
``loop_section`` returns ``numbers["lines"]``, the short version that ``remit flywheel`` prints at its end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from remit.eval import stats
from remit.manifest import read_manifest
from remit.report import rl_stage, tables
from remit.report.sections import NA, _results, by_family

CONFIRMATORY_CONFIG = "configs/experiments/confirmatory.yaml"
PROBE = ("pre_annealing", "vanilla", "remit", "rl")  # the roles whose chat answers the probe scores
NAMES = {"pre_annealing": "P", "vanilla": "vanilla", "remit": "ReMiT", "rl": "the RL model"}


def _pts(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(lo: float, hi: float, k: float = 1.0, fmt: str = "+.1f") -> str:
    return f"[{k * lo:{fmt}}, {k * hi:{fmt}}]"


# ---------------------------------------------------------------- 1. RL learns
def rl_arrow(run, cfg) -> dict | None:
    """The numbers of the post-training chain that made the RL reference (the flywheel labels it <vanilla>+post)."""
    chains = {st.get("label") or sid: st for sid, st in run.stages.items() if st.get("kind") == "posttrain"}
    label = next((x for x in (run.roles.get("rl"), f"{run.roles.get('vanilla')}+post") if x in chains), None)
    if label is None:
        return None
    m = read_manifest(chains[label]["path"]) or {}
    return rl_stage.chain_numbers(m.get("stages") or {}, n_boot=cfg.n_boot, seed=cfg.seed, confidence=cfg.confidence)


def rl_sentence(c: dict | None, conf: int) -> str:
    if not c or c.get("ci") is None:
        return f"{NA}: no post-training chain of vanilla with per-prompt held-out rewards."
    lo, hi = c["ci"]
    verdict = "RL learns" if lo > 0 else ("RL made it worse" if hi < 0 else "RL is not shown to change it")
    return (f"{verdict}: the held-out reward goes from {_pts(c['sft'])} (SFT model) to {_pts(c['rl'])} "
            f"({c['rl_stage'].upper()} model), {100 * c['gain']:+.1f} points, {conf}% CI {_ci(lo, hi, 100)} "
            f"(paired bootstrap over {c.get('n')} held-out prompts).")


# ---------------------------------------------------------------- 2. the reference carries it
def reference_sentence(g: dict | None) -> str:
    if not g or not g.get("changed"):
        return f"{NA}: needs the pre-annealing model, the RL and SFT references and the mid-training text."
    ch = g["changed"]
    if not ch["n"]:
        return (f"The RL and SFT references differ by more than {ch['nats']:g} nats on none of the {g['n_tokens']} "
                f"mid-training tokens scored: RL changed nothing ReMiT could carry.")
    up, down = ch["up"], ch["down"]
    parts = []
    if up["n"]:
        parts.append(f"where RL raised the token's log-prob ({up['n']} tokens) the RL reference's weight is "
                     f"{up['w_rl']:.3f} vs {up['w_sft']:.3f} with the SFT reference ({up['w_rl'] - up['w_sft']:+.3f})")
    if down["n"]:
        parts.append(f"where RL lowered it ({down['n']} tokens) {down['w_rl']:.3f} vs {down['w_sft']:.3f} "
                     f"({down['w_rl'] - down['w_sft']:+.3f})")
    carried = (up["n"] == 0 or up["w_rl"] > up["w_sft"]) and (down["n"] == 0 or down["w_rl"] < down["w_sft"])
    head = "The reference carries it" if carried else "The reference does not carry it in the expected direction"
    return (f"{head}: on {ch['n']} of {g['n_tokens']} mid-training tokens ({100 * ch['share']:.1f}%) the RL and SFT "
            f"references' log-probs differ by more than {ch['nats']:g} nats (what RL changed); there, "
            + "; ".join(parts) + f". Over all tokens the two references' weights correlate {g['corr_weight']:.3f}.")


# ---------------------------------------------------------------- 3. the probe
def probe_numbers(run, cfg) -> dict:
    """p_worked (mean over held-out tasks) of P, vanilla and ReMiT asked as chats and of the RL model; ReMiT -
    vanilla with its paired bootstrap CI over tasks."""
    results = _results(run)
    out: dict = {"models": {}}
    values = {}
    for role in PROBE:
        label = run.roles.get(role)
        if not label:
            continue
        ask = label if role == "rl" else f"{label}@chat"
        pe = ((results.get(ask) or {}).get("per_example") or {}).get("world", {}).get("p_worked")
        if pe:
            values[role] = pe
            out["models"][role] = {"label": ask, "p_worked": sum(pe) / len(pe), "n": len(pe)}
    if "remit" in values and "vanilla" in values:
        e, _ = stats.paired_bootstrap(values["vanilla"], values["remit"], n_boot=cfg.n_boot, seed=cfg.seed,
                                      confidence=cfg.confidence)
        out["remit_minus_vanilla"] = {"delta": e.mean, "lo": e.lo, "hi": e.hi, "p": e.p}
    order = [r for r in PROBE if r in out["models"]]
    out["ordered"] = len(order) == len(PROBE) and all(
        out["models"][a]["p_worked"] <= out["models"][b]["p_worked"] for a, b in zip(order, order[1:]))
    return out


def probe_sentence(p: dict, conf: int) -> str:
    m = p["models"]
    if not m:
        return (f"{NA}: no style probe (p_worked) in the chat evaluations; the flywheel scores it with "
                f"chat_evals: [pre-annealing, vanilla, remit-r1] and style_probe: true.")
    levels = ", ".join(f"{NAMES[r]} {m[r]['p_worked']:.3f}" for r in PROBE if r in m)
    n = next(iter(m.values()))["n"]
    d = p.get("remit_minus_vanilla")
    passed = bool(d and d["lo"] > 0)
    head = ("ReMiT passes part of it into the base" if passed and p["ordered"] else
            "ReMiT moves the base towards it, out of order" if passed else
            "ReMiT is not shown to pass it into the base")
    text = (f"{head}: the probability that a chat answer starts with the worked steps (teacher-forced, mean over "
            f"{n} held-out tasks) is {levels}.")
    if d:
        sig = d["lo"] > 0 or d["hi"] < 0
        text += (f" ReMiT - vanilla = {d['delta']:+.3f}, {conf}% CI {_ci(d['lo'], d['hi'], fmt='+.3f')}"
                 f"{'' if sig else ', not significant'} (paired bootstrap over tasks).")
    if len(m) == len(PROBE):
        text += (" The order P <= vanilla <= ReMiT <= RL model holds." if p["ordered"] else
                 " The order P <= vanilla <= ReMiT <= RL model does not hold in this run.")
    return text


# ---------------------------------------------------------------- 4. the outcome
def _accuracy(results: dict, label: str | None) -> dict | None:
    return by_family(results[label]).get("accuracy") if label in results else None


def both_formats(plain: dict | None, chat: dict | None) -> dict | None:
    """The accuracy results of a base model scored as the mean of its two prompt formats (the Question/Answer page
    and the chat), example by example, on the tasks both evaluations hold (the pre-registered base metric)."""
    if not plain or not chat:
        return None
    tasks, per_example = {}, {}
    for t, metrics in plain["tasks"].items():
        m = next(iter(metrics))
        xa = (plain["per_example"].get(t) or {}).get(m)
        xc = (chat["per_example"].get(t) or {}).get(m)
        if not xa or not xc or len(xa) != len(xc):
            continue
        vals = [(a + c) / 2 for a, c in zip(xa, xc)]
        tasks[t], per_example[t] = {m: {"value": sum(vals) / len(vals)}}, {m: vals}
    return {"tasks": tasks, "per_example": per_example} if tasks else None


def _gain(a: dict | None, b: dict | None, cfg) -> dict | None:
    if not a or not b:
        return None
    deltas = tables.compare_models(a, b, n_boot=cfg.n_boot, seed=cfg.seed, confidence=cfg.confidence)
    return tables.average_gain(deltas, confidence=cfg.confidence)


def outcome_numbers(run, cfg) -> dict:
    """ReMiT and the A/A arm against vanilla: held-out accuracy in the Question/Answer format (``plain``), asked as
    chats (``chat``, the ``<label>@chat`` evaluations) and the mean of both (``both``); ``remit`` / ``aa`` hold the
    headline: ``both`` where both formats were scored, else ``plain``."""
    results = _results(run)
    labels = {r: run.roles.get(r) for r in ("vanilla", "remit", "vanilla_aa")}
    acc = {r: {"plain": _accuracy(results, x), "chat": _accuracy(results, f"{x}@chat")} if x else {}
           for r, x in labels.items()}
    for a in acc.values():
        if a:
            a["both"] = both_formats(a["plain"], a["chat"])
    out: dict = {"labels": labels}
    for key, role in (("remit", "remit"), ("aa", "vanilla_aa")):
        by = {f: _gain(acc[role].get(f), acc["vanilla"].get(f), cfg) for f in ("plain", "chat", "both")} \
            if acc[role] and acc["vanilla"] else {}
        out[f"{key}_formats"] = by
        out[key] = by.get("both") or by.get("plain")
        out[f"{key}_metric"] = "both" if by.get("both") else "plain"
    return out


def outcome_sentence(o: dict, conf: int) -> str:
    r, aa = o["remit"], o["aa"]
    if r is None:
        return f"{NA}: no held-out accuracy of both ReMiT and vanilla."

    def one(g: dict, key: str) -> str:
        ci = "" if math.isnan(g["lo"]) else f", {conf}% CI {_ci(g['lo'], g['hi'])}"
        by = o.get(f"{key}_formats") or {}
        parts = f" ({by['plain']['gain']:+.1f} with Question/Answer prompts, {by['chat']['gain']:+.1f} as chats)" \
            if o.get(f"{key}_metric") == "both" and by.get("plain") and by.get("chat") else ""
        return f"{g['gain']:+.1f} points{ci}{parts}"

    metric = "mean of the two prompt formats" if o.get("remit_metric") == "both" else "held-out accuracy"
    text = f"In this run ReMiT's base model scores {one(r, 'remit')} against vanilla's ({metric})"
    if aa is None:
        return text + "; no A/A arm (vanilla with another data order) to compare it with."
    if o.get("aa_metric", "plain") != o.get("remit_metric", "plain"):
        return text + "; the A/A arm was not scored in the same formats (add it to chat_evals)."
    if aa is None:
        return text + "; no A/A arm (vanilla with another data order) to compare it with."
    within = round(abs(r["gain"]), 1) <= round(abs(aa["gain"]), 1)  # as shown: -0.4 is no larger than +0.4
    return (text + f"; a second vanilla that differs only in its data order scores {one(aa, 'aa')} (the A/A noise "
            f"floor). "
            + ("ReMiT's difference is no larger than the data order alone makes it."
               if within else "ReMiT's difference is larger than the A/A one, but one A/A pair is one draw of the "
                              "noise: only the multi-seed test below can say whether it holds."))


def find_verdict_file(path: str) -> Path | None:
    """``path`` as given (absolute or from the working directory), else from the source checkout's root."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.is_absolute():
        root = Path(__file__).resolve().parents[3]  # src/remit/report/loop.py -> the checkout (editable install)
        if (root / p).is_file():
            return root / p
    return None


def read_verdict(path: str) -> dict:
    """H1 and H2 of the confirmatory summary at ``path``: {"status": "ok"|"not yet run"|"unreadable", ...}."""
    f = find_verdict_file(path)
    if f is None:
        return {"status": "not yet run", "file": path, "config": CONFIRMATORY_CONFIG}
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
        hyp = doc["hypotheses"]
        out = {"status": "ok", "file": str(f), "seeds": list(doc.get("seeds") or []), "heldout_n": doc.get("heldout_n"),
               "test": doc.get("test"), "stage": _stage_text(doc.get("extension")), "hypotheses": {}}
        for h in ("H1", "H2"):
            if h in hyp:
                x = hyp[h]
                out["hypotheses"][h] = {"contrast": x.get("contrast"), "mean": float(x["mean"]),
                                        "ci90": [float(v) for v in x["ci90"]], "p_one_sided": x.get("p_one_sided"),
                                        "tested": bool(x.get("tested", True)), "verdict": x.get("verdict"),
                                        "alpha": x.get("alpha"), "n": len(x.get("per_seed") or [])}
        return out
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        return {"status": "unreadable", "file": str(f), "why": f"{type(e).__name__}: {e}"}


def _stage_text(ext: dict | None) -> str | None:
    """Which stage of a two-stage seed extension the summary's verdicts are, in words (None without one)."""
    if not ext:
        return None
    if ext.get("stage") == 2:
        return f"stage 2 of the registered seed extension, alpha {ext.get('alpha_used'):g}"
    if ext.get("triggered"):
        return (f"stage 1 (alpha {ext.get('alpha_used'):g}); the registered extension is triggered and not yet run, "
                f"so these verdicts are not final")
    return f"stage 1 (alpha {ext.get('alpha_used'):g}), final: the extension was not triggered"


def verdict_sentence(v: dict) -> str:
    if v["status"] == "not yet run":
        return (f"Multi-seed verdict: not yet run (no `{v['file']}`); the confirmatory design is `{v['config']}` "
                f"(registered in benchmarks/results/world/PREREGISTRATION.md; run it with "
                f"`remit experiment --config {v['config']}`).")
    if v["status"] == "unreadable":
        return f"Multi-seed verdict: `{v['file']}` could not be read ({v['why']})."
    parts = []
    for h, x in v["hypotheses"].items():
        if not x["tested"]:
            parts.append(f"{h} ({x['contrast']}): not tested (an earlier hypothesis of the fixed sequence did not "
                         f"hold)")
            continue
        p = x["p_one_sided"]
        p_txt = "" if p is None else f", one-sided p = {p:.3g}"
        if p is not None and x.get("alpha") is not None:
            p_txt += f" (alpha {x['alpha']:g})"
        parts.append(f"{h} ({x['contrast']}): {x['mean']:+.2f} points, 90% CI {_ci(*x['ci90'], fmt='+.2f')}"
                     f"{p_txt} over {x['n']} seeds: {x['verdict']}")
    test = v.get("test") or "paired t over the seed-level differences, one-sided, fixed sequence"
    if v.get("stage"):
        test += f"; {v['stage']}"
    n = f"{len(v['seeds'])} seeds" + (f" x {v['heldout_n']} held-out tasks" if v.get("heldout_n") else "")
    return (f"Multi-seed verdict (the confirmatory experiment, `{v['file']}`, {n}; {test}): " + "; ".join(parts)
            + ".") if parts else f"Multi-seed verdict: `{v['file']}` has no H1 or H2."


# ---------------------------------------------------------------- the section
def loop_section(run, cfg, out):
    from remit.report import guidance

    conf = int(round(100 * cfg.confidence))
    numbers: dict = {}
    rl = numbers["rl"] = rl_arrow(run, cfg)
    try:
        g = guidance.reference_numbers(run, cfg, "start")
    except Exception as e:  # the guidance section reports the failure in full; this arrow says it is missing
        if cfg.strict:
            raise
        g = None
        numbers["reference_error"] = f"{type(e).__name__}: {e}"
    numbers["reference"] = {k: v for k, v in (g or {}).items() if k != "per_kind"} or None
    probe = numbers["probe"] = probe_numbers(run, cfg)
    outcome = numbers["outcome"] = outcome_numbers(run, cfg)
    verdict = numbers["verdict"] = read_verdict(cfg.verdict_file)
    sentences = [("SFT -> RL model", rl_sentence(rl, conf)),
                 ("RL model -> ReMiT's weights", reference_sentence(g)),
                 ("ReMiT's weights -> base model", probe_sentence(probe, conf)),
                 ("The outcome", outcome_sentence(outcome, conf) + " " + verdict_sentence(verdict))]
    blocks = [("p", f"**{i}. {head}.** {text}") for i, (head, text) in enumerate(sentences, 1)]
    blocks.append(("p", "Arrows 1-3 and the first half of 4 describe this one run (their intervals resample held-out "
                        "tasks); whether ReMiT beats vanilla is a question about training runs, answered by the "
                        "multi-seed verdict. Details: the sections below (the RL stage, the reference's weights and "
                        "their heat-map, the results table)."))
    numbers["lines"] = [f"{i}. {head}: {text}" for i, (head, text) in enumerate(sentences, 1)]
    return blocks, numbers

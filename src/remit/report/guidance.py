"""What the RL model knows that the SFT model does not: ReMiT weights with the RL vs the SFT reference.

    from remit.report.guidance import compare_references
    numbers = compare_references(model, rl, sft, tokenizer, texts, epsilon=0.2)

On the same mid-training text, the model being trained (the pre-annealing checkpoint) is scored
against both candidate references; ``delta = logp_ref - logp_model`` and the ReMiT weight are
computed with the training code (``remit.objectives.remit_weights``, per-row centring). The numbers:
the correlation of the two deltas and of the two weights, the share of tokens whose weights differ
by more than 0.05, and per token kind (see :func:`token_kinds`) the mean weight under each reference.
``guidance_section`` puts them into the report with a figure.

Token kinds come from the text itself (the world's ``Question: ...`` / ``Answer: ...`` format):
``format choice (steps)`` / ``format choice (answer alone)`` (the first token of an answer, which
decides whether the steps are worked), ``operand`` and ``result`` (the numbers of a step ``a + b = c.``), ``answer`` (the number of
``The answer is X.``), ``connective`` (``+ - = .`` and the words of an answer), ``question`` and
``plain text`` (everything outside a solved task).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from remit.report.plots import _plt, _save
from remit.report.sections import NA, _md_table, remit_epsilon

STEPS, ALONE = "format choice (steps)", "format choice (answer alone)"
KINDS = (STEPS, ALONE, "operand", "result", "answer", "connective", "question", "plain text")
_QA = re.compile(r"Question: ([^\n]*)\nAnswer: ([^\n]*)")  # group 1: the question, group 2: the answer
_CHAT = re.compile(r"<\|user\|>\n([^\n]*)<\|end\|>\n<\|assistant\|>\n([^\n<]*)")  # remit's chat template
_STEP = re.compile(r"(-?\d+) ([+\-*]) (-?\d+) = (-?\d+)\.")
_FINAL = re.compile(r"The answer is (-?[\w,.$]+?)\.")


def char_kinds(text: str) -> list[str]:
    """A kind for every character of ``text``."""
    kinds = ["plain text"] * len(text)
    for qa in [*_QA.finditer(text), *_CHAT.finditer(text)]:
        for i in range(qa.start(), qa.start(2)):
            kinds[i] = "question"
        a0, a1 = qa.span(2)
        for i in range(a0, a1):
            kinds[i] = "connective"
        body = qa.group(2)
        for m in _STEP.finditer(body):
            for g, kind in ((1, "operand"), (3, "operand"), (4, "result")):
                for i in range(a0 + m.start(g), a0 + m.end(g)):
                    kinds[i] = kind
        for m in _FINAL.finditer(body):
            for i in range(a0 + m.start(1), a0 + m.end(1)):
                kinds[i] = "answer"
        if a1 > a0:
            kinds[a0] = ALONE if body.startswith("The answer is") else STEPS
    return kinds


def _token_kind(text: str, ck: list[str], sp: tuple[int, int] | None) -> str:
    """The kind of the token spanning ``sp``: of its first non-space character (a format choice wins)."""
    if sp is None or sp[1] <= sp[0]:
        return "plain text"
    chars = [i for i in range(sp[0], min(sp[1], len(text))) if not text[i].isspace()] or [sp[0]]
    ks = [ck[i] for i in chars if i < len(ck)]
    fmt = [k for k in ks if k in (STEPS, ALONE)]
    return fmt[0] if fmt else (ks[0] if ks else "plain text")


def token_kinds(text: str, spans: list[tuple[int, int] | None]) -> list[str]:
    """The kind of each token of ``text`` (given by its character span)."""
    ck = char_kinds(text)
    return [_token_kind(text, ck, sp) for sp in spans]


def as_chats(texts: list[str], tokenizer) -> list[str]:
    """The solved tasks of ``texts`` written as one-turn chats (the format the references were post-trained in)."""
    out = []
    for t in texts:
        for qa in _QA.finditer(t):
            out.append(tokenizer.apply_chat_template([{"role": "user", "content": qa.group(1)},
                                                      {"role": "assistant", "content": qa.group(2)}], tokenize=False))
    return out


def _corr(a: list[float], b: list[float]) -> float:
    n = len(a)
    if n < 2:
        return float("nan")
    ma, mb = sum(a) / n, sum(b) / n
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:
        return float("nan")
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / math.sqrt(va * vb)


def _changed(w_rl, w_sft, d_rl, d_sft, nats: float) -> dict:
    """The tokens where the two references' log-probs differ by more than ``nats`` (``d_rl - d_sft`` =
    logp_RL - logp_SFT: what RL changed), split by the direction of the change, with each reference's mean weight."""
    n = len(w_rl)

    def part(idx: list[int]) -> dict:
        m = len(idx)
        return {"n": m, "w_rl": sum(w_rl[i] for i in idx) / m if m else float("nan"),
                "w_sft": sum(w_sft[i] for i in idx) / m if m else float("nan")}

    up = [i for i in range(n) if d_rl[i] - d_sft[i] > nats]
    down = [i for i in range(n) if d_rl[i] - d_sft[i] < -nats]
    both = sorted(up + down)
    return {"nats": nats, "n": len(both), "share": len(both) / n if n else float("nan"), **part(both),
            "corr_weight": _corr([w_rl[i] for i in both], [w_sft[i] for i in both]), "up": part(up), "down": part(down)}


def summarize(w_rl: list[float], w_sft: list[float], d_rl: list[float], d_sft: list[float], kinds: list[str],
              *, threshold: float = 0.05, changed_nats: float = 0.1) -> dict:
    """The comparison's numbers from per-token weights, deltas and kinds (same tokens, same order); ``changed``:
    the tokens where the references' deltas differ by more than ``changed_nats`` (see :func:`_changed`)."""
    n = len(w_rl)
    if not (n == len(w_sft) == len(d_rl) == len(d_sft) == len(kinds)):
        raise ValueError("summarize: every per-token list must have the same length")
    per_kind = {}
    for k in KINDS:
        idx = [i for i in range(n) if kinds[i] == k]
        if not idx:
            continue
        m = len(idx)
        per_kind[k] = {"n": m, "w_rl": sum(w_rl[i] for i in idx) / m, "w_sft": sum(w_sft[i] for i in idx) / m,
                       "delta_rl": sum(d_rl[i] for i in idx) / m, "delta_sft": sum(d_sft[i] for i in idx) / m,
                       "share_rl_higher": sum(w_rl[i] > w_sft[i] + threshold for i in idx) / m,
                       "share_rl_lower": sum(w_rl[i] < w_sft[i] - threshold for i in idx) / m}
        per_kind[k]["w_diff"] = per_kind[k]["w_rl"] - per_kind[k]["w_sft"]
    return {"n_tokens": n, "corr_delta": _corr(d_rl, d_sft), "corr_weight": _corr(w_rl, w_sft),
            "share_weight_diff_gt": sum(abs(a - b) > threshold for a, b in zip(w_rl, w_sft)) / n if n else float("nan"),
            "threshold": threshold, "mean_w_rl": sum(w_rl) / n if n else float("nan"),
            "mean_w_sft": sum(w_sft) / n if n else float("nan"), "per_kind": per_kind,
            "changed": _changed(w_rl, w_sft, d_rl, d_sft, changed_nats)}


def compare_references(model, rl, sft, tokenizer, texts: list[str], *, epsilon: float = 0.2,
                       temperature: float = 1.0, max_length: int = 256, batch_size: int = 8,
                       max_windows: int | None = None):
    """(numbers, per-token lists) of the model scored against the RL and the SFT reference on ``texts``."""
    from remit.report.heatmap import score_against

    s_rl, s_sft = score_against(model, [rl, sft], tokenizer, texts, epsilon=epsilon, temperature=temperature,
                                max_length=max_length, batch_size=batch_size, max_windows=max_windows)
    cks = [char_kinds(t) for t in texts]
    kinds = [_token_kind(texts[t], cks[t], sp) for t, sp in zip(s_rl.text_of, s_rl.span)]
    tokens = {"w_rl": s_rl.weight, "w_sft": s_sft.weight, "d_rl": s_rl.delta, "d_sft": s_sft.delta, "kinds": kinds}
    return summarize(tokens["w_rl"], tokens["w_sft"], tokens["d_rl"], tokens["d_sft"], kinds), tokens


def plot(tokens: dict, numbers: dict, path: Path, *, epsilon: float) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
    lo = min(min(tokens["d_rl"]), min(tokens["d_sft"]))
    hi = max(max(tokens["d_rl"]), max(tokens["d_sft"]))
    bins = [lo + (hi - lo) * i / 40 for i in range(41)] if hi > lo else 40
    ax[0].hist(tokens["d_sft"], bins=bins, alpha=0.6, label="SFT reference", color="tab:blue")
    ax[0].hist(tokens["d_rl"], bins=bins, alpha=0.6, label="RL reference", color="tab:red")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("delta = logp_ref - logp_model (nats)")
    ax[0].legend()
    wb = [1 - epsilon + 2 * epsilon * i / 20 for i in range(21)]
    ax[1].hist(tokens["w_sft"], bins=wb, alpha=0.6, label="SFT reference", color="tab:blue")
    ax[1].hist(tokens["w_rl"], bins=wb, alpha=0.6, label="RL reference", color="tab:red")
    ax[1].set_xlabel(f"ReMiT weight (corr RL vs SFT = {numbers['corr_weight']:.2f})")
    ax[1].legend()
    kinds = [k for k in KINDS if k in numbers["per_kind"]]
    diffs = [numbers["per_kind"][k]["w_diff"] for k in kinds]
    ax[2].barh(kinds, diffs, color=["tab:red" if d > 0 else "tab:blue" for d in diffs])
    ax[2].axvline(0, color="k", lw=0.8)
    ax[2].invert_yaxis()
    ax[2].set_xlabel("mean weight, RL minus SFT reference")
    fig.tight_layout()
    return _save(fig, path)


def _missing(run) -> bool:
    return any(x is None for x in (run.model("pre_annealing"), run.model("reference"), run.model("sft"),
                                   run.data.get("midtrain")))


def compared(run, cfg) -> dict:
    """{when: (model label, numbers, per-token lists, documents scored, mid-training texts read)} for when in start / end / chat, computed
    once per report (the loop section and the guidance section both read it; cached on ``run.cache``)."""
    from remit.report.lm import load_pair, read_text_file

    if "guidance" in run.cache:
        return run.cache["guidance"]
    model, rl, sft = run.model("pre_annealing"), run.model("reference"), run.model("sft")
    late = run.model("vanilla")
    texts = read_text_file(run.data["midtrain"], limit=cfg.guidance_texts)[:cfg.guidance_texts]
    eps = remit_epsilon(run)
    r, tok = load_pair(rl[1], device=cfg.device, dtype=cfg.dtype)
    s, _ = load_pair(sft[1], device=cfg.device, dtype=cfg.dtype)
    done = {}
    # The weights the run starts with (model = P) and those near its end (model = the vanilla mid-trained B0,
    # where the deltas are no longer dominated by what every post-trained model knows better than P).
    chats = as_chats(texts, tok)
    for when, who, docs in (("start", model, texts), ("end", late, texts), ("chat", late, chats)):
        if who is None or not docs:
            continue
        m, _ = load_pair(who[1], device=cfg.device, dtype=cfg.dtype)
        nums, tokens = compare_references(m, r, s, tok, docs, epsilon=eps, max_length=cfg.max_length,
                                          batch_size=cfg.batch_size, max_windows=cfg.text_windows)
        done[when] = (who[0], nums, tokens, len(docs), len(texts))
    run.cache["guidance"] = done
    return done


def reference_numbers(run, cfg, when: str = "start") -> dict | None:
    """The comparison's numbers at ``when`` (None when the run lacks a model or the text, or guidance=false)."""
    if not cfg.guidance or _missing(run):
        return None
    got = compared(run, cfg).get(when)
    return None if got is None else {"model": got[0], **got[1]}


def guidance_section(run, cfg, out):
    """Report section: needs the pre-annealing model, the RL reference, the SFT model and the mid-training text."""
    if not cfg.guidance:
        return [("p", "Skipped (guidance=false).")], {}
    if _missing(run):
        return [("p", f"{NA}: needs the pre-annealing model, the RL reference, the SFT model and the mid-training "
                      f"text (roles: {run.roles}).")], {}
    rl, sft = run.model("reference"), run.model("sft")
    eps = remit_epsilon(run)
    blocks, numbers = [], {}
    for when, (who, nums, tokens, n_docs, n_texts) in compared(run, cfg).items():
        png = plot(tokens, nums, out / f"guidance_{when}.png", epsilon=eps)
        numbers[when] = {"model": who, **nums}
        rows = [[k, v["n"], f"{v['w_sft']:.3f}", f"{v['w_rl']:.3f}", f"{v['w_diff']:+.3f}",
                 f"{100 * v['share_rl_higher']:.0f}%", f"{100 * v['share_rl_lower']:.0f}%"]
                for k, v in nums["per_kind"].items()]
        th = nums["threshold"]
        where = {"start": f"the start of mid-training; the first {n_texts} mid-training documents",
                 "end": f"near the end of mid-training; the first {n_texts} mid-training documents",
                 "chat": f"near the end; the {n_docs} solved tasks of those documents written as chats"}[when]
        ch = nums["changed"]
        text = (f"**Model being trained: {who}** ({where}); {nums['n_tokens']} tokens; RL "
                f"reference: {rl[0]}; SFT reference: {sft[0]}; eps = {eps:g}. Correlation of the two deltas: "
                f"{nums['corr_delta']:.3f}; of the two weights: {nums['corr_weight']:.3f}. "
                f"{100 * nums['share_weight_diff_gt']:.1f}% of the tokens get weights that differ by more than {th:g}. "
                f"What RL changed: on the {ch['n']} tokens ({100 * ch['share']:.1f}%) where the references' log-probs "
                f"differ by more than {ch['nats']:g} nats the mean weight is {ch['w_rl']:.3f} (RL) vs {ch['w_sft']:.3f} "
                f"(SFT), correlation {ch['corr_weight']:.3f}.")
        blocks += [("p", text), ("md", f"![RL vs SFT reference, {when}]({Path('report') / png.name})"),
                   ("md", _md_table(["token kind", "n", "mean w (SFT ref)", "mean w (RL ref)", "RL - SFT",
                                     f"RL higher by > {th:g}", f"RL lower by > {th:g}"], rows))]
    return blocks, numbers

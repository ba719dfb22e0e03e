"""Per-example scoring functions plugged into lm-eval tasks (``process_results`` / custom filters).

- math answers: math-verify (``math_correct``);
- code: the completion + the benchmark's tests run in ``remit.sandbox`` (never lm-eval's
  ``unsafe_code``), several programs at a time from a custom filter; pass@k by the unbiased
  estimator of Chen et al. (2021);
- multiple choice: accuracy plus the *margin* = log p(gold) - max log p(wrong), which moves
  even when a small model sits at chance accuracy;
- gold solutions: bits per byte and mean per-token loss of the reference answer given the prompt;
- the embedded world: ``remit.world.check_answer``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from remit.sandbox import require, run_python
from remit.world import check_answer

LN2 = math.log(2.0)


# ---------------------------------------------------------------- math
def math_correct(prediction: str, gold: str) -> float:
    """1.0 if math-verify finds ``prediction`` equivalent to ``gold`` (both free text / LaTeX)."""
    from math_verify import parse, verify  # heavy (sympy, ~0.4 s): only when a math task is scored

    if not prediction.strip():
        return 0.0
    g = parse(gold if "$" in gold or "\\" in gold else f"${gold}$")
    p = parse(prediction)
    if not g or not p:
        return 0.0
    return float(verify(g, p))


def _last_number(text: str) -> str:
    nums = re.findall(r"-?[$0-9.,]*[0-9]", text)
    return nums[-1].replace(",", "").replace("$", "") if nums else ""


def gsm8k_results(doc: dict, results: list[str]) -> dict[str, float]:
    gold = doc["answer"].split("####")[-1].strip().replace(",", "")
    text = results[0]
    # lm-eval's "strict-match" reads "#### N"; "flexible-extract" the last number. Both go to math-verify.
    strict = re.search(r"#### (\-?[0-9\.\,]+)", text)
    flex = _last_number(text)
    return {"exact_match": math_correct(strict.group(1).replace(",", ""), gold) if strict else 0.0,
            "flexible_match": math_correct(flex, gold) if flex else 0.0}


def boxed(text: str) -> str:
    """Content of the last \\boxed{...} (balanced braces), or ''."""
    i = text.rfind("\\boxed")
    if i < 0:
        return ""
    j = text.find("{", i)
    if j < 0:
        return ""
    depth = 0
    for k in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[j + 1:k]
    return ""


def math_results(doc: dict, results: list[str]) -> dict[str, float]:
    text = results[0]
    m = re.search(r"final answer is (.*?)\. I hope", text)
    pred = m.group(1) if m else text  # Minerva's format, else the whole text (math-verify finds the answer)
    return {"exact_match": math_correct(pred, f"${boxed(doc['solution'])}$")}


# ---------------------------------------------------------------- code
def humaneval_program(doc: dict, completion: str) -> str:
    return f"{doc['prompt']}{completion}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"


def mbpp_program(doc: dict, completion: str) -> str:
    completion = completion.split("[DONE]")[0]
    tests = "\n".join(doc["test_list"])
    return f"{completion}\n\n{doc.get('test_setup_code') or ''}\n{tests}\n"


def code_filter(build: Callable[[dict, str], str], *, timeout_s: float, memory_mb: int,
                workers: int) -> Callable[[list[list[str]], list[dict]], list[list[bool]]]:
    """lm-eval custom filter: run every completion's program in the sandbox (threads over subprocesses)."""

    def run_all(resps: list[list[str]], docs: list[dict]) -> list[list[bool]]:
        require()  # refuses (one line) where the sandbox's kernel layers are missing, unless opted out by config
        jobs = [(i, build(doc, c)) for i, (doc, rs) in enumerate(zip(docs, resps)) for c in rs]

        def one(job: tuple[int, str]) -> bool:
            return bool(run_python(job[1], timeout_s=timeout_s, memory_mb=memory_mb).ok)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            passed = list(pool.map(one, jobs))
        out: list[list[bool]] = [[] for _ in docs]
        for (i, _), ok in zip(jobs, passed):
            out[i].append(ok)
        return out

    return run_all


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def code_results(ks: list[int], prefix: str = "") -> Callable[[dict, list], dict[str, float]]:
    def fn(doc: dict, results: list) -> dict[str, float]:
        passed = results[0]
        n, c = len(passed), sum(passed)
        return {f"{prefix}pass@{k}": pass_at_k(n, c, k) for k in ks if k <= n}

    return fn


# ---------------------------------------------------------------- multiple choice
def mc_results(choices: Callable[[dict], list[str]], gold: Callable[[dict], int],
               norm: bool) -> Callable[[dict, list], dict[str, float]]:
    """acc (+ acc_norm: per-character normalised, as lm-eval) and the log-likelihood margin."""

    def fn(doc: dict, results: list) -> dict[str, float]:
        lls = np.array([r[0] for r in results], dtype=np.float64)
        g = gold(doc)
        wrong = np.delete(lls, g)
        out = {"acc": float(np.argmax(lls) == g), "margin": float(lls[g] - wrong.max())}
        if norm:
            lens = np.array([max(1, len(c)) for c in choices(doc)], dtype=np.float64)
            out["acc_norm"] = float(np.argmax(lls / lens) == g)
        return out

    return fn


# ---------------------------------------------------------------- gold solutions
def fit_target(tokenizer: Any, target: Callable[[dict], str], max_length: int) -> Callable[[dict], str]:
    """``target`` cut to its first ``max_length - 8`` tokens when longer (lm-eval refuses a continuation longer
    than the window). A gold solution longer than the model's window is scored on that prefix, for every model
    alike; bits per byte count the bytes of the prefix."""
    keep = max(1, max_length - 8)

    def fn(doc: dict) -> str:
        text = target(doc)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return text if len(ids) <= keep else tokenizer.decode(ids[:keep])

    return fn


def with_delimiter(target: Callable[[dict], str], delimiter: str) -> Callable[[dict], str]:
    """The continuation of a log-likelihood request: lm-eval applies ``target_delimiter`` to multiple-choice
    and few-shot targets but NOT to a ``loglikelihood`` request's continuation, so the delimiter goes here
    (without it the first scored token is one the model never sees there, e.g. ``Answer:5``)."""

    def fn(doc: dict) -> str:
        return delimiter + target(doc)

    return fn


def gold_loss_results(tokenizer: Any, context: Callable[[dict], str], target: Callable[[dict], str],
                      delimiter: str, max_length: int) -> Callable[[dict, list], dict[str, float]]:
    """Bits per byte and mean per-token loss of the gold continuation (from lm-eval's loglikelihood)."""

    def fn(doc: dict, results: list) -> dict[str, float]:
        ll = float(results[0][0])
        ctx, cont = context(doc), delimiter + target(doc)
        # Same split as HFLM._encode_pair: trailing context spaces belong to the continuation.
        n_sp = len(ctx) - len(ctx.rstrip())
        if n_sp:
            ctx, cont = ctx[:-n_sp], ctx[-n_sp:] + cont
        n_tok = len(tokenizer.encode(ctx + cont)) - len(tokenizer.encode(ctx))
        n_tok = min(max(1, n_tok), max_length)
        return {"bpb": -ll / (LN2 * max(1, len(cont.encode("utf-8")))), "token_loss": -ll / n_tok}

    return fn


# ---------------------------------------------------------------- world
def world_results(doc: dict, results: list[str]) -> dict[str, float]:
    return {"exact_match": float(bool(check_answer(doc["kind"], results[0], doc["answer"])))}


WORLD_STYLE_METRICS = ("p_worked", "p_worked_start", "p_direct_start")
DIRECT_PREFIX = "The answer is"


def world_starts(answer: str, solution: str) -> dict[str, str]:
    """The two ways an answer can start: the first word of the worked gold solution (for chain, its first
    operand) and of the direct line ``The answer is X.``; and the forced prefix of a direct answer."""
    return {"worked_start": solution.split()[0], "direct_start": DIRECT_PREFIX.split()[0],
            "direct_prefix": DIRECT_PREFIX}


def world_style_results(doc: dict, results: list) -> dict[str, float]:
    """Teacher-forced start probabilities: ``p_worked_start`` = p(worked start | prompt), ``p_direct_start`` =
    p(direct start | prompt), and ``p_worked`` = their ratio p_w / (p_w + p_d): the probability that the model,
    choosing between the two, starts its answer with the worked steps."""
    lw, ld = float(results[0][0]), float(results[1][0])
    m = max(lw, ld)
    return {"p_worked": math.exp(lw - m) / (math.exp(lw - m) + math.exp(ld - m)),
            "p_worked_start": math.exp(lw), "p_direct_start": math.exp(ld)}


def world_forced_results(style: str) -> Callable[[dict, list[str]], dict[str, float]]:
    """Exact answer of a generation forced to start worked (``style="worked"``) or directly: the forced start
    is part of the answer that is checked."""
    key = "worked_start" if style == "worked" else "direct_prefix"

    def fn(doc: dict, results: list[str]) -> dict[str, float]:
        text = doc[key] + results[0]
        return {f"{style}_exact_match": float(bool(check_answer(doc["kind"], text, doc["answer"])))}

    return fn


def bbh_results(doc: dict, results: list[str]) -> dict[str, float]:
    m = re.search(r"the answer is (.*?)\.?\s*$", results[0].strip().split("\n")[-1]) or \
        re.search(r"the answer is (.*?)(?:\.|$)", results[0])
    return {"exact_match": float(bool(m) and m.group(1).strip() == doc["target"].strip())}

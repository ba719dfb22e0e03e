"""The quality experiment's data recipe: public datasets of ``../shared/data`` -> the jsonl files its stages read.

Outputs (names without ``.jsonl`` are the keys of :data:`OUTPUTS`):

* ``pretrain``  general text (Gutenberg children's books, tiny Shakespeare) + some math and code,
* ``midtrain``  reasoning-rich text: GSM8K / MATH train solutions, MBPP 601-974, ARC / OpenBookQA / BoolQ
  train sets, MAWPS train set (``Question: ...\\nAnswer: ...`` worked solutions),
* ``sft``       GSM8K-train questions with their cleaned solutions + generated arithmetic,
* ``rl``        GSM8K-train questions with numeric answers + generated arithmetic (math reward),
* ``eval``      held-out GSM8K-train rows + held-out generated arithmetic (post-training reward only),
* ``heldout_gold``  GSM8K / MATH *test* question + gold solution pairs: evaluation only (bits per byte of
  the sample-efficiency curve; never trained on).

Test splits are never read into a training file: only ``*train*`` files (and MBPP task ids 601-974) feed
training; the decontamination check then looks for every evaluated question (paper10 test sets) inside the
training texts and drops any training document that contains one (counts in the stage's manifest).
The code is the former ``benchmarks/quality/prepare.py`` (version 2): it writes byte-identical files.
"""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path
from typing import Any

from remit.eval.data import read_json_records

GSM8K_HELDOUT = 256  # last rows of GSM8K train: post-training reward evaluation only
OUTPUTS = ("pretrain", "midtrain", "sft", "rl", "eval", "heldout_gold")
# Every file the recipe reads, relative to the shared data folder (checked before any work).
INPUTS = (
    "gsm8k/train.jsonl.gz", "gsm8k/test.jsonl", "math/train.jsonl.gz", "math/test.jsonl.gz", "mbpp/mbpp.jsonl",
    "commonsense_llm_adapters/ARC-Easy_train.json", "commonsense_llm_adapters/ARC-Challenge_train.json",
    "commonsense_llm_adapters/openbookqa_train.json.gz", "commonsense_llm_adapters/boolq_train.json.gz",
    "math_word_problems/mawps_trainset.json", "gutenberg_children/gutenberg_children.jsonl.gz",
    "tinyshakespeare/input.txt.gz", "arc/ARC-Easy-Test.jsonl", "arc/ARC-Challenge-Test.jsonl",
    "humaneval/HumanEval.jsonl.gz", "superglue/BoolQ/val.jsonl",
)


def _read(path: Path) -> list[Any]:
    """Rows of a .json/.jsonl(.gz) file (remit's reader: errors name the file and line)."""
    return read_json_records(path, task="quality data")


def clean_gsm8k(answer: str) -> tuple[str, str]:
    """GSM8K solution without ``<<calc>>`` annotations, ending ``The answer is X.``; returns (text, X)."""
    body, _, final = answer.rpartition("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    final = final.strip().replace(",", "")
    return f"{body}\nThe answer is {final}.", final


def _choice_text(row: dict, word: str = "Answer") -> tuple[str, str] | None:
    """Instruction-form multiple choice (commonsense_llm_adapters) -> (question stem, gold option text)."""
    text = row["instruction"]
    body = text.split("Answer format:")[0]
    parts = re.split(rf"{word}(\d+):", body)
    options = [parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)]
    stem = re.sub(r"^Please choose the correct [a-z ]+?: ", "", parts[0]).strip()
    m = re.search(r"(\d+)$", str(row.get("answer", "")))
    if not options or not m or int(m.group(1)) > len(options):
        return None
    return stem, options[int(m.group(1)) - 1]


def arithmetic(rng: random.Random, n: int) -> list[dict]:
    """Generated one- and two-step arithmetic with worked solutions (numbers <= 30)."""
    out = []
    for _ in range(n):
        a, b, c = rng.randint(1, 30), rng.randint(1, 30), rng.randint(1, 9)
        op1 = rng.choice("+-")
        v1 = a + b if op1 == "+" else a - b
        if rng.random() < 0.5:
            q, sol, ans = f"What is {a} {op1} {b}?", f"{a} {op1} {b} = {v1}.", v1
        else:
            op2 = rng.choice("+*")
            v2 = v1 + c if op2 == "+" else v1 * c
            q = f"What is ({a} {op1} {b}) {op2} {c}?"
            sol, ans = f"{a} {op1} {b} = {v1}. {v1} {op2} {c} = {v2}.", v2
        out.append({"prompt": q, "response": f"{sol}\nThe answer is {ans}.", "answer": str(ans), "kind": "math"})
    return out


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def eval_questions(d: Path) -> list[str]:
    """Normalised question texts of the evaluated test sets (decontamination probes, >= 40 chars)."""
    qs = [r["question"] for r in _read(d / "gsm8k/test.jsonl")]
    qs += [r["problem"] for r in _read(d / "math/test.jsonl.gz")]
    qs += [r["question"]["stem"] for n in ("ARC-Easy-Test", "ARC-Challenge-Test") for r in _read(d / f"arc/{n}.jsonl")]
    qs += [r["text"] for r in _read(d / "mbpp/mbpp.jsonl") if 11 <= int(r["task_id"]) <= 510]
    qs += [r["prompt"] for r in _read(d / "humaneval/HumanEval.jsonl.gz")]
    qs += [r["question"] for r in _read(d / "superglue/BoolQ/val.jsonl")]
    return [n for n in (_norm(q)[:120] for q in qs) if len(n) >= 40]


def decontaminate(rows: list[dict], key: str, probes: list[str]) -> tuple[list[dict], dict[str, int]]:
    """Drop rows whose normalised ``key`` text contains an evaluated question (its first <= 120 chars)."""
    heads: dict[str, list[str]] = {}
    for p in probes:
        heads.setdefault(p[:40], []).append(p)
    kept, dropped = [], {}
    for r in rows:
        t = _norm(r[key])
        hit = False
        for i in range(max(0, len(t) - 39)):
            ps = heads.get(t[i:i + 40])
            if ps and any(t.startswith(p, i) for p in ps):
                hit = True
                break
        if hit:
            dropped[r.get("src", "-")] = dropped.get(r.get("src", "-"), 0) + 1
        else:
            kept.append(r)
    return kept, dropped


def _midtrain(d: Path, gsm_docs: list[dict], mbpp_train: list[dict]) -> list[dict]:
    """Reasoning-rich text, train splits only."""
    mid = [{"text": f"Question: {g['q']}\nAnswer: {g['sol']}", "src": "gsm8k_train"} for g in gsm_docs]
    mid += [{"text": f"Problem:\n{r['problem']}\n\nSolution: {r['solution']}", "src": "math_train"}
            for r in _read(d / "math/train.jsonl.gz")]
    mid += [{"text": f"{r['text']}\n{r['code'].replace(chr(13), '')}\n" + "\n".join(r["test_list"]),
             "src": "mbpp_601_974"} for r in mbpp_train]
    for name in ("ARC-Easy_train.json", "ARC-Challenge_train.json", "openbookqa_train.json.gz"):
        for r in _read(d / "commonsense_llm_adapters" / name):
            qa = _choice_text(r)
            if qa:
                mid.append({"text": f"Question: {qa[0]}\nAnswer: {qa[1]}", "src": name.split(".")[0]})
    for r in _read(d / "commonsense_llm_adapters/boolq_train.json.gz"):
        q = re.sub(r"^Please answer the following question with true or false, question: ", "",
                   r["instruction"].split("\n\nAnswer format:")[0]).strip()
        mid.append({"text": f"Question: {q}?\nAnswer: {'yes' if r['answer'] == 'true' else 'no'}", "src": "boolq_train"})
    for r in _read(d / "math_word_problems/mawps_trainset.json"):
        ans = float(r["ans"])
        ans = int(ans) if float(ans).is_integer() else ans
        mid.append({"text": f"Question: {r['original_text']}\nAnswer: {r['equation'].replace('X=', '')} = {ans}.\n"
                            f"The answer is {ans}.", "src": "mawps_train"})
    return mid


def _pretrain(d: Path, rng: random.Random, pretrain_chars: int, seed: int, gsm_docs: list[dict],
              mbpp_train: list[dict]) -> list[dict]:
    """General text + some math (arithmetic, GSM8K train) and code (MBPP 601-974)."""
    books = [r["text"] for r in _read(d / "gutenberg_children/gutenberg_children.jsonl.gz")]
    rng.shuffle(books)
    pre: list[dict] = []
    budget = int(pretrain_chars * 0.85)
    for b in books:
        for i in range(0, len(b), 2000):
            if budget <= 0:
                break
            chunk = b[i:i + 2000].strip()
            if len(chunk) > 200:
                pre.append({"text": chunk, "src": "gutenberg"})
                budget -= len(chunk)
    with gzip.open(d / "tinyshakespeare/input.txt.gz", "rt", encoding="utf-8") as f:
        shakes = f.read()
    pre += [{"text": shakes[i:i + 2000], "src": "tinyshakespeare"}
            for i in range(0, min(len(shakes), int(pretrain_chars * 0.08)), 2000)]
    arith_pre = arithmetic(random.Random(seed + 1), 1500)
    pre += [{"text": f"Question: {a['prompt']}\nAnswer: {a['response']}", "src": "arithmetic"} for a in arith_pre]
    pre += [{"text": f"Question: {g['q']}\nAnswer: {g['sol']}", "src": "gsm8k_train"} for g in gsm_docs[:800]]
    pre += [{"text": r["code"].replace("\r", ""), "src": "mbpp_601_974"} for r in mbpp_train]
    return pre


def _stats(rows: list[dict], key: str = "text") -> dict[str, Any]:
    by: dict[str, int] = {}
    for r in rows:
        by[r.get("src", "-")] = by.get(r.get("src", "-"), 0) + 1
    return {"rows": len(rows), "chars": sum(len(r[key]) for r in rows), "by_source": by}


def build(d: Path, *, pretrain_chars: int, seed: int) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """({output name: rows}, statistics) from the shared data folder ``d``. The order of the random draws
    is the old script's: the same seed gives the same files."""
    rng = random.Random(seed)
    gsm = _read(d / "gsm8k/train.jsonl.gz")
    gsm_train, gsm_held = gsm[:-GSM8K_HELDOUT], gsm[-GSM8K_HELDOUT:]
    gsm_docs = []
    for r in gsm_train:
        sol, ans = clean_gsm8k(r["answer"])
        gsm_docs.append({"q": r["question"], "sol": sol, "ans": ans})
    mbpp_train = [r for r in _read(d / "mbpp/mbpp.jsonl") if 601 <= int(r["task_id"]) <= 974]
    mid = _midtrain(d, gsm_docs, mbpp_train)
    pre = _pretrain(d, rng, pretrain_chars, seed, gsm_docs, mbpp_train)

    # post-training
    arith = arithmetic(random.Random(seed + 2), 3000)
    sft = [{"prompt": g["q"], "response": g["sol"]} for g in gsm_docs[:3000]]
    sft += [{"prompt": a["prompt"], "response": a["response"]} for a in arith[:1500]]
    rng.shuffle(sft)
    rl = [{"prompt": g["q"], "answer": g["ans"], "kind": "math"} for g in gsm_docs[3000:4000]]
    rl += [{"prompt": a["prompt"], "answer": a["answer"], "kind": "math"} for a in arith[1500:2800]]
    rng.shuffle(rl)
    ev = [{"prompt": a["prompt"], "answer": a["answer"], "kind": "math"} for a in arith[2800:2900]]
    ev += [{"prompt": r["question"], "answer": clean_gsm8k(r["answer"])[1], "kind": "math"} for r in gsm_held[:100]]
    rng.shuffle(ev)

    # held-out gold solutions (TEST splits: evaluation only)
    gold = [{"context": f"Question: {r['question']}\nAnswer:", "target": " " + r["answer"], "src": "gsm8k_test"}
            for r in _read(d / "gsm8k/test.jsonl")[:60]]
    gold += [{"context": f"Problem:\n{r['problem']}\n\nSolution:", "target": " " + r["solution"], "src": "math_test"}
             for r in _read(d / "math/test.jsonl.gz")[:60]]

    probes = eval_questions(d)
    mid, drop_mid = decontaminate(mid, "text", probes)
    pre, drop_pre = decontaminate(pre, "text", probes)
    sft, drop_sft = decontaminate(sft, "prompt", probes)
    rl, drop_rl = decontaminate(rl, "prompt", probes)
    rng.shuffle(mid)
    files = {"pretrain": pre, "midtrain": mid, "sft": sft, "rl": rl, "eval": ev, "heldout_gold": gold}
    info = {"pretrain": _stats(pre), "midtrain": _stats(mid), "sft": _stats(sft, "prompt"),
            "rl": _stats(rl, "prompt"), "eval": _stats(ev, "prompt"), "heldout_gold": _stats(gold, "target"),
            "decontamination": {"probes": len(probes), "dropped": {"pretrain": drop_pre, "midtrain": drop_mid,
                                                                   "sft": drop_sft, "rl": drop_rl}}}
    return files, info

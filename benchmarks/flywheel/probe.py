"""Probe a model on the world's held-out chain tasks: accuracy when forced to answer directly vs to work
step by step, and which style it picks on its own (greedy). Used to calibrate the world (calibration.md).

    python benchmarks/flywheel/probe.py MODEL WORLD_DIR [--chat] [--n 200]
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("world")
    ap.add_argument("--chat", action="store_true")
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    from remit.models import load_model, load_tokenizer
    from remit.world.checkers import check_answer

    tok = load_tokenizer(a.model)
    model = load_model(a.model, dtype="float32", device="cpu").eval()
    rows = [json.loads(x) for x in open(f"{a.world}/eval.jsonl")][: a.n]

    def prompt(r):
        if a.chat:
            return tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                           add_generation_prompt=True)
        return f"Question: {r['prompt']}\nAnswer: "

    def gen(prefixes):
        tok.padding_side = "left"
        enc = tok(prefixes, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=60, do_sample=False, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
        return [tok.decode(o[enc["input_ids"].shape[1]:], skip_special_tokens=True).split("\n")[0] for o in out]

    free = gen([prompt(r).rstrip(" ") if not a.chat else prompt(r) for r in rows])
    direct = gen([prompt(r) + "The answer is" for r in rows])
    worked = gen([prompt(r) + r["prompt"].split()[2] for r in rows])
    stats = defaultdict(lambda: [0, 0, 0, 0, 0])
    for r, f, d, w in zip(rows, free, direct, worked):
        n_ops = r["prompt"].count("+") + r["prompt"].count(" - ")
        s = stats[n_ops]
        s[0] += 1
        s[1] += check_answer("chain", f, r["answer"])
        s[2] += check_answer("chain", "The answer is" + d, r["answer"])
        s[3] += check_answer("chain", r["prompt"].split()[2] + w, r["answer"])
        s[4] += not f.strip().startswith("The answer")
    print("ops  n  free  forced-direct  forced-worked  free-picks-worked")
    tot = [0] * 5
    for k in sorted(stats):
        s = stats[k]
        tot = [x + y for x, y in zip(tot, s)]
        print(f"{k:3d} {s[0]:4d} {s[1]/s[0]:.2f} {s[2]/s[0]:.2f} {s[3]/s[0]:.2f} {s[4]/s[0]:.2f}")
    print(f"all {tot[0]:4d} {tot[1]/tot[0]:.2f} {tot[2]/tot[0]:.2f} {tot[3]/tot[0]:.2f} {tot[4]/tot[0]:.2f}")
    for r, f, w in list(zip(rows, free, worked))[:4]:
        print(repr(r["prompt"]), "->", repr(f), "| worked:", repr(w))


if __name__ == "__main__":
    main()

"""The calibration's copy probe: can a checkpoint work the steps of held-out chain tasks, and where does it fail?

Each task's answer is started with its first operand (pre-training format), the rest is greedy; every written
step ``a op b = c.`` is compared with the gold step at the same position (operands copied from the question?)
and checked on its own (arithmetic right?).

    python benchmarks/results/world/calibration/copy_probe.py MODEL_DIR WORLD_DIR [N]
"""

from __future__ import annotations

import json
import re
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)\.")


def main(path: str, world: str, n: int = 100) -> None:
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    with open(f"{world}/eval.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:n]
    prompts = [f"Question: {r['prompt']}\nAnswer: {STEP.findall(r['solution'])[0][0]}" for r in rows]
    outs: list[str] = []
    for i in range(0, len(prompts), 50):
        enc = tok(prompts[i:i + 50], return_tensors="pt", padding=True)
        with torch.no_grad():
            g = model.generate(**enc, max_new_tokens=110, do_sample=False, pad_token_id=tok.pad_token_id)
        outs += tok.batch_decode(g[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    right, stats = 0, {}
    for r, p, o in zip(rows, prompts, outs):
        text = (p.split("Answer: ")[1] + o).split("\n")[0]
        gold = STEP.findall(r["solution"])
        right += f"The answer is {r['answer']}." in text
        for k, (a, op, b, c) in enumerate(STEP.findall(text)):
            kind = "x" if op == "*" else ("hard" if int(b) >= 10 else "easy")
            s = stats.setdefault(kind, [0, 0, 0])
            s[0] += 1
            s[1] += k < len(gold) and (a, op, b) == gold[k][:3]
            s[2] += eval(f"{a}{op}{b}") == int(c)  # noqa: S307 (digits and one operator, from the regex)
    print("task acc (worked forced)", right / len(rows))
    for kind, (m, copied, arith) in stats.items():
        print(kind, m, "copy ok", round(copied / m, 3), "arith ok", round(arith / m, 3))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100)

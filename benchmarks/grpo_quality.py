"""Quality-bar experiment (by hand, 1-5 min on 2 CPU cores): does GRPO raise the held-out reward over its SFT start?

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/grpo_quality.py OUT_DIR SFT_STEPS [grpo key=value ...]
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/grpo_quality.py /tmp/q 200 max_steps=150 max_completion_length=24

A tiny Llama (hidden 128, 4 layers, ~1.09M params) is SFT'd from random init on 150 additions
"What is a + b?" (a, b in 1..20), then GRPO'd on 150 other additions; the greedy `world` reward on
100 held-out additions is printed before and after (also in OUT_DIR/*/manifest.json). The README's
"Post-training quality bar" table quotes it.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path


def row(a: int, b: int) -> dict:
    return {"prompt": f"What is {a} + {b}?", "response": f"{a} + {b} = {a + b}. The answer is {a + b}.",
            "answer": str(a + b), "kind": "arith"}


def main(out: Path, sft_steps: str, grpo_overrides: list[str]) -> None:
    import torch

    from remit.config import load_config
    from remit.manifest import read_manifest
    from remit.models import ModelConfig, param_count, train_tokenizer
    from remit.posttrain import grpo, sft

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(a, b) for a in range(1, 21) for b in range(1, 21)]
    random.Random(0).shuffle(pairs)
    for name, part in (("eval", pairs[:100]), ("rl", pairs[100:250]), ("sft", pairs[250:])):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(row(a, b)) + "\n" for a, b in part), encoding="utf-8")
    base = out / "base"
    if not base.exists():
        texts = [f"{a} + {b} = {a + b}. The answer is {a + b}. What is {a} + {b}?" for a in range(41) for b in range(41)]
        tok = train_tokenizer(texts, 320)
        model = ModelConfig(arch="llama", hidden_size=128, num_layers=4, num_heads=4).build(tok, seed=0)
        print("params", param_count(model), "vocab", len(tok))
        model.save_pretrained(base)
        tok.save_pretrained(base)
    ev = [f"eval.data={out / 'eval.jsonl'}", "eval.n=100", "eval.rewards=[world]"]
    sft_dir = out / f"sft{sft_steps}"
    t = time.time()
    sft.run(load_config(sft.SFTStageConfig, None, [
        f"model={base}", f"data={out / 'sft.jsonl'}", f"out={sft_dir}", "device=cpu", f"max_steps={sft_steps}",
        "batch_size=32", "learning_rate=2e-3", "logging_steps=25", *ev]))
    print("SFT wall", round(time.time() - t, 1), read_manifest(sft_dir)["eval"])
    grpo_dir = out / ("grpo_" + "_".join(grpo_overrides))
    t = time.time()
    grpo.run(load_config(grpo.GRPOStageConfig, None, [
        f"model={sft_dir}", f"data={out / 'rl.jsonl'}", f"out={grpo_dir}", "device=cpu", "rewards=[world]",
        "logging_steps=5", *ev, *grpo_overrides]))
    m = read_manifest(grpo_dir)
    print("GRPO wall", round(time.time() - t, 1), "held-out", m["eval"]["pre"], "->", m["eval"]["post"],
          "train reward", m["train_reward_first"], "->", m["train_reward_last"],
          "frac_reward_zero_std", m["frac_reward_zero_std"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Does GRPO raise the held-out reward of a tiny SFT'd Llama?")
    ap.add_argument("out", type=Path, help="work folder (data, base model, the SFT and GRPO outputs)")
    ap.add_argument("sft_steps", help="SFT steps from random init (200 in the README)")
    ap.add_argument("grpo", nargs="*", metavar="key=value", help="overrides of the GRPO stage config")
    args = ap.parse_args()
    main(args.out, args.sft_steps, args.grpo)

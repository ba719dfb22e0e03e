"""Mid-training text with chat-formatted tasks: the flywheel experiment's midtrain.jsonl, a share of its
solved-task documents rewritten as one-turn chats in the post-training format (the chat template of P's
tokenizer), as real mid-training mixes contain instruction data.

    python benchmarks/flywheel/chatmix.py runs/flywheel-exp --frac 0.5     # -> <work>/chatmix/midtrain.jsonl
    python benchmarks/flywheel/chatmix.py runs/flywheel-exp --chat-eval chat-remit:chat-vanilla chat-remit:chat-sft
    python benchmarks/flywheel/chatmix.py runs/flywheel-exp --posttrain chat-remit chat-sft chat-vanilla
    python benchmarks/flywheel/chatmix.py runs/flywheel-exp --post-compare chat-remit:chat-vanilla chat-remit:chat-sft

Every ``Question: q\\nAnswer: a`` pair of a chosen document becomes ``chat([user: q, assistant: a])``; the
other documents (stories, facts, the unchosen task documents) are kept as they are. Used with
``variant.py`` (``data.sources=[{path: <work>/chatmix/midtrain.jsonl}]``) to ask whether the RL reference's
chat-format knowledge ("work the steps") reaches the base model through ReMiT when the data shows that format.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

QA = re.compile(r"Question: (.*?)\nAnswer: (.*?)(?=\n\nQuestion: |\Z)", re.S)


def chatmix(work: Path, frac: float, seed: int = 0) -> Path:
    from remit.models import load_tokenizer

    tok = load_tokenizer(work / "shared" / "pretrain")
    src = work / "seed0" / "world" / "midtrain.jsonl"
    rng = random.Random(seed)
    out = work / "chatmix" / "midtrain.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    n = {"docs": 0, "task_docs": 0, "chat_docs": 0, "chat_pairs": 0}
    with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for line in f:
            text = json.loads(line)["text"]
            n["docs"] += 1
            pairs = QA.findall(text) if text.startswith("Question: ") else []
            if pairs:
                n["task_docs"] += 1
                if rng.random() < frac:
                    text = "\n\n".join(tok.apply_chat_template([{"role": "user", "content": q},
                                                                {"role": "assistant", "content": a}], tokenize=False)
                                       for q, a in pairs)
                    n["chat_docs"] += 1
                    n["chat_pairs"] += len(pairs)
            g.write(json.dumps({"text": text}) + "\n")
    (out.parent / "counts.json").write_text(json.dumps({"frac": frac, "seed": seed, **n}, indent=1) + "\n")
    return out


def chat_eval(work: Path, seeds: list[int], labels: list[str]) -> dict:
    """Base models asked the held-out questions as chats (``chat=true``, the question itself, greedy): per arm
    and seed the per-task exact match, through ``remit eval`` (each seed's base eval config, model replaced)."""
    from run import remit

    out = {}
    for s in seeds:
        base = work / f"seed{s}" / "eval-vanilla-world" / "config.yaml"
        for label in labels:
            dest = work / f"seed{s}" / f"eval-{label}-chat"
            remit(["eval", "--config", str(base), f"model={work / f'seed{s}' / f'midtrain-{label}'}",
                   f"out_dir={dest}", "chat=true", "world_template='{prompt}'"], work / "logs" / f"chat-eval-{label}.log")
            res = json.loads((dest / "results.json").read_text())
            out[f"seed{s}/{label}"] = res["per_example"]["world"]["exact_match"]
    return out


def posttrain(work: Path, seed: int, label: str) -> list[float]:
    """SFT -> DPO -> GRPO of ``midtrain-<label>`` exactly as the seed's vanilla chain (its manifest's config);
    returns the per-prompt held-out rewards after GRPO."""
    import yaml
    from run import remit

    cfg = json.loads((work / f"seed{seed}" / "post-vanilla" / "manifest.json").read_text())["config"]
    path = work / "logs" / f"post-{label}-seed{seed}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = work / f"seed{seed}" / f"post-{label}"
    remit(["posttrain", "--config", str(path), f"model={work / f'seed{seed}' / f'midtrain-{label}'}", f"out={out}"],
          work / "logs" / f"post-{label}.log")
    return json.loads((out / "grpo" / "manifest.json").read_text())["eval"]["post_values"]


def post_compare(work: Path, seeds: list[int], pairs: list[tuple[str, str]], results: Path) -> Path:
    """Held-out reward after SFT and after GRPO of each post-trained arm (``post-<label>``; ``vanilla`` is the
    experiment's own chain), and paired (seed, prompt) deltas for ``pairs``."""
    from analyze import paired

    def values(label: str, stage: str) -> list[list[float]]:
        return [json.loads((work / f"seed{s}" / f"post-{label}" / stage / "manifest.json").read_text())["eval"]
                ["post_values"] for s in seeds]

    labels = sorted({x for p in pairs for x in p})
    doc = {"seeds": seeds, "reward": {st: {lab: sum(map(sum, values(lab, st))) / sum(map(len, values(lab, st)))
                                           for lab in labels} for st in ("sft", "grpo")},
           "vs": {st: {f"{a} vs {b}": paired(values(a, st), values(b, st)) for a, b in pairs} for st in ("sft", "grpo")}}
    results.mkdir(parents=True, exist_ok=True)
    (results / "chatmix-posttrain.json").write_text(json.dumps(doc, indent=1) + "\n")
    return results / "chatmix-posttrain.json"


def compare(work: Path, seeds: list[int], pairs: list[tuple[str, str]], results: Path) -> Path:
    """Chat-format accuracy of each arm, and the paired (seed, task) deltas of ``pairs``."""
    from analyze import paired

    labels = sorted({x for p in pairs for x in p})
    acc = chat_eval(work, seeds, labels)
    doc = {"seeds": seeds, "acc": {lab: sum(sum(acc[f"seed{s}/{lab}"]) for s in seeds) /
                                   sum(len(acc[f"seed{s}/{lab}"]) for s in seeds) for lab in labels},
           "vs": {f"{a} vs {b}": paired([acc[f"seed{s}/{a}"] for s in seeds], [acc[f"seed{s}/{b}"] for s in seeds])
                  for a, b in pairs}}
    results.mkdir(parents=True, exist_ok=True)
    (results / "chatmix-chat-eval.json").write_text(json.dumps(doc, indent=1) + "\n")
    return results / "chatmix-chat-eval.json"


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--frac", type=float, default=0.5)
    ap.add_argument("--chat-eval", nargs="+", metavar="A:B", help="compare arms A and B on chat-format questions")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--posttrain", nargs="+", metavar="ARM", help="post-train these arms (every seed)")
    ap.add_argument("--post-compare", nargs="+", metavar="A:B", help="compare post-trained arms' held-out reward")
    ap.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "results" / "flywheel"))
    a = ap.parse_args()
    if a.posttrain:
        for arm in a.posttrain:
            for s in a.seeds:
                posttrain(Path(a.work).resolve(), s, arm)
    elif a.post_compare:
        print(post_compare(Path(a.work).resolve(), a.seeds, [tuple(x.split(":")) for x in a.post_compare],
                           Path(a.results)))
    elif a.chat_eval:
        print(compare(Path(a.work).resolve(), a.seeds, [tuple(x.split(":")) for x in a.chat_eval], Path(a.results)))
    else:
        print(chatmix(Path(a.work), a.frac))

"""Sample efficiency: held-out accuracy and gold bits per byte along a mid-training run (issue #11).

For the kept checkpoints of ``midtrain-vanilla`` and ``midtrain-remit-r1`` of every seed (plus step 0 = the
pre-annealing checkpoint and the final model), the base model is scored on the world's held-out tasks
with the pre-training prompt (``Question: ...\\nAnswer:``, greedy, exact answer) and on the bits per byte
of the worked gold solutions. Writes ``<work>/curves.json``.

    python benchmarks/flywheel/curve.py runs/flywheel-exp --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

TEMPLATE = "Question: {prompt}\nAnswer:"
LABELS = ("vanilla", "remit-r1")


def _rows(world: Path) -> list[dict]:
    return [json.loads(x) for x in (world / "eval.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]


def score(model, tok, rows: list[dict], *, batch_size: int = 125, max_new_tokens: int = 64) -> dict:
    """{"acc", "bpb", "correct": [0/1 per row], "nll_bits": [...], "bytes": [...]} of a base model."""
    import torch

    from remit.objectives import token_logps
    from remit.world.checkers import check_answer

    model.eval()
    correct, bits, nbytes = [], [], []
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            prompts = [TEMPLATE.format(prompt=r["prompt"]) for r in chunk]
            ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
            width = max(map(len, ids))
            x = torch.tensor([[pad] * (width - len(s)) + s for s in ids])
            att = (torch.arange(width)[None, :] >= torch.tensor([width - len(s) for s in ids])[:, None]).long()
            out = model.generate(input_ids=x, attention_mask=att, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=pad, eos_token_id=tok.eos_token_id)
            for r, o in zip(chunk, out):
                text = tok.decode(o[width:], skip_special_tokens=True).split("\n\n")[0].split("Question:")[0]
                correct.append(1.0 if check_answer(r["kind"], text, r["answer"]) else 0.0)
            for r, p in zip(chunk, prompts):
                ctx = tok(p, add_special_tokens=False)["input_ids"]
                tgt = tok(" " + r["solution"], add_special_tokens=False)["input_ids"]
                seq = torch.tensor([ctx + tgt])
                lp = token_logps(model(input_ids=seq).logits[0, :-1], seq[0, 1:])[-len(tgt):]
                bits.append(-float(lp.sum()) / math.log(2))
                nbytes.append(len((" " + r["solution"]).encode("utf-8")))
    return {"acc": sum(correct) / len(correct), "bpb": sum(bits) / sum(nbytes), "correct": correct,
            "bits": bits, "bytes": nbytes}


def run_curve(mid_dir: Path, rows: list[dict]) -> dict:
    import yaml

    from remit.midtrain.checkpoint import list_checkpoints, load_hf_state
    from remit.models import load_model, load_tokenizer

    cfg = yaml.safe_load((mid_dir / "config.yaml").read_text())
    per_step = int(cfg["optim"]["batch_size"]) * int(cfg["data"]["seq_len"])
    tok = load_tokenizer(mid_dir)
    points = [{"step": 0, "tokens": 0, **score(load_model(cfg["model"]["path"], device="cpu"), tok, rows)}]
    model = load_model(mid_dir, device="cpu")
    for step, path in list_checkpoints(mid_dir / "checkpoints"):
        model.load_state_dict(load_hf_state(path))
        points.append({"step": step, "tokens": step * per_step, **score(model, tok, rows)})
    manifest = json.loads((mid_dir / "manifest.json").read_text())
    total = int(manifest.get("tokens") or 0)
    if total and points[-1]["tokens"] < total:
        points.append({"step": total // per_step, "tokens": total, **score(load_model(mid_dir, device="cpu"), tok,
                                                                            rows)})
    return {"points": points}


def per_arm(work: Path, seeds: list[int], labels, out_path: Path, compute) -> Path:
    """``out_path["seed<s>/<label>"] = compute(mid_dir, held-out rows)`` for every seed and arm, skipping the
    entries already computed for the same finished mid-training (its ``finished_at``)."""
    done = json.loads(out_path.read_text()) if out_path.is_file() else {}
    for s in seeds:
        rows = _rows(work / f"seed{s}" / "world")
        for label in labels:
            mid = work / f"seed{s}" / f"midtrain-{label}"
            stamp = json.loads((mid / "manifest.json").read_text()).get("finished_at")
            if done.get(f"seed{s}/{label}", {}).get("finished_at") != stamp:
                done[f"seed{s}/{label}"] = {"finished_at": stamp, **compute(mid, rows)}
                out_path.write_text(json.dumps(done))
    return out_path


def curves(work: Path, seeds: list[int]) -> Path:
    return per_arm(work, seeds, LABELS, work / "curves.json", run_curve)


def cli(fn) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    a = ap.parse_args()
    print(fn(Path(a.work), a.seeds))


if __name__ == "__main__":
    cli(curves)

"""Held-out gold bits per byte of a model and of a mid-training run's intermediate checkpoints.

``heldout_gold.jsonl`` rows are ``{"context", "target", "src"}`` (GSM8K / MATH *test* questions and their gold
solutions: evaluation only). bpb = sum of the target tokens' negative log-likelihood (nats) / ln 2 / UTF-8 bytes
of the scored target, per source and over all rows, in a window of ``WINDOW`` tokens.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

WINDOW = 512  # tokens scored at once (context left-truncated, target cut): near the training length


def _rows(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _score(model, tok, rows: list[dict[str, Any]]) -> dict[str, float]:
    import torch

    from remit.objectives import token_logps

    window = min(WINDOW, int(getattr(model.config, "max_position_embeddings", WINDOW)))
    nll: dict[str, float] = {}
    nbytes: dict[str, int] = {}
    model.eval()
    with torch.no_grad():
        for r in rows:
            ctx = tok(r["context"], add_special_tokens=False)["input_ids"]
            full = tok(r["target"], add_special_tokens=False)["input_ids"]
            tgt = full[: window - 1]
            ids = (ctx + tgt)[-window:]
            x = torch.tensor([ids], device=model.device)
            lp = token_logps(model(input_ids=x).logits[0, :-1], x[0, 1:])[-len(tgt):]
            # bytes of the scored part (the whole target unless truncated)
            text = tok.decode(tgt) if len(tgt) < len(full) else r["target"]
            for key in (r.get("src", "all"), "all"):
                nll[key] = nll.get(key, 0.0) - float(lp.sum())
                nbytes[key] = nbytes.get(key, 0) + len(text.encode("utf-8"))
    return {k: nll[k] / math.log(2) / nbytes[k] for k in nll}


def model_bpb(model_dir: str, gold_path: str, device: str = "cpu") -> dict[str, float]:
    from remit.models import load_model, load_tokenizer

    return _score(load_model(model_dir, device=device), load_tokenizer(model_dir), _rows(gold_path))


def checkpoint_curve(mid_dir: str, gold_path: str, device: str = "cpu") -> dict[str, Any]:
    """bpb at step 0 (the starting model), at every kept checkpoint and at the end of the run."""
    import yaml

    from remit.midtrain.checkpoint import list_checkpoints, load_hf_state
    from remit.models import load_model, load_tokenizer

    cfg = yaml.safe_load((Path(mid_dir) / "config.yaml").read_text())
    tokens_per_step = int(cfg["optim"]["batch_size"]) * int(cfg["data"]["seq_len"])
    manifest = json.loads((Path(mid_dir) / "manifest.json").read_text())
    rows = _rows(gold_path)
    tok = load_tokenizer(mid_dir)
    points = [{"step": 0, "tokens": 0, "bpb": _score(load_model(cfg["model"]["path"], device=device), tok, rows)}]
    model = load_model(mid_dir, device=device)
    for step, path in list_checkpoints(Path(mid_dir) / "checkpoints"):
        model.load_state_dict(load_hf_state(path, map_location=device))
        points.append({"step": step, "tokens": step * tokens_per_step, "bpb": _score(model, tok, rows)})
    final = load_model(mid_dir, device=device)
    total = int(manifest.get("tokens") or 0) or (points[-1]["tokens"] if points else 0)
    last_step = total // tokens_per_step if tokens_per_step else None
    if not points or points[-1]["step"] != last_step:
        points.append({"step": last_step, "tokens": total, "bpb": _score(final, tok, rows)})
    return {"mid_dir": mid_dir, "method": cfg.get("method", {}).get("name"), "seed": cfg.get("seed"),
            "points": points}

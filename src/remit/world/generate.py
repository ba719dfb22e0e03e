"""Build every split of the embedded world from one seed (pure Python, deterministic).

Splits: ``pretrain`` and ``midtrain`` (``{"text"}`` documents), ``sft`` (``{"prompt", "response",
"kind", "answer"}``; a share ``direct_frac`` of the solutions in these three splits is the
answer alone, the rest worked step by step), ``rl`` (``{"prompt", "answer", "kind"}``) and ``eval`` (the same plus the worked
``"solution"``, scored for bits per byte). A share ``midtrain_chat_frac`` of the solved-task documents of
``midtrain`` has every ``Question: q / Answer: a`` pair written as a one-turn chat in remit's chat template
(``remit.models.tokenizer.chat_text``: what a tokenizer trained by the pretrain stage renders; a start
checkpoint with another template sees remit's). Held-out ``eval``
prompts are drawn first; no training split (including the worked solutions inside the
pretrain/midtrain text) ever contains one of them.

    from remit.world import WorldConfig, generate_world
    world = generate_world(WorldConfig(seed=0))
    world["eval"][0]  # {"prompt": ..., "answer": ..., "kind": ...}
"""

from __future__ import annotations

import random
from typing import Any

from remit.errors import ConfigError
from remit.models.tokenizer import chat_text
from remit.world.config import WorldConfig
from remit.world.tasks import Task, final_line, make_task, with_slip
from remit.world.text import general_doc

SPLITS = ("pretrain", "midtrain", "sft", "rl", "eval")


def _rng(seed: int, name: str) -> random.Random:
    # String seeds are hashed with sha512 by `random`, so streams are stable across runs and machines.
    return random.Random(f"remit-world/{seed}/{name}")


def qa_text(task: Task, solution: str | None = None) -> str:
    """How a solved task appears inside pretrain/midtrain documents."""
    return f"Question: {task.prompt}\nAnswer: {task.solution if solution is None else solution}"


def written(task: Task, rng: random.Random, direct_frac: float, slip: float = 0.0,
            slip_rng: random.Random | None = None) -> str:
    """The solution as the training data shows it: worked, or (with probability ``direct_frac``) the
    answer alone. Real corpora and instruction sets mix both; which one a model picks when it answers
    is what post-training can change (docs/world.md). With ``slip`` > 0 a worked solution carries one
    arithmetic slip with that probability (:func:`~remit.world.tasks.with_slip`, drawn from ``slip_rng``)."""
    if direct_frac > 0 and rng.random() < direct_frac:
        return final_line(task.answer)
    if slip > 0 and slip_rng is not None and slip_rng.random() < slip:
        return with_slip(task, slip_rng)
    return task.solution


class _TaskSource:
    """Draws tasks of the configured kinds, never one whose prompt is held out."""

    def __init__(self, rng: random.Random, cfg: WorldConfig, forbidden: set[str], split: str = "tasks"):
        self.rng, self.kinds, self.difficulty, self.forbidden = rng, list(cfg.kinds), cfg.difficulty, forbidden
        self.options = {k: cfg.task_options(k, split) for k in self.kinds}

    def draw(self, kind: str | None = None) -> Task:
        for _ in range(1000):
            k = kind or self.rng.choice(self.kinds)
            t = make_task(k, self.rng, self.difficulty, **self.options[k])
            if t.prompt not in self.forbidden:
                return t
        raise RuntimeError("world: could not draw a task outside the eval set in 1000 tries")


def held_out(cfg: WorldConfig) -> list[dict[str, str]]:
    """``n_eval`` distinct prompts per kind, drawn from their own stream."""
    out: list[dict[str, str]] = []
    for kind in cfg.kinds:
        rng, seen = _rng(cfg.seed, f"eval/{kind}"), set()
        tries = 0
        while len(seen) < cfg.n_eval:
            tries += 1
            if tries > 200 * max(cfg.n_eval, 1):
                raise ConfigError(f"n_eval={cfg.n_eval}: kind '{kind}' at difficulty {cfg.difficulty} has too few "
                                  "distinct prompts; lower n_eval or raise difficulty")
            t = make_task(kind, rng, cfg.difficulty, **cfg.task_options(kind))
            if t.prompt in seen:
                continue
            seen.add(t.prompt)
            out.append({"prompt": t.prompt, "answer": t.answer, "kind": kind, "solution": t.solution})
    return out


def _reasoning_pairs(src: _TaskSource, n: int, style: random.Random, direct_frac: float, slip: float = 0.0,
                     slip_rng: random.Random | None = None) -> list[tuple[Task, str]]:
    return [(t, written(t, style, direct_frac, slip, slip_rng)) for t in (src.draw() for _ in range(n))]


def _docs(cfg: WorldConfig, name: str, n_docs: int, reasoning_frac: float, qa_range: tuple[int, int],
          forbidden: set[str]) -> list[list[tuple[Task, str]] | str]:
    """Each document: its solved tasks (task, solution as written), or a general text."""
    rng = _rng(cfg.seed, name)
    src = _TaskSource(_rng(cfg.seed, name + "/tasks"), cfg, forbidden, name)
    style, slips = _rng(cfg.seed, name + "/style"), _rng(cfg.seed, name + "/slip")
    slip = 0.0 if name == "pretrain" else cfg.slip_frac
    docs: list[list[tuple[Task, str]] | str] = []
    for _ in range(n_docs):
        if cfg.kinds and rng.random() < reasoning_frac:
            docs.append(_reasoning_pairs(src, rng.randint(*qa_range), style, cfg.direct_frac, slip, slips))
        else:
            docs.append(general_doc(rng, cfg.general_doc_chars))
    return docs


def _texts(docs: list[list[tuple[Task, str]] | str], chat_frac: float = 0.0, seed: int | str = 0) -> list[dict[str, str]]:
    """``{"text"}`` rows; a share ``chat_frac`` of the solved-task documents written as one-turn chats.

    The chat draws come from ``random.Random(seed)``, one per solved-task document in order: the stream of
    the former ``benchmarks/flywheel/chatmix.py``, so its committed chat-mix file (world seed 0, 0.5) is
    reproduced byte for byte."""
    rng = random.Random(seed)
    rows = []
    for d in docs:
        if isinstance(d, str):
            rows.append({"text": d})
        elif chat_frac > 0 and rng.random() < chat_frac:
            rows.append({"text": "\n\n".join(chat_text([{"role": "user", "content": t.prompt},
                                                         {"role": "assistant", "content": a}]) for t, a in d)})
        else:
            rows.append({"text": "\n\n".join(qa_text(t, a) for t, a in d)})
    return rows


def generate_world(cfg: WorldConfig | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every split of the world as lists of JSON-able dicts (see the module docstring)."""
    if cfg is None:
        cfg = WorldConfig()
    eval_rows = held_out(cfg)
    forbidden = {r["prompt"] for r in eval_rows}
    world: dict[str, list[dict[str, Any]]] = {"eval": eval_rows}
    world["pretrain"] = _texts(_docs(cfg, "pretrain", cfg.n_pretrain_docs, cfg.pretrain_reasoning_frac,
                                     tuple(cfg.qa_per_doc), forbidden), cfg.pretrain_chat_frac,
                               f"remit-world/{cfg.seed}/pretrain/chat")
    world["midtrain"] = _texts(_docs(cfg, "midtrain", cfg.n_midtrain_docs, 1.0 - cfg.midtrain_general_frac,
                                     tuple(cfg.qa_per_doc_midtrain), forbidden), cfg.midtrain_chat_frac, cfg.seed)
    kinds = list(cfg.kinds)
    sft_src = _TaskSource(_rng(cfg.seed, "sft"), cfg, forbidden)
    # Kinds are cycled so every kind gets the same share of SFT and RL prompts.
    style, slips = _rng(cfg.seed, "sft/style"), _rng(cfg.seed, "sft/slip")
    sft_direct = cfg.direct_frac if cfg.sft_direct_frac is None else cfg.sft_direct_frac
    world["sft"] = [
        {"prompt": t.prompt, "response": written(t, style, sft_direct, cfg.slip_frac, slips), "kind": t.kind,
         "answer": t.answer}
        for t in (sft_src.draw(kinds[i % len(kinds)]) for i in range(cfg.n_sft if kinds else 0))
    ]
    rl_src = _TaskSource(_rng(cfg.seed, "rl"), cfg, forbidden)
    world["rl"] = [
        {"prompt": t.prompt, "answer": t.answer, "kind": t.kind}
        for t in (rl_src.draw(kinds[i % len(kinds)]) for i in range(cfg.n_rl if kinds else 0))
    ]
    return {k: world[k] for k in SPLITS}

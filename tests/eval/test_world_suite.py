"""The world suite: exact answers via remit.world.check_answer, bpb on gold, reproducible, ranks checkpoints."""

from __future__ import annotations

import json
import math

import pytest

from remit.errors import ConfigError
from remit.eval import scoring
from remit.eval.results import load_results


def test_world_results_scores_with_the_world_checker():
    doc = {"kind": "arith", "answer": "7"}
    assert scoring.world_results(doc, ["3 + 4 = 7. The answer is 7."]) == {"exact_match": 1.0}
    assert scoring.world_results(doc, ["3 + 4 = 8. The answer is 8."]) == {"exact_match": 0.0}
    assert scoring.world_results(doc, ["no final line"]) == {"exact_match": 0.0}


def test_world_suite_schema_and_ranking(world_runs, mini_world):
    n_rows = sum(1 for _ in open(mini_world / "eval.jsonl", encoding="utf-8"))
    rand, trained = (load_results(world_runs[k]) for k in ("random", "trained"))
    for res in (rand, trained):
        assert res["suite"] == "world"
        t = res["tasks"]["world"]
        assert set(t) == {"exact_match", "bpb", "token_loss"}
        for metric, s in t.items():
            assert s["n"] == n_rows
            vals = res["per_example"]["world"][metric]
            assert len(vals) == n_rows
            assert math.isclose(s["value"], sum(vals) / n_rows, rel_tol=1e-12)
        assert 0.0 <= t["exact_match"]["value"] <= 1.0
        assert t["bpb"]["value"] > 0 and t["token_loss"]["value"] > 0
        assert (world_runs["random"] / "results.md").read_text().count("| world |") == 3
    # A random-init model's per-token loss is about ln(vocab); a few dozen steps on world text must beat it.
    assert rand["tasks"]["world"]["token_loss"]["value"] > 5.0  # ln(512) = 6.2
    assert trained["tasks"]["world"]["bpb"]["value"] < rand["tasks"]["world"]["bpb"]["value"] - 0.5
    assert trained["tasks"]["world"]["token_loss"]["value"] < rand["tasks"]["world"]["token_loss"]["value"]


def test_world_suite_is_reproducible(world_runs, tiny_model_dir, mini_world, tmp_path):
    from remit.eval.run import EvalConfig, evaluate

    again = evaluate(EvalConfig(model=str(tiny_model_dir), suite="world", world_dir=str(mini_world),
                                world_max_gen_toks=24))
    first = load_results(world_runs["random"])
    assert again["per_example"] == first["per_example"]


def test_style_results_closed_form():
    r = scoring.world_style_results({}, [(math.log(0.3), False), (math.log(0.1), True)])
    assert math.isclose(r["p_worked"], 0.75) and math.isclose(r["p_worked_start"], 0.3)
    assert math.isclose(r["p_direct_start"], 0.1)
    assert scoring.world_starts("9", "7 + 5 = 12. 12 - 3 = 9. The answer is 9.") == {
        "worked_start": "7", "direct_start": "The", "direct_prefix": "The answer is"}
    doc = {"kind": "chain", "answer": "9", "worked_start": "7", "direct_prefix": "The answer is"}
    assert scoring.world_forced_results("worked")(doc, [" + 2 = 9. The answer is 9."]) == {"worked_exact_match": 1.0}
    assert scoring.world_forced_results("direct")(doc, [" 9."]) == {"direct_exact_match": 1.0}
    assert scoring.world_forced_results("direct")(doc, [" 8."]) == {"direct_exact_match": 0.0}


def _reference_probe(model_dir, world_dir, chat: bool) -> dict[str, list[float]]:
    """The probe computed without lm-eval: the start probabilities from one forward pass, the forced answers
    from HF generate (greedy) on the prompt + the forced start."""
    import torch

    from remit.models import load_model, load_tokenizer
    from remit.world import check_answer

    tok, model = load_tokenizer(model_dir), load_model(model_dir, device="cpu").eval()
    rows = [json.loads(x) for x in open(world_dir / "eval.jsonl", encoding="utf-8")]
    out: dict[str, list] = {"p_worked": [], "worked_exact_match": [], "direct_exact_match": [], "texts": []}

    def logp(ctx: str, cont: str) -> float:
        a, whole = tok(ctx)["input_ids"], tok(ctx + cont)["input_ids"]
        x = torch.tensor([whole])
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=x).logits[0, :-1].double(), -1)
        return float(sum(lp[i - 1, whole[i]] for i in range(len(a), len(whole))))

    def greedy(text: str) -> str:
        x = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=24, do_sample=False,
                               pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        s = tok.decode(y[0, x.shape[1]:], skip_special_tokens=True)
        return s.split("\n\n")[0].split("Question:")[0]

    for r in rows:
        if chat:
            ctx, sep = tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                               add_generation_prompt=True), ""
        else:
            ctx, sep = f"Question: {r['prompt']}\nAnswer:", " "
        w = r["solution"].split()[0]
        lw, ld = logp(ctx, sep + w), logp(ctx, sep + "The")
        out["p_worked"].append(1 / (1 + math.exp(ld - lw)))
        d = "The answer is"
        worked, direct = w + greedy(ctx + sep + w), d + greedy(ctx + sep + d)
        out["worked_exact_match"].append(float(check_answer(r["kind"], worked, r["answer"])))
        out["direct_exact_match"].append(float(check_answer(r["kind"], direct, r["answer"])))
        out["texts"] += [worked, direct]
    return out


def test_world_probe_matches_a_direct_computation(trained_model_dir, mini_world, monkeypatch):
    """world_probe=true: p_worked and the forced-start answers, in the pre-training and in the chat format,
    equal a computation that does not go through lm-eval (so the prompts and continuations are the ones meant)."""
    from remit.eval.run import EvalConfig, evaluate

    checked: list[str] = []  # every forced answer as it is checked (the start + lm-eval's greedy continuation)
    forced = scoring.world_forced_results

    def spy(style):
        fn = forced(style)

        def wrapped(doc, results):
            checked.append((order[doc["prompt"]], style, doc["worked_start" if style == "worked" else "direct_prefix"] + results[0]))
            return fn(doc, results)

        return wrapped

    monkeypatch.setattr(scoring, "world_forced_results", spy)
    order = {json.loads(x)["prompt"]: i for i, x in enumerate(open(mini_world / "eval.jsonl", encoding="utf-8"))}
    p_worked = {}
    for chat, template in ((False, "Question: {prompt}\nAnswer:"), (True, "{prompt}")):
        checked.clear()
        res = evaluate(EvalConfig(model=str(trained_model_dir), suite="world", world_dir=str(mini_world),
                                  world_max_gen_toks=24, world_probe=True, chat=chat, world_template=template))
        got = res["per_example"]["world"]
        assert set(got) == {"exact_match", "bpb", "token_loss", "p_worked", "p_worked_start", "p_direct_start",
                            "worked_exact_match", "direct_exact_match"}
        ref = _reference_probe(trained_model_dir, mini_world, chat)
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(got["p_worked"], ref["p_worked"], strict=True))
        assert got["worked_exact_match"] == ref["worked_exact_match"]
        assert got["direct_exact_match"] == ref["direct_exact_match"]
        assert [t for _, _, t in sorted(checked, key=lambda c: (c[0], c[1] == "direct"))] == ref["texts"]
        assert all(0 < p < 1 for p in got["p_worked_start"] + got["p_direct_start"])
        p_worked[chat] = got["p_worked"]
    # the format moves the preference: this model (trained on plain text only) rarely starts a chat answer worked
    assert max(p_worked[True]) < 0.2 < min(p_worked[False])
    # world_probe_style_only: the same teacher-forced numbers, without the two forced generations
    res = evaluate(EvalConfig(model=str(trained_model_dir), suite="world", world_dir=str(mini_world),
                              world_max_gen_toks=24, world_probe=True, world_probe_style_only=True, chat=True,
                              world_template="{prompt}"))
    got = res["per_example"]["world"]
    assert set(got) == {"exact_match", "bpb", "token_loss", "p_worked", "p_worked_start", "p_direct_start"}
    assert got["p_worked"] == p_worked[True]
    with pytest.raises(ConfigError, match="world_probe_style_only=true needs world_probe=true"):
        EvalConfig(model="m", suite="world", world_probe_style_only=True).validate()

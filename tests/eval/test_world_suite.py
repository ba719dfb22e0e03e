"""The world suite: exact answers via remit.world.check_answer, bpb on gold, reproducible, ranks checkpoints."""

from __future__ import annotations

import math

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

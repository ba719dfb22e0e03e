"""Gold-solution log-likelihood requests carry the delimiter: lm-eval does not add it to a loglikelihood
continuation, so without it the first scored token (``Answer:5``) is one the model never sees there."""

from __future__ import annotations

import json

from remit.eval.scoring import with_delimiter


def test_with_delimiter_prefixes_the_target():
    assert with_delimiter(lambda d: d["s"], " ")({"s": "5 - 1 = 4."}) == " 5 - 1 = 4."
    assert with_delimiter(lambda d: d["s"], "")({"s": "x"}) == "x"


def test_world_gold_request_is_the_training_text(mini_world, tiny_tokenizer):
    from remit.eval.tasks import BuildOptions, build_tasks

    opts = BuildOptions(world_dir=str(mini_world), max_length=256, tokenizer=tiny_tokenizer)
    task = build_tasks("world", opts)["world:gold"]
    task.build_all_requests(limit=3, rank=0, world_size=1)
    rows = [json.loads(x) for x in (mini_world / "eval.jsonl").read_text().splitlines()]
    by_prompt = {f"Question: {r['prompt']}\nAnswer:": r for r in rows}
    for inst in task.instances:
        ctx, cont = inst.arguments
        r = by_prompt[ctx]
        assert cont == " " + r["solution"]
        # what the model is scored on is exactly the pre-training document's text
        assert ctx + cont == f"Question: {r['prompt']}\nAnswer: {r['solution']}"
    assert len(task.instances) == 3

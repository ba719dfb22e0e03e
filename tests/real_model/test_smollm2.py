"""SmolLM2-135M-Instruct (a GGUF path) through every stage: load, chat template, ReMiT, score-reference,
SFT/DPO/GRPO with its own template, generation, save/reload (conftest.py: fetch, skip, budget)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.real_model, pytest.mark.xdist_group("real_model")]

SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def test_gguf_loads_as_a_plain_fp32_llama(smollm2_gguf, smollm2_dir, smollm2):
    from transformers import AutoModelForCausalLM, GgufConfig

    from remit.models import load_model
    from remit.models.gguf import INFO_FILE, gguf_sha256

    model, tok = smollm2
    cfg = model.config
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == (30, 576, 49_152)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    assert getattr(model, "hf_quantizer", None) is None and "quantization_config" not in cfg.to_dict()
    info = json.loads((smollm2_dir / INFO_FILE).read_text())
    assert info["sha256"] == gguf_sha256(smollm2_gguf) == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    # a folder holding the .gguf is the same model; the converted weights are transformers' own dequantization
    ids = tok("The capital of France is")["input_ids"]
    again = load_model(smollm2_gguf.parent, device="cpu")
    direct = AutoModelForCausalLM.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name,
                                                  quantization_config=GgufConfig(dequantize=True), dtype=torch.float32)
    ref = _logits(model, ids)
    assert torch.equal(_logits(again, ids), ref) and torch.equal(_logits(direct.eval(), ids), ref)
    assert tok.decode(ref[-1].argmax()).strip() == "Paris"


def test_tokenizer_and_chat_template_round_trip(smollm2):
    _, tok = smollm2
    assert (tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")) == (1, 2)
    assert tok.eos_token == "<|im_end|>" and tok.model_max_length == 8192
    assert tok("Hello world")["input_ids"] == tok.encode("Hello world", add_special_tokens=False)  # no BOS added
    chat = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "2 + 3 = 5."}]
    text = tok.apply_chat_template(chat, tokenize=False)
    assert text == (SYSTEM + "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
                    "<|im_start|>assistant\n2 + 3 = 5.<|im_end|>\n")  # the template's default system prompt
    ids = tok.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]
    assert tok.decode(ids) == text and tok(text, add_special_tokens=False)["input_ids"] == ids
    with_system = [{"role": "system", "content": "Be brief."}, *chat]
    assert tok.apply_chat_template(with_system, tokenize=False).startswith("<|im_start|>system\nBe brief.<|im_end|>")


def _midtrain(tmp_path: Path, name: str, model: str, data: Path, method: str, *extra: str):
    from remit.config import load_config
    from remit.midtrain.config import MidtrainConfig
    from remit.midtrain.stage import run

    cfg = load_config(MidtrainConfig, None, [
        f"out_dir={tmp_path / name}", f"model.path={model}", f"data.sources=[{{path: '{data}'}}]",
        "data.seq_len=32", f"data.cache_dir={tmp_path / 'cache'}", "optim.batch_size=2", "optim.micro_batch_size=2",
        "optim.lr=1e-5", "max_steps=1", "logging.every=1", "logging.progress=false", "logging.tensorboard=false",
        "checkpoint_every=0", f"method.name={method}", "device=cpu", *extra])
    out = run(cfg)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()], out


def test_remit_step_with_itself_as_reference_online_and_cached(tmp_path, smollm2_gguf, real_texts):
    from remit.config import load_config
    from remit.manifest import read_manifest
    from remit.midtrain import score
    from remit.models.gguf import gguf_sha256

    ntp, _ = _midtrain(tmp_path, "ntp", str(smollm2_gguf), real_texts, "ntp")
    online, out = _midtrain(tmp_path, "online", str(smollm2_gguf), real_texts, "remit", f"reference.path={smollm2_gguf}")
    assert online[0]["w_mean"] == 1.0 and online[0]["w_std"] == 0.0  # identical policy and reference
    assert online[0]["loss"] == pytest.approx(ntp[0]["loss"], abs=1e-6) and 1.0 < ntp[0]["loss"] < 6.0
    gguf = read_manifest(out)["gguf"]
    assert gguf["model"]["sha256"] == gguf["reference"]["sha256"] == gguf_sha256(smollm2_gguf)
    cache = score.run(load_config(score.ScoreConfig, None, [
        f"reference={smollm2_gguf}", f"data.sources=[{{path: '{real_texts}'}}]", "data.seq_len=32",
        f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={tmp_path / 'ref_cache'}", "batch_size=4", "device=cpu"]))
    cached, _ = _midtrain(tmp_path, "cached", str(smollm2_gguf), real_texts, "remit", f"reference.cache={cache}")
    assert cached[0]["w_mean"] == 1.0 and cached[0]["w_std"] == 0.0  # the cache holds the online log-probs
    assert cached[0]["loss"] == pytest.approx(online[0]["loss"], abs=1e-6)


def test_posttrain_chain_and_generation_with_its_chat_template(tmp_path, smollm2_gguf, smollm2):
    from remit.config import load_config
    from remit.manifest import read_manifest
    from remit.models import load_model, load_tokenizer
    from remit.posttrain.chain import PosttrainConfig, run
    from remit.posttrain.generate import _eos_ids, _prompt_ids

    data = tmp_path / "data"
    data.mkdir()
    qa = [(a, b) for a, b in [(2, 3), (4, 5), (7, 1), (6, 2)]]
    (data / "sft.jsonl").write_text("".join(json.dumps({"prompt": f"What is {a} + {b}?",
                                                        "response": f"{a} + {b} = {a + b}."}) + "\n" for a, b in qa))
    (data / "rl.jsonl").write_text("".join(json.dumps({"prompt": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n"
                                           for a, b in qa))
    out = tmp_path / "post"
    cfg = load_config(PosttrainConfig, None, [
        f"model={smollm2_gguf}", f"data_dir={data}", f"out={out}", "device=cpu", "eval_data=none",
        "sft.max_steps=1", "sft.batch_size=2", "sft.max_length=64", "sft.logging_steps=1", "sft.learning_rate=1e-5",
        "dpo.max_steps=1", "dpo.batch_size=2", "dpo.limit=2", "dpo.samples_per_prompt=4", "dpo.pairs_per_prompt=1",
        "dpo.max_new_tokens=12", "dpo.temperature=1.0", "dpo.rewards=[real_rewards:even_length]",
        "dpo.logging_steps=1", "dpo.on_no_pairs=error",
        "grpo.max_steps=1", "grpo.batch_size=2", "grpo.num_generations=2", "grpo.max_completion_length=12",
        "grpo.rewards=[real_rewards:even_length]", "grpo.logging_steps=1", "grpo.temperature=1.0"])
    final = run(cfg)
    for stage in ("sft", "dpo", "grpo"):
        m = read_manifest(out / stage)
        assert m["steps"] == 1, stage
        if stage == "sft":
            assert m["gguf"]["model"]["path"] == str(smollm2_gguf)
        else:
            assert m["inputs"]["model"] == str(out / {"dpo": "sft", "grpo": "dpo"}[stage])
    assert read_manifest(out / "sft")["first_loss"] < 3.0  # an instruct model already knows these answers

    # generation with the chat template stops at <|im_end|>
    model, tok = smollm2
    prompt = _prompt_ids(tok, "What is 2 + 3? Answer in one short sentence.")
    assert tok.decode(prompt).startswith(SYSTEM)
    gen = model.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False, eos_token_id=_eos_ids(model, tok),
                         pad_token_id=tok.pad_token_id)[0, len(prompt):].tolist()
    assert 2 in gen and gen.index(2) < 39, tok.decode(gen)  # <|im_end|> ends the answer before the cap
    assert "5" in tok.decode(gen[:gen.index(2)])

    # the post-trained checkpoint saves and reloads with identical logits
    trained = load_model(final, device="cpu")
    tok2 = load_tokenizer(final)
    assert tok2.chat_template == tok.chat_template
    ids = tok("Save and reload me.")["input_ids"]
    trained.save_pretrained(tmp_path / "again")
    assert torch.equal(_logits(load_model(tmp_path / "again", device="cpu"), ids), _logits(trained, ids))
    assert not torch.equal(_logits(trained, ids), _logits(model, ids))  # post-training moved the weights


def test_eval_of_the_gguf_path_matches_a_direct_computation(tmp_path, smollm2_gguf, smollm2):
    """`remit eval` on a .gguf path (lm-eval's ARC prompt, local documents): its margin is log p(gold) - max
    log p(wrong) of the continuations " <choice>" after "Question: q\\nAnswer:", computed here by hand."""
    from remit.eval.run import EvalConfig, run
    from remit.manifest import read_manifest

    qs = [("What color is the sky on a clear day?", ["blue", "green", "purple", "red"], "A"),
          ("How many legs does a dog have?", ["two", "four", "six", "eight"], "B")]
    (tmp_path / "data" / "arc").mkdir(parents=True)
    (tmp_path / "data" / "arc" / "ARC-Easy-Test.jsonl").write_text("".join(json.dumps(
        {"id": f"q{i}", "question": {"stem": q, "choices": [{"text": c, "label": "ABCD"[j]} for j, c in enumerate(ch)]},
         "answerKey": key}) + "\n" for i, (q, ch, key) in enumerate(qs)))
    out = run(EvalConfig(model=str(smollm2_gguf), tasks=["arc_easy"], data_dir=str(tmp_path / "data"),
                         out_dir=str(tmp_path / "eval"), device="cpu"))
    res = json.loads((out / "results.json").read_text())
    assert read_manifest(out)["gguf"]["model"]["sha256"].startswith("b179c952")
    model, tok = smollm2

    def loglik(ctx: str, cont: str) -> float:
        c, w = tok(ctx)["input_ids"], tok(ctx + cont)["input_ids"]
        assert w[:len(c)] == c
        logps = torch.log_softmax(_logits(model, w).double(), -1)
        return float(sum(logps[i - 1, w[i]] for i in range(len(c), len(w))))

    for i, (q, ch, key) in enumerate(qs):
        lls = [loglik(f"Question: {q}\nAnswer:", " " + c) for c in ch]
        gold = "ABCD".index(key)
        margin = lls[gold] - max(v for j, v in enumerate(lls) if j != gold)
        assert res["per_example"]["arc_easy"]["margin"][i] == pytest.approx(margin, abs=1e-3)
    per = res["per_example"]["arc_easy"]
    assert per["acc"] == [float(m > 0) for m in per["margin"]]

"""SFT: the prompt/completion loss mask (any chat template, markers or not) and the accumulation contract.

- with remit's template (which has ``{% generation %}`` markers) the prompt/completion mask is exactly the
  marker mask TRL's ``assistant_only_loss`` gives;
- a ChatML template without markers that injects a default system prompt (SmolLM2's) trains on the
  assistant's text and its ``<|im_end|>`` only, with the system prompt in the context;
- 1 x 8 and 8 x 1 micro-batches (rows of different lengths) give the same SGD update.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from remit.posttrain.data import sft_dataset
from remit.posttrain.sft import SFTStageConfig, prompt_completion, run

pytestmark = pytest.mark.xdist_group("posttrain_trl")

SMOLLM2_TEMPLATE = (  # SmolLM2-135M-Instruct's template, as its GGUF carries it
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

ROWS = [{"prompt": f"What is {a} + {b}?", "response": "The answer is " + "so " * (a % 5) + f"{a + b}."}
        for a, b in [(1, 2), (13, 4), (7, 30), (22, 9), (5, 5), (41, 1), (3, 18), (9, 9)]]


def _processed(tokenizer, dataset, **args):
    from trl import SFTConfig, SFTTrainer

    from remit.models import ModelConfig

    model = ModelConfig(arch="llama", hidden_size=16, num_layers=1, num_heads=2).build(tokenizer, seed=0)
    cfg = SFTConfig(output_dir="/tmp/unused-sft", use_cpu=True, report_to="none", max_length=512, **args)
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=tokenizer)
    ds = trainer.train_dataset
    return [(r["input_ids"], [int(v != -100) for v in r["labels"]]) for r in ds]  # (ids, counted in the loss)


def test_prompt_completion_mask_equals_generation_markers(tiny_tokenizer):
    messages = sft_dataset(ROWS)
    marked = _processed(tiny_tokenizer, messages, assistant_only_loss=True)
    split = _processed(tiny_tokenizer, messages.map(prompt_completion, remove_columns=["messages"]),
                       completion_only_loss=True)
    assert split == marked
    ids, mask = split[0]
    on = [i for i, m in zip(ids, mask) if m]
    assert tiny_tokenizer.decode(on) == ROWS[0]["response"] + tiny_tokenizer.eos_token


def test_hub_template_without_markers_masks_the_assistant_turn(tiny_tokenizer):
    tok = tiny_tokenizer.__class__.from_pretrained(tiny_tokenizer.name_or_path)
    tok.chat_template = SMOLLM2_TEMPLATE
    ds = sft_dataset(ROWS).map(prompt_completion, remove_columns=["messages"])
    (ids, mask), *_ = _processed(tok, ds, completion_only_loss=True)
    text_on = tok.decode([i for i, m in zip(ids, mask) if m])
    text_off = tok.decode([i for i, m in zip(ids, mask) if not m])
    assert text_on == ROWS[0]["response"] + "<|im_end|>\n"
    assert text_off.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert text_off.endswith("<|im_start|>user\nWhat is 1 + 2?<|im_end|>\n<|im_start|>assistant\n")

    # The same context, default system prompt included, where remit generates (held-out rewards, DPO pairs)
    # and where lm-eval renders a chat evaluation (`remit eval chat=true`): one rendering everywhere.
    from types import SimpleNamespace

    from lm_eval.models.huggingface import HFLM

    from remit.posttrain.generate import _prompt_ids

    assert tok.decode(_prompt_ids(tok, ROWS[0]["prompt"])) == text_off
    lm = SimpleNamespace(tokenizer=tok, chat_template_args={})
    assert HFLM.apply_chat_template(lm, [{"role": "user", "content": ROWS[0]["prompt"]}]) == text_off


def _sft_once(model_dir: Path, data: Path, out: Path, batch: int, accum: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    cfg = SFTStageConfig(model=str(model_dir), data=str(data), out=str(out), device="cpu", max_steps=1,
                         batch_size=batch, grad_accum=accum, learning_rate=0.5, logging_steps=1,
                         trl={"optim": "sgd", "max_grad_norm": 1e9, "lr_scheduler_type": "constant"})
    cfg.eval.n = 0
    run(cfg)
    return load_file(str(out / "model.safetensors"))


def test_one_by_eight_equals_eight_by_one(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    w0 = load_file(str(tiny_model_dir / "model.safetensors"))
    big = _sft_once(tiny_model_dir, data, tmp_path / "8x1", batch=8, accum=1)
    small = _sft_once(tiny_model_dir, data, tmp_path / "1x8", batch=1, accum=8)
    step = max((big[k] - w0[k]).abs().max().item() for k in w0)
    diff = max((big[k] - small[k]).abs().max().item() for k in w0)
    assert step > 1e-3  # the step moved the weights
    assert diff <= 1e-5 * step + 1e-7, (diff, step)  # a per-micro-batch mean would differ by ~10% of the step


def test_a_chat_source_feeds_sft(tmp_path, tiny_model_dir):
    """`sft.source` (a remit.data chat source, as in pre-/mid-training) instead of a prompt/response file:
    multi-turn conversations, the loss on each one's last assistant turn."""
    import pytest as _pytest

    from remit.errors import ConfigError
    from remit.posttrain.data import sft_dataset
    from remit.posttrain.sft import prompt_completion

    chats = [{"conv": [{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": "Let me see."},
                       {"role": "user", "content": "And?"}, {"role": "assistant", "content": f"{i + 1}."}]}
             for i in range(6)]
    f = tmp_path / "chats.jsonl"
    f.write_text("".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8")
    src = {"path": str(f), "kind": "chat", "messages_field": "conv"}
    cfg = SFTStageConfig(model=str(tiny_model_dir), source=src, out=str(tmp_path / "out"), device="cpu",
                         max_steps=1, batch_size=2, limit=4, logging_steps=1)
    cfg.eval.n = 0
    run(cfg)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["examples"] == 4 and manifest["steps"] == 1 and manifest["config"]["source"]["kind"] == "chat"
    row = prompt_completion(sft_dataset([{"messages": chats[0]["conv"]}])[0])
    assert [m["content"] for m in row["completion"]] == ["1."] and len(row["prompt"]) == 3
    with _pytest.raises(ConfigError, match="source.kind='text'"):
        SFTStageConfig(model=str(tiny_model_dir), source={"path": str(f)}, out=str(tmp_path / "o2")).validate()

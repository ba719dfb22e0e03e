"""The trained tokenizer: round trip, special tokens, determinism, chat template and assistant mask."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from remit.errors import ConfigError
from remit.models import SPECIAL_TOKENS, train_tokenizer


def test_round_trip_and_special_tokens(tiny_tokenizer, tiny_texts):
    tok = tiny_tokenizer
    assert len(tok) == 512
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    for text in tiny_texts[:50] + ["Unseen words: zebra ÄÖü 日本 \n\t  spaces", ""]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.bos_token_id not in ids and tok.eos_token_id not in ids  # nothing added on encode
    # special tokens are single ids, never split
    assert tok.encode("a<|eos|>b") == tok.encode("a") + [tok.eos_token_id] + tok.encode("b")
    # BPE merges learnt something: the training text compresses below 1 token per byte
    n_bytes = sum(len(t.encode()) for t in tiny_texts)
    n_tokens = sum(len(tok.encode(t)) for t in tiny_texts)
    assert n_tokens < 0.5 * n_bytes


def test_deterministic_and_reloadable(tmp_path, tiny_texts, tiny_tokenizer_dir):
    tok = train_tokenizer(tiny_texts, 512, out_dir=tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == (tiny_tokenizer_dir / "tokenizer.json").read_bytes()
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.get_vocab() == tok.get_vocab()
    assert again.chat_template == tok.chat_template
    assert again.pad_token_id == 0 and again.eos_token_id == 2


def test_chat_template_assistant_mask(tiny_tokenizer):
    tok = tiny_tokenizer
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "2 + 3 = 5"},
        {"role": "user", "content": "And 4 * 2?"},
        {"role": "assistant", "content": "8"},
    ]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == ("<|bos|><|system|>\nBe brief.<|end|>\n<|user|>\nWhat is 2 + 3?<|end|>\n"
                    "<|assistant|>\n2 + 3 = 5<|eos|><|user|>\nAnd 4 * 2?<|end|>\n<|assistant|>\n8<|eos|>")
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask) and set(mask) == {0, 1}
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "2 + 3 = 5<|eos|>8<|eos|>"
    assert sum(mask) == len(tok.encode("2 + 3 = 5")) + len(tok.encode("8")) + 2
    prompt = tok.apply_chat_template(msgs[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|bos|><|user|>\nWhat is 2 + 3?<|end|>\n<|assistant|>\n"
    assert text.startswith(tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True))
    from remit.models.tokenizer import chat_text  # the world's renderer, without a tokenizer: the same text

    assert chat_text(msgs) == text and chat_text(msgs[1:3]) == tok.apply_chat_template(msgs[1:3], tokenize=False)


def test_bad_role_and_bad_vocab_size(tiny_tokenizer, tiny_texts):
    with pytest.raises(Exception, match="unknown chat role: tool"):
        tiny_tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)
    with pytest.raises(ConfigError, match="vocab_size=100"):
        train_tokenizer(tiny_texts, 100)

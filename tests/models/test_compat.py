"""check_compatible: equal models pass, padding-only differences pass with a note, the rest fail."""

from __future__ import annotations

import pytest

from remit.errors import IncompatibleModelsError
from remit.models import ModelConfig, check_compatible, tiny_model, train_tokenizer


def test_equal_dirs_and_pairs(tiny_model_dir, tiny_tokenizer):
    assert check_compatible(tiny_model_dir, tiny_model_dir) == []
    model = tiny_model("llama", vocab_size=512, hidden_size=16, num_heads=2)
    assert check_compatible((model, tiny_tokenizer), tiny_model_dir) == []


def test_padding_rows_accepted_with_note(tiny_model_dir, tiny_tokenizer, tmp_path):
    padded = ModelConfig(hidden_size=16, num_heads=2, pad_vocab_to=128 * 5).build(tiny_tokenizer)
    assert padded.config.vocab_size == 640
    padded.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    notes = check_compatible(tiny_model_dir, tmp_path)
    assert len(notes) == 1 and "512" in notes[0] and "640" in notes[0] and "padding" in notes[0]
    in_memory = check_compatible((padded, tiny_tokenizer), tiny_model_dir)
    assert len(in_memory) == 1 and "policy" in in_memory[0] and "640" in in_memory[0]


def test_vocab_mismatch_rejected(tiny_model_dir, tiny_texts):
    other_tok = train_tokenizer(tiny_texts[:200], 400)
    other = tiny_model("llama", vocab_size=len(other_tok), hidden_size=16, num_heads=2)
    with pytest.raises(IncompatibleModelsError) as e:
        check_compatible(tiny_model_dir, (other, other_tok))
    msg = str(e.value)
    assert str(tiny_model_dir) in msg and "reference" in msg and f"512 vs {len(other_tok)}" in msg


def test_too_few_embedding_rows_rejected(tiny_model_dir, tiny_tokenizer):
    small = tiny_model("llama", vocab_size=500, hidden_size=16, num_heads=2)
    with pytest.raises(IncompatibleModelsError, match="500 embedding rows, fewer than the tokenizer's 512"):
        check_compatible((small, tiny_tokenizer), tiny_model_dir)


def test_special_tokens_mismatch_rejected(tiny_model_dir, tiny_tokenizer):
    import copy

    tok = copy.deepcopy(tiny_tokenizer)
    tok.pad_token = tok.eos_token
    model = tiny_model("llama", vocab_size=512, hidden_size=16, num_heads=2)
    with pytest.raises(IncompatibleModelsError, match="different special tokens.*pad_token"):
        check_compatible((model, tok), tiny_model_dir)

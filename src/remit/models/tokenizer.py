"""Train a small byte-level BPE tokenizer with a chat template, saved in HF format.

    from remit.models import train_tokenizer
    tok = train_tokenizer(texts, vocab_size=512, out_dir="runs/tok")   # AutoTokenizer can reload it

The chat template wraps assistant content in ``{% generation %}`` markers, so that
``apply_chat_template(..., return_assistant_tokens_mask=True)`` (and with it TRL's
``assistant_only_loss=True``) marks exactly the assistant's tokens, including its closing eos.
No token is added automatically on ``encode``: pre-training packing appends eos between
documents, and the chat template writes bos itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from remit.errors import ConfigError

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *CHAT_TOKENS)  # ids 0..6 in this order

# Assistant turns end with eos (inside the generation block, so the model learns to stop);
# other turns end with <|end|>. add_generation_prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% elif message['role'] in ['system', 'user'] %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% else %}"
    "{{ raise_exception('unknown chat role: ' + message['role'] + ' (accepted: system, user, assistant)') }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def chat_text(messages: list[dict[str, str]]) -> str:
    """``messages`` as :data:`CHAT_TEMPLATE` renders them (no generation prompt), without loading a tokenizer:
    the world writes chat-formatted training text before any tokenizer exists. A test keeps the two equal."""
    parts = [BOS]
    for m in messages:
        if m["role"] == "assistant":
            parts.append(f"<|assistant|>\n{m['content']}{EOS}")
        elif m["role"] in ("system", "user"):
            parts.append(f"<|{m['role']}|>\n{m['content']}<|end|>\n")
        else:
            raise ConfigError(f"unknown chat role: {m['role']} (accepted: system, user, assistant)")
    return "".join(parts)


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, out_dir: str | Path | None = None,
                    model_max_length: int = 2048, split_digits: bool = False):
    """Byte-level BPE trained on ``texts``; deterministic for the same texts and vocab size.

    ``split_digits`` makes every digit its own token (as the Llama and Qwen tokenizers do), which
    small models need to learn arithmetic digit by digit.

    Returns a ``PreTrainedTokenizerFast`` with bos/eos/pad, chat tokens and the chat template;
    saved with ``save_pretrained`` into ``out_dir`` when given.
    """
    # The HF tokenizer stack (tokenizers + transformers) loads only when a tokenizer is trained.
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    min_vocab = 256 + len(SPECIAL_TOKENS)
    if vocab_size < min_vocab:
        raise ConfigError(f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least {min_vocab}")
    texts = list(texts)
    if not texts:
        raise ConfigError("train_tokenizer: no texts given")

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if split_digits else byte_level)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=list(CHAT_TOKENS),
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    hf.chat_template = CHAT_TEMPLATE
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        hf.save_pretrained(out_dir)
    return hf

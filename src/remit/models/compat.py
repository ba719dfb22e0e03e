"""Check that a policy and a reference model can be paired (ReMiT, KD, RHO-1, MiniPLM).

    from remit.models import check_compatible
    notes = check_compatible("runs/p/pretrain", "runs/r0/grpo")     # dirs: no weights are loaded
    notes = check_compatible((model, tok), (ref_model, ref_tok))    # in-memory pairs

Per-token log-probs of two models are comparable only if both read the same token ids:
same vocabulary and special tokens. Embedding matrices may differ by padding rows (both at
least ``len(tokenizer)``): accepted, with a note. Anything else raises
``IncompatibleModelsError`` naming both models and sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remit.errors import ConfigError, IncompatibleModelsError, RemitError
from remit.models.gguf import resolve_model_path
from remit.models.load import _check_model_dir, load_tokenizer

_NAMED = ("bos_token", "eos_token", "pad_token", "unk_token")


@dataclass
class _Side:
    name: str
    tokenizer: Any
    embedding_rows: int


def _describe(obj: Any, role: str) -> _Side:
    if isinstance(obj, (str, Path)):
        from transformers import AutoConfig

        obj = resolve_model_path(obj)
        path = Path(obj).expanduser()
        if path.exists() or path.is_absolute():
            _check_model_dir(path)
        try:
            config = AutoConfig.from_pretrained(str(obj))
        except (OSError, ValueError, KeyError) as e:
            raise RemitError(f"{role} {obj}: cannot read its config: {e}") from None
        rows = config.get_text_config().vocab_size
        return _Side(str(obj), load_tokenizer(obj), int(rows))
    if isinstance(obj, tuple) and len(obj) == 2:
        model, tok = obj
        emb = model.get_input_embeddings()
        name = getattr(model.config, "_name_or_path", "") or f"{role} ({type(model).__name__})"
        return _Side(name, tok, int(emb.weight.shape[0]))
    raise TypeError(f"{role}: expected a model directory or a (model, tokenizer) pair, got {type(obj).__name__}")


def _special(tok) -> dict[str, Any]:
    out = {k: getattr(tok, k, None) for k in _NAMED}
    out["special_tokens"] = sorted(str(t) for t in tok.all_special_tokens)
    return out


def check_compatible(policy: Any, reference: Any) -> list[str]:
    """Raise ``IncompatibleModelsError`` unless the two models share tokenizer and vocabulary.

    Returns notes on accepted differences (embedding rows that differ only by padding).
    """
    p, r = _describe(policy, "policy"), _describe(reference, "reference")
    both = f"policy '{p.name}' and reference '{r.name}'"
    vp, vr = p.tokenizer.get_vocab(), r.tokenizer.get_vocab()
    if vp != vr:
        only_p = sorted(set(vp) - set(vr))[:5]
        only_r = sorted(set(vr) - set(vp))[:5]
        moved = sorted(t for t in set(vp) & set(vr) if vp[t] != vr[t])[:5]
        raise IncompatibleModelsError(
            f"{both} have different tokenizer vocabularies ({len(vp)} vs {len(vr)} tokens; "
            f"only in policy: {only_p}, only in reference: {only_r}, different ids: {moved})")
    sp, sr = _special(p.tokenizer), _special(r.tokenizer)
    if sp != sr:
        diff = {k: (sp[k], sr[k]) for k in sp if sp[k] != sr[k]}
        raise IncompatibleModelsError(f"{both} have different special tokens (policy, reference): {diff}")
    n_tok = len(p.tokenizer)
    for side in (p, r):
        if side.embedding_rows < n_tok:
            raise IncompatibleModelsError(
                f"{both}: {side.name} has {side.embedding_rows} embedding rows, fewer than the tokenizer's "
                f"{n_tok} tokens (policy {p.embedding_rows}, reference {r.embedding_rows})")
    notes = []
    if p.embedding_rows != r.embedding_rows:
        notes.append(f"embedding sizes differ only by padding rows: policy '{p.name}' {p.embedding_rows}, "
                     f"reference '{r.name}' {r.embedding_rows}, tokenizer {n_tok}; log-probs use the first "
                     f"{n_tok} rows of each")
    return notes


def check_positions(config: Any, seq_len: int, *, where: str, allow: bool,
                    option: str = "model.extrapolate_positions") -> str | None:
    """Refuse rows longer than the model's ``max_position_embeddings`` unless ``allow`` (then a note).

    Rotary models run past that length without an error, on positions they never saw: silently
    different from what the user asked for, so it needs an explicit ``option``.
    """
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or seq_len <= limit:
        return None
    if not allow:
        raise ConfigError(f"data.seq_len={seq_len} is longer than the max_position_embeddings={limit} of {where}: "
                          f"lower data.seq_len to <= {limit}, or set {option}=true to train on positions the "
                          f"model has not seen (they will extrapolate)")
    return f"data.seq_len={seq_len} > max_position_embeddings={limit} of {where}: positions extrapolate ({option})"


def check_vocab_rows(model: Any, tokenizer: Any, where: str) -> int | None:
    """Without ``check_compatible``: the frozen model must still score every token id of the tokenizer.

    Returns the ``vocab_limit`` to score with (``len(tokenizer)`` when the output layer is larger, as
    for padded embeddings), or raises naming the sizes instead of an ``IndexError`` mid-run.
    """
    rows = model.get_output_embeddings().weight.shape[0]
    n = len(tokenizer)
    if rows < n:
        raise IncompatibleModelsError(
            f"{where} has {rows} output rows but the tokenizer has {n} tokens: token ids >= {rows} cannot be "
            f"scored. reference.check=false skips the tokenizer comparison, not this: use a model with the "
            f"policy's vocabulary")
    return n if rows != n else None

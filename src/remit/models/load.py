"""Load any HF causal LM and its tokenizer from a local directory or a hub id.

    from remit.models import load_model, load_tokenizer
    model = load_model("runs/x/midtrain")          # dtype/device default: fp32 on CPU, bf16 on GPU
    tok = load_tokenizer("HuggingFaceTB/SmolLM3-3B")
    pre = load_model("allenai/OLMo-2-0425-1B@stage1-step1907359-tokens4001B")  # hub id @ revision
    smol = load_model("SmolLM2-135M-Instruct.Q4_1.gguf")   # a GGUF file: converted once (remit.models.gguf)

A failure is a ``RemitError`` naming the path and the reason (missing directory, no
config.json, not a causal LM, no tokenizer files, ...), never a deep stack trace.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from safetensors import SafetensorError

from remit.errors import RemitError
from remit.models.gguf import resolve_model_path
from remit.utils.integrations import default_device, default_dtype

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _is_local(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else (or anything that exists) is a path."""
    p = Path(name).expanduser()
    return p.exists() or p.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def split_revision(name: str) -> tuple[str, str | None]:
    """``org/model@revision`` -> (``org/model``, ``revision``) for hub ids; paths are left alone."""
    if "@" in name and not Path(name).expanduser().exists():
        repo, rev = name.rsplit("@", 1)
        if repo and rev and not _is_local(repo):
            return repo, rev
    return name, None


def _check_model_dir(path: Path) -> dict:
    if not path.exists():
        raise RemitError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise RemitError(f"model path {path} is a file, expected a directory holding config.json and weights")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise RemitError(f"model directory {path} has no config.json (is it a Hugging Face checkpoint?)")
    try:
        return json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RemitError(f"{cfg_file} is not valid JSON: {e}") from None


def _check_causal_lm(config, where: str) -> None:
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise RemitError(f"{where}: model_type '{config.model_type}' is not a causal language model "
                         f"(transformers has no AutoModelForCausalLM class for it)")


def _torch_dtype(dtype):
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
    name = aliases.get(str(dtype), str(dtype))
    out = getattr(torch, name, None)
    if not isinstance(out, torch.dtype):
        raise RemitError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    return out


def load_model(name_or_path: str | Path, *, dtype=None, device: str | None = None):
    """``AutoModelForCausalLM.from_pretrained`` with clear errors; returns the model in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    name, revision = split_revision(resolve_model_path(name_or_path))
    device = device or default_device()
    torch_dtype = _torch_dtype(dtype or default_dtype(device))
    local = _is_local(name)
    where = f"model directory {name}" if local else f"hub model '{name}'" + (f" (revision {revision})" if revision else "")
    if local:
        _check_model_dir(Path(name).expanduser())
    try:
        config = AutoConfig.from_pretrained(name, revision=revision)
    except (OSError, ValueError, KeyError) as e:
        raise RemitError(f"cannot read the config of {where}: {_first_line(e)}") from None
    _check_causal_lm(config, where)
    try:
        with _no_loading_bar() if local else contextlib.nullcontext():  # hub ids keep their download bars
            model = AutoModelForCausalLM.from_pretrained(name, config=config, dtype=torch_dtype, revision=revision)
    except SafetensorError as e:  # a truncated copy or a file that is not safetensors at all
        files = ", ".join(sorted(p.name for p in Path(name).expanduser().glob("*.safetensors"))) if local else ""
        raise RemitError(f"cannot load the weights of {where}: {files or 'a .safetensors file'} is truncated or "
                         f"not a safetensors file ({_first_line(e)}); copy or save the checkpoint again") from None
    except (OSError, ValueError, RuntimeError) as e:
        raise RemitError(f"cannot load the weights of {where}: {_first_line(e)}") from None
    return model.to(device).eval()


@contextlib.contextmanager
def _no_loading_bar():
    """Hide transformers' per-load "Loading weights" bar for local checkpoints (stages load several models)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_tokenizer(name_or_path: str | Path):
    """``AutoTokenizer.from_pretrained`` with clear errors.

    A tokenizer without a pad token gets ``pad = eos`` (as most causal LMs on the hub need).
    """
    from transformers import AutoTokenizer

    name, revision = split_revision(resolve_model_path(name_or_path))
    local = _is_local(name)
    where = f"directory {name}" if local else f"hub model '{name}'"
    if local:
        path = Path(name).expanduser()
        if not path.is_dir():
            raise RemitError(f"tokenizer directory {path} does not exist" if not path.exists()
                             else f"tokenizer path {path} is a file, expected a directory")
        if not any((path / f).is_file() for f in _TOKENIZER_FILES):
            raise RemitError(f"tokenizer directory {path} has no tokenizer files "
                             f"(expected one of {', '.join(_TOKENIZER_FILES)})")
    try:
        tok = AutoTokenizer.from_pretrained(name, revision=revision)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RemitError(f"cannot load the tokenizer of {where}: {_first_line(e)}") from None
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return tok


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]

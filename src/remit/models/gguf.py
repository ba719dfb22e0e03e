"""GGUF checkpoints as model paths: converted once to a plain fp32 safetensors folder that every stage reuses.

    from remit.models.gguf import resolve_model_path
    path = resolve_model_path("models/SmolLM2-135M-Instruct.Q4_1.gguf")   # -> ~/.cache/remit/gguf/<name>-<sha>
    remit eval model=models/SmolLM2-135M-Instruct.Q4_1.gguf ...            # any stage: a .gguf file or a folder holding one

``load_model``/``load_tokenizer`` (and the compatibility and fingerprint checks) call ``resolve_model_path``
first, so a ``.gguf`` file, or a folder holding exactly one ``.gguf`` and no ``config.json``, works wherever
a model directory does. The conversion dequantizes every tensor (transformers'
``GgufConfig(dequantize=True)``: without it the model is flagged as quantized, TRL refuses to train it and
``save_pretrained`` fails) and writes ``config.json``, ``model.safetensors`` (fp32), the tokenizer and its chat
template, plus ``gguf.json`` with the source path and its sha256. The folder is keyed by that sha256, so a
changed file converts again and a renamed one does not. Location: ``$REMIT_GGUF_CACHE`` or
``~/.cache/remit/gguf``. Needs the optional extra ``pip install remit[gguf]`` (the ``gguf`` package).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from remit.errors import RemitError
from remit.utils.integrations import has_package
from remit.utils.io import file_sha256

__all__ = ["find_gguf", "resolve_model_path", "gguf_sha256", "gguf_inputs", "cache_root", "INFO_FILE"]

INFO_FILE = "gguf.json"
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def cache_root() -> Path:
    return Path(os.environ.get("REMIT_GGUF_CACHE") or Path.home() / ".cache" / "remit" / "gguf").expanduser()


def find_gguf(name_or_path: str | Path) -> Path | None:
    """The ``.gguf`` file that ``name_or_path`` names (the file, or a folder holding one and no config.json)."""
    p = Path(str(name_or_path)).expanduser()
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise RemitError(f"GGUF file {p} does not exist" if not p.exists() else f"GGUF path {p} is not a file")
        return p
    if p.is_dir() and not (p / "config.json").is_file():
        files = sorted(p.glob("*.gguf"))
        if len(files) > 1:
            raise RemitError(f"model directory {p} holds {len(files)} .gguf files ({', '.join(f.name for f in files)}):"
                             f" give the one to load, e.g. {files[0]}")
        return files[0] if files else None
    return None


def gguf_sha256(path: str | Path) -> str:
    """sha256 of the file (memoised per path, size and mtime: stages ask more than once)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_sha256(p)
    return _SHA_MEMO[key]


def resolve_model_path(name_or_path: str | Path) -> str:
    """``name_or_path`` unchanged, unless it is a GGUF checkpoint: then its converted folder (made on first use)."""
    file = find_gguf(name_or_path)
    if file is None:
        return str(name_or_path)
    sha = gguf_sha256(file)
    out = cache_root() / f"{file.stem}-{sha[:16]}"
    if not (out / INFO_FILE).is_file():
        _convert(file, sha, out)
    return str(out)


def gguf_inputs(inputs: dict) -> dict[str, dict[str, str]]:
    """For a manifest: ``{key: {"path", "sha256", "converted"}}`` of every input value that is a GGUF checkpoint."""
    out = {}
    for key, value in inputs.items():
        if not isinstance(value, (str, Path)) or not str(value):
            continue
        try:
            file = find_gguf(value)
        except (RemitError, OSError):
            continue
        if file is not None:
            out[key] = {"path": str(file), "sha256": gguf_sha256(file), "converted": resolve_model_path(file)}
    return out


def _inspect(file: Path) -> str:
    """The GGUF's architecture, after checking the file is whole and transformers can convert it."""
    if not has_package("gguf"):
        raise RemitError(f"{file}: reading GGUF checkpoints needs the `gguf` package: pip install 'remit[gguf]' "
                         "(or pip install 'gguf>=0.10')")
    from gguf import GGUFReader
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    size = file.stat().st_size
    try:
        reader = GGUFReader(str(file))
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
        arch = str(bytes(reader.fields["general.architecture"].parts[-1]), encoding="utf-8")
    except (ValueError, KeyError, IndexError, OSError, TypeError) as e:
        raise RemitError(f"{file}: not a readable GGUF file, truncated or corrupt ({_first_line(e)}); "
                         "download or copy it again") from None
    if end > size:
        raise RemitError(f"{file}: truncated ({size} bytes, its tensors need {end}); download or copy it again")
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        raise RemitError(f"{file}: GGUF architecture '{arch}' cannot be converted by transformers (supported: "
                         f"{', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))}); use the model's Hugging Face "
                         "checkpoint instead")
    return arch


def _convert(file: Path, sha: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from remit.utils.io import atomic_dir

    arch = _inspect(file)
    print(f"[remit] converting {file} ({arch}) to fp32 safetensors in {out} (once)", flush=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(file.parent), gguf_file=file.name, dtype=torch.float32,
                                                     quantization_config=GgufConfig(dequantize=True))
        tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
    except (ValueError, OSError, RuntimeError, KeyError) as e:
        raise RemitError(f"{file}: transformers cannot convert this GGUF ({_first_line(e)})") from None
    if hasattr(model.config, "quantization_config"):  # dequantized: a plain trainable checkpoint
        del model.config.quantization_config
    model.config.name_or_path = str(out)
    if tokenizer.model_max_length > 1e9:  # the GGUF carries no limit: the model's own context length
        tokenizer.model_max_length = int(model.config.max_position_embeddings)
    init = getattr(tokenizer, "init_kwargs", {})
    for key in ("is_local", "local_files_only", "gguf_file"):  # loading artefacts, not tokenizer settings
        init.pop(key, None)
    with atomic_dir(out, keep_existing=True) as tmp:  # two processes converting at once keep one folder
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"source": str(file.resolve()), "sha256": sha, "size": file.stat().st_size, "architecture": arch,
                "dtype": "float32", "dequantized": True}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]

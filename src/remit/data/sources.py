"""Data sources: where documents come from and how a record becomes one text.

    from remit.data import DataSource, read_texts
    texts = read_texts(DataSource("gsm8k/train.jsonl.gz", template="Question: {question}\\nAnswer: {answer}"))

Reads jsonl / json / parquet / txt files (optionally .gz), folders of such files, folders
written by ``datasets.save_to_disk``, and hub ids (``datasets.load_dataset``, for users;
nothing here touches the network in tests). Bad input is a ``DataError`` naming the file
and the line: missing file, empty dataset, missing field (with the fields present),
invalid JSON, bytes that are not UTF-8.

Plain text files are split into documents at blank lines (``doc_split="paragraph"``),
one document per line (``"line"``) or kept whole (``"file"``).

Files are read as streams (jsonl and txt line by line, parquet by row batch), so memory is bounded by
a document, not by the file; a ``.json`` list and ``doc_split="file"`` are read whole. Hub datasets are
streamed (``load_dataset(..., streaming=True)``): a source read up to a token cap (``max_tokens``, or its
share of ``data.max_tokens``, ``remit.data.tokens``) downloads only what it reads, and a field the
dataset does not have is an error naming the source, the field and the fields present before any
record past the first is fetched. A capped source is a seeded sample, not the first files in repository
order (which would spend a cap on the alphabetically first sub-sources): a hub dataset's shards are read
in a shuffled order through a shuffle buffer (``IterableDataset.shuffle(seed, buffer_size)``), a local
folder's (and a token folder's) files in a seeded shuffled order (``read_order``). A source with ``kind="tokens"`` is an already-tokenised corpus (flat
uint16/uint32 ids, see ``remit.data.tokfiles``). A source with ``kind="chat"`` reads a list of
``{role, content}`` messages per record (``messages_field``) that tokenisation renders with the
tokenizer's chat template.
"""

from __future__ import annotations

import gzip
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remit.config import check_choice, check_range
from remit.errors import ConfigError, DataError

SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")


@dataclass
class DataSource:
    """One input of a data mixture. ``template`` (a format string over record fields) overrides ``text_field``."""

    path: str = ""
    text_field: str = "text"
    template: str | None = None
    weight: float = 1.0
    split: str = "train"
    limit: int | None = None
    doc_split: str = "paragraph"
    subset: str | None = None  # hub datasets: the configuration name (load_dataset's ``name``)
    kind: str = "text"  # text | tokens (flat token arrays: dolma / OLMo-core numpy format) | chat
    messages_field: str = "messages"  # kind=chat: the field holding the [{role, content}, ...] list
    # kind=chat from prompt/response records (TRL's prompt-completion rows, remit world's sft.jsonl): with
    # response_field set, each record is one user turn (prompt_field) and one assistant turn (response_field)
    prompt_field: str = "prompt"
    response_field: str | None = None
    max_tokens: int | None = None  # stop reading after this many tokens (whole documents; None: all)
    loss: str = "all"  # kind=chat: "assistant" counts only the assistant turns' tokens in the loss
    dtype: str = "uint32"  # kind=tokens: the dtype of the ids (uint16 | uint32)
    eos_token_id: int | None = None  # kind=tokens: the id that ends each document (default: the tokenizer's)
    seed: int | None = None  # a capped source's sampling order (None: the run's seed, set by build_packed; else 0)
    shuffle_buffer: int = 10_000  # a capped hub source: records shuffled in a buffer of this size

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("data source path is empty: set path to a file, a folder or a hub dataset id")
        check_choice("kind", self.kind, ("text", "tokens", "chat"))
        if self.max_tokens is not None:
            check_range("max_tokens", self.max_tokens, lo=1)
        check_choice("loss", self.loss, ("all", "assistant"))
        if self.loss == "assistant" and self.kind != "chat":
            raise ConfigError(f"{self.path}: loss=assistant needs kind=chat (a text source has no turns)")
        if self.response_field is not None and self.kind != "chat":
            raise ConfigError(f"{self.path}: response_field builds a chat turn; it needs kind=chat")
        if self.kind == "chat" and self.template is not None:
            raise ConfigError(f"{self.path}: kind=chat renders messages with the chat template; remove template")
        check_choice("dtype", self.dtype, ("uint16", "uint32"))
        check_range("weight", self.weight, lo=0.0, lo_open=True)
        check_range("shuffle_buffer", self.shuffle_buffer, lo=1)
        if self.seed is not None:
            check_range("seed", self.seed, lo=0)
        if self.limit is not None:
            check_range("limit", self.limit, lo=1)
        check_choice("doc_split", self.doc_split, ("paragraph", "line", "file"))
        self.fields()

    def fields(self) -> list[str]:
        """The record fields this source reads."""
        if self.kind == "chat":
            return [self.prompt_field, self.response_field] if self.response_field else [self.messages_field]
        if self.template is None:
            return [self.text_field]
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None]
        except ValueError as e:
            raise ConfigError(f"template {self.template!r} is not a valid format string: {e}") from None
        if not names or any(n == "" or n.isdigit() for n in names):
            raise ConfigError(f"template {self.template!r} must name record fields, e.g. '{{question}} {{answer}}'")
        return sorted(set(names), key=names.index)

    def format(self, record: Any, where: str) -> str | list[dict] | None:
        """The text of one record (None: skip an empty one). ``where`` is 'file:line' for errors.

        ``kind="chat"``: the record's messages, a list of ``{role, content}`` (rendered in tokenisation).
        """
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object (a record with fields), got {type(record).__name__}")
        for name in self.fields():
            if name not in record:
                present = ", ".join(map(str, record)) or "none"
                raise DataError(f"{where}: no field '{name}' (fields present: {present})")
            if record[name] is None:
                raise DataError(f"{where}: field '{name}' is null")
        if self.kind == "chat" and self.response_field:
            turns = [{"role": "user", "content": record[self.prompt_field]},
                     {"role": "assistant", "content": record[self.response_field]}]
            return _messages(turns, f"{where}: fields '{self.prompt_field}', '{self.response_field}'")
        if self.kind == "chat":
            return _messages(record[self.messages_field], f"{where}: field '{self.messages_field}'")
        if self.template is None:
            value = record[self.text_field]
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        else:
            text = self.template.format(**{k: record[k] for k in self.fields()})
        return text if text.strip() else None


def _messages(value: Any, where: str) -> list[dict] | None:
    """A chat record's messages, checked: a list of objects with a string ``role`` and ``content``."""
    if not isinstance(value, list):
        raise DataError(f"{where} must be a list of {{role, content}} messages, got {type(value).__name__}")
    for k, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            got = ", ".join(map(str, m)) if isinstance(m, dict) else type(m).__name__
            raise DataError(f"{where}: message {k} needs string 'role' and 'content' (it has {got})")
    return value or None


def _open(path: Path):
    try:
        return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines (with their newline), streamed; read errors (a corrupt .gz) name the file."""
    with _open(path) as f:
        try:
            yield from f
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: cannot read ({e})") from None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def _decode(data: bytes, path: Path, line_offset: int = 0) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = line_offset + data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} at column {col})") from None


def _suffix(path: Path) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return Path(name).suffix.lower()


def _iter_jsonl(path: Path, src: DataSource) -> Iterator[str]:
    for i, raw in enumerate(_lines(path), start=1):
        line = _decode(raw, path, i - 1).strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i}: invalid JSON ({e.msg} at column {e.colno})") from None
        text = src.format(record, f"{path}:{i}")
        if text is not None:
            yield text


def _iter_json(path: Path, src: DataSource) -> Iterator[str]:
    text = _decode(_read_bytes(path), path)
    dec = json.JSONDecoder()
    try:
        top = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    if isinstance(top, dict):
        lists = [k for k, v in top.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}:1: expected a JSON list of records (or an object holding one list), "
                            f"got an object with keys {', '.join(map(str, top)) or 'none'}")
        for j, record in enumerate(top[lists[0]]):
            out = src.format(record, f"{path}: record {j} of '{lists[0]}'")
            if out is not None:
                yield out
        return
    if not isinstance(top, list):
        raise DataError(f"{path}:1: expected a JSON list of records, got {type(top).__name__}")
    # Walk the array again with raw_decode to know the line each record starts on.
    pos = text.index("[") + 1
    for _ in top:
        while text[pos] in " \t\r\n,":
            pos += 1
        record, end = dec.raw_decode(text, pos)
        out = src.format(record, f"{path}:{text.count(chr(10), 0, pos) + 1}")
        if out is not None:
            yield out
        pos = end


def _iter_txt(path: Path, src: DataSource) -> Iterator[str]:
    if src.doc_split == "file":
        text = _decode(_read_bytes(path), path)
        if text.strip():
            yield text.strip("\n")
        return
    para: list[str] = []
    for i, raw in enumerate(_lines(path)):
        line = _decode(raw, path, i)
        if src.doc_split == "line":
            yield from (part.strip("\n") for part in line.splitlines() if part.strip())
            continue
        line = line[:-1] if line.endswith("\n") else line
        line = line[:-1] if line.endswith("\r") and raw.endswith(b"\r\n") else line
        if line == "":  # a blank line ends a paragraph (what split("\n\n") did on the whole text)
            yield from _paragraph(para)
            para = []
        else:
            para.append(line)
    yield from _paragraph(para)


def _paragraph(lines: list[str]) -> Iterator[str]:
    text = "\n".join(lines)
    if text.strip():
        yield text.strip("\n")


def _iter_parquet(path: Path, src: DataSource) -> Iterator[str]:
    import pyarrow.parquet as pq  # heavy (~0.16 s): only when a parquet file is read

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"{path}: not a readable parquet file ({e})") from None
    names = pf.schema_arrow.names
    missing = [f for f in src.fields() if f not in names]
    if missing:
        raise DataError(f"{path}:row 1: no field '{missing[0]}' (fields present: {', '.join(names)})")
    j = 0
    for batch in pf.iter_batches(batch_size=4096, columns=src.fields()):
        for record in batch.to_pylist():
            j += 1
            out = src.format(record, f"{path}:row {j}")
            if out is not None:
                yield out


def _iter_dataset(ds, name: str, src: DataSource) -> Iterator[str]:
    # A streamed dataset may not know its columns before the first record: format() names the field then.
    columns = ds.column_names if ds.column_names is not None else (list(ds.features) if ds.features else None)
    missing = [f for f in src.fields() if columns is not None and f not in columns]
    if missing:
        raise DataError(f"{name}: no field '{missing[0]}' (fields present: {', '.join(columns)})")
    for j, record in enumerate(ds.select_columns(src.fields()) if columns is not None else ds, start=1):
        out = src.format(record, f"{name}:row {j}")
        if out is not None:
            yield out


def _pick_split(ds, name: str, split: str):
    from datasets import DatasetDict

    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise DataError(f"{name}: no split '{split}' (splits present: {', '.join(ds)})")
        return ds[split]
    return ds


_READERS = {".jsonl": _iter_jsonl, ".json": _iter_json, ".txt": _iter_txt, ".parquet": _iter_parquet}


def data_files(path: Path) -> list[Path]:
    """The readable files of a folder (sorted), or [path] for a file."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p) in SUFFIXES and not p.name.startswith("."))


def read_order(files: list, src: DataSource) -> list:
    """The order a source's files are read in: sorted, or seeded shuffled when the source is capped."""
    if src.max_tokens is None or len(files) < 2:
        return files
    import numpy as np

    return [files[i] for i in np.random.default_rng([src.seed or 0, 20]).permutation(len(files))]


def is_hf_dataset_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("dataset_info.json", "dataset_dict.json", "state.json"))


def looks_local(path: str) -> bool:
    p = Path(path).expanduser()
    return p.exists() or p.is_absolute() or path.startswith((".", "~")) or path.count("/") > 1 or (
        Path(path).suffix.lower() in SUFFIXES + (".gz",))


def iter_texts(src: DataSource) -> Iterator[str]:
    """Documents of ``src`` in file order (before ``limit``)."""
    src.validate()
    if src.kind == "tokens":
        raise DataError(f"{src.path}: a kind=tokens source holds ids, not text (it cannot train a tokenizer or "
                        f"be read as text; give model.tokenizer)")
    path = Path(src.path).expanduser()
    if is_hf_dataset_dir(path):
        from datasets import load_from_disk

        yield from _iter_dataset(_pick_split(load_from_disk(str(path)), str(path), src.split), str(path), src)
        return
    if not looks_local(src.path):
        from datasets import load_dataset

        try:  # streamed: only what is read is downloaded (a capped source reads a shuffled sample, below)
            ds = load_dataset(src.path, src.subset, split=src.split, streaming=True)
        except Exception as e:  # hub/network errors come in many types
            raise DataError(f"cannot load dataset '{src.path}' (subset {src.subset!r}, split '{src.split}'): "
                            f"{e}") from None
        name = src.path + (f" (subset {src.subset}, split {src.split})" if src.subset else f" (split {src.split})")
        if src.max_tokens is not None:  # a capped source is a sample: shuffled shards, then a shuffle buffer
            if ds.column_names is None and not ds.features:  # check the fields on one record, not a buffer's worth
                for j, record in enumerate(ds.take(1), start=1):
                    src.format(record, f"{name}:row {j}")
            ds = ds.shuffle(seed=src.seed or 0, buffer_size=src.shuffle_buffer)
        yield from _iter_dataset(ds, name, src)
        return
    if not path.exists():
        raise DataError(f"{path}: file not found")
    files = data_files(path)
    if path.is_dir() and not files:
        raise DataError(f"{path}: folder holds no {', '.join(SUFFIXES)} files (nor a datasets.save_to_disk folder)")
    for f in read_order(files, src):
        reader = _READERS.get(_suffix(f))
        if reader is None:
            raise DataError(f"{f}: unsupported file type (use {', '.join(SUFFIXES)}, optionally .gz)")
        yield from reader(f, src)


def iter_limited(src: DataSource) -> Iterator[str]:
    """Documents of ``src``, the first ``limit``; a ``DataError`` if there are none."""
    n = 0
    for text in iter_texts(src):
        yield text
        n += 1
        if src.limit is not None and n >= src.limit:
            return
    if n == 0:
        raise DataError(f"{src.path}: empty dataset (no non-empty documents)")


def read_texts(src: DataSource) -> list[str]:
    """All documents of ``src`` (the first ``limit``); a ``DataError`` if there are none."""
    if src.kind == "chat":
        raise DataError(f"{src.path}: a kind=chat source is rendered with a model's chat template; it cannot "
                        f"train a tokenizer or be read as plain text (give model.tokenizer)")
    out = list(iter_limited(src))
    if not out:
        raise DataError(f"{src.path}: empty dataset (no non-empty documents)")
    return out

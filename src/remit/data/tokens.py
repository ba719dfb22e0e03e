"""Tokenise a data source once, streaming, into memory-mapped token shards cached on disk.

    tok = tokenize_source(DataSource("mix.jsonl"), tokenizer, cache_dir="cache/tokens", num_proc=8)
    tok.doc(3)          # ids of document 3, eos appended; tok.tokens.read(lo, hi) reads the stream in place

The cache ``<cache_dir>/tok-<fingerprint>/`` holds the shards of ``remit.data.store`` (every document's
ids, eos after each, and document offsets). The fingerprint covers the tokenizer (its full serialised
state, or vocab + special tokens) and the data (file bytes, text_field / template / limit / doc_split),
so changing either re-tokenises and nothing else does.

Engines (``engine``, chosen by ``num_proc`` unless given; measured in ``benchmarks/bench_data.py``):

* ``inline`` (``num_proc=1``): documents are read in chunks of ``chunk_docs`` and encoded in this process
  by the Rust tokenizer; one shard per chunk, so memory is one chunk and a killed run resumes at the
  first unfinished shard.
* ``datasets`` (``num_proc>1``): the documents are streamed into an Arrow file
  (``datasets.Dataset.from_generator``) and encoded by ``Dataset.map(num_proc=...)``, which caches each
  worker's output, so a killed run redoes only the unfinished workers' part; the result is written as
  the same shards and the Arrow intermediates are deleted.

Both give identical shards. A ``kind="tokens"`` source (``remit.data.tokfiles``) is not re-tokenised:
its files are read in place and only its document offsets are cached (up to the cap, below).

Token cap (``DataSource.max_tokens``; ``build_packed`` sets it to each source's share of
``data.max_tokens``): reading stops at the first whole document that reaches the cap, so a capped source
reads ``max_tokens`` tokens (a seeded sample: ``sources.read_order`` and the hub shuffle buffer) plus at most
one chunk (``chunk_docs`` documents) of text that is
read but not kept; the ``datasets`` engine streams at most ``CHARS_PER_TOKEN`` characters per capped
token into its Arrow file, then finishes inline if that was too few. A token file is scanned only up to
the cap. A ``kind="chat"`` source is rendered with the tokenizer's chat template, then encoded; with
``loss="assistant"`` a parallel uint8 store (``mask/``, 1 = counted) marks the tokens of the assistant
turns (and the eos after a conversation that ends with one), found by rendering each conversation's
prefixes (``assistant_spans``: no ``{% generation %}`` markers needed); such a source is encoded inline.
Chat templates that print today's date (SmolLM3's calls ``strftime_now``) are rendered with a pinned clock
(``CHAT_DATE``, in the cache fingerprint), so the same data gives the same tokens on every day.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from remit.data.sources import DataSource, data_files, is_hf_dataset_dir, iter_limited, looks_local
from remit.data.store import ShardedTokens, ShardWriter, read_meta, token_dtype
from remit.data.tokfiles import check_fit, open_token_files, scan_offsets, token_files
from remit.errors import ConfigError, DataError
from remit.utils.io import atomic_write_json, file_fingerprint, fingerprint

# Counts what really happened, so tests (and logs) can tell a cache hit without timing.
STATS = {"tokenized_sources": 0, "tokenized_docs": 0, "cache_hits": 0}
CHUNK_DOCS = 8192
MASK = "mask"  # the subfolder of a loss=assistant source's loss mask store
CHARS_PER_TOKEN = 8  # the datasets engine's read budget per capped token (English BPE: ~4-4.5 chars/token)
MEMO = "file-hashes.json"  # in the cache folder: (path, size, mtime) -> sha256 of the data files
ENGINES = ("inline", "datasets")
CHAT_DATE = datetime(2025, 1, 1)  # what a chat template's strftime_now sees (the date is not data)


@dataclass
class TokenizedSource:
    tokens: ShardedTokens  # the stream of ids, eos after every document (memory-mapped)
    offsets: np.ndarray  # int64 [n_docs + 1]; document i is tokens[offsets[i]:offsets[i + 1]]
    fingerprint: str
    mask: ShardedTokens | None = None  # uint8 per token, 1 = counted in the loss (loss=assistant); None: all

    @property
    def num_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    def doc(self, i: int) -> np.ndarray:
        return self.tokens.read(int(self.offsets[i]), int(self.offsets[i + 1]))


def tokenizer_fingerprint(tokenizer) -> str:
    special = {k: getattr(tokenizer, k, None) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    special["all"] = sorted(map(str, tokenizer.all_special_tokens))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    state = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return fingerprint({"state": state, "special": special, "len": len(tokenizer)})


def source_fingerprint(src: DataSource, memo: Path | None = None) -> str:
    """The data's part of the cache key; ``memo``: the (path, size, mtime) memo of file hashes to use."""
    path = Path(src.path).expanduser()
    if src.kind == "tokens":
        files = token_files(src)
        return fingerprint({"content": file_fingerprint(files, memo=memo), "files": [str(f) for f in files],
                            "kind": "tokens", "dtype": src.dtype, "eos": src.eos_token_id, "limit": src.limit,
                            **_new_keys(src)})
    if is_hf_dataset_dir(path):
        content = file_fingerprint(path, memo=memo)
    elif looks_local(src.path):
        if not path.exists():
            raise DataError(f"{path}: file not found")
        files = data_files(path)
        content = file_fingerprint(files, memo=memo) + ":" + ",".join(str(f.relative_to(path)) if path.is_dir() else f.name
                                                           for f in files)
    else:  # hub id: named, not content-addressed (the hub dataset may change under the same id)
        content = f"hub:{src.path}:{src.subset}"
    return fingerprint({"content": content, "split": src.split, "fields": src.fields(), "template": src.template,
                        "text_field": src.text_field, "limit": src.limit, "doc_split": src.doc_split,
                        **_new_keys(src)})


def _new_keys(src: DataSource) -> dict:
    """Fingerprint keys of options added later, present only when set (older caches keep their keys)."""
    out: dict = {}
    if src.max_tokens is not None:  # a capped source is a seeded sample (sources.read_order, hub shuffle)
        out["max_tokens"] = src.max_tokens
        out["sample"] = [src.seed or 0, src.shuffle_buffer if not looks_local(src.path) else None]
    if src.kind == "chat":
        out["kind"] = "chat"
    if src.loss != "all":
        out["loss"] = src.loss
    return out


def assistant_spans(tokenizer, messages: list[dict], where: str) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns (header excluded).

    A turn's span runs from the end of the prefix rendered with the generation prompt to the end of the
    prefix that includes the turn (its end-of-turn tokens too, so the model learns to stop).
    """
    def render(msgs, prompt=False):
        return render_chat(tokenizer, msgs, prompt) if msgs else ""

    text, spans = render(messages), []
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        head, upto = render(messages[:k], prompt=True), render(messages[:k + 1])
        if not (text.startswith(upto) and upto.startswith(head)):
            raise DataError(f"{where}: the chat template does not render this conversation's turns as prefixes "
                            f"of each other, so the assistant tokens cannot be found; use loss=all")
        spans.append((len(head), len(upto)))
    return text, spans


def encode_assistant_only(tokenizer, chats: list[list[dict]], dtype, where: str
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lengths, flat ids with eos after each, uint8 mask: 1 on the assistant turns' tokens) of chats."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise DataError(f"{where}: loss=assistant needs a fast (Rust) tokenizer for token offsets")
    eos = tokenizer.eos_token_id
    lengths, ids, masks = [], [], []
    for msgs in chats:
        text, spans = assistant_spans(tokenizer, msgs, where)
        enc = backend.encode(text, add_special_tokens=False)
        m = [any(lo <= start < hi for lo, hi in spans) for start, _ in enc.offsets]
        ids += [*enc.ids, eos]
        masks += [*m, bool(m and m[-1])]
        lengths.append(len(enc.ids) + 1)
    return np.asarray(lengths, np.int64), np.asarray(ids, dtype=dtype), np.asarray(masks, dtype=np.uint8)


class _PinnedClock:
    @staticmethod
    def now(tz=None) -> datetime:
        return CHAT_DATE


@contextmanager
def _pinned_clock():
    # transformers' template global strftime_now() reads chat_template_utils.datetime.now(); a callable passed
    # as a template variable is turned into a string by apply_chat_template, so the clock itself is pinned.
    from transformers.utils import chat_template_utils as ctu

    real, ctu.datetime = ctu.datetime, _PinnedClock
    try:
        yield
    finally:
        ctu.datetime = real


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """``messages`` rendered with the tokenizer's chat template, its clock pinned to ``CHAT_DATE``."""
    with _pinned_clock():
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def render(src: DataSource, tokenizer, docs: list) -> list[str]:
    """The texts to encode: a chat source's messages rendered with the tokenizer's chat template."""
    if src.kind != "chat":
        return docs
    return [render_chat(tokenizer, m) for m in docs]


def _keep(lengths: np.ndarray, done: int, cap: int | None) -> int:
    """How many of a chunk's documents to keep: all, or those up to the first that reaches ``cap`` tokens."""
    if cap is None:
        return len(lengths)
    return min(len(lengths), int(np.searchsorted(done + np.cumsum(lengths), cap)) + 1)


def _add_capped(writer: ShardWriter, lengths: np.ndarray, flat: np.ndarray, done: int, cap: int | None) -> int:
    """Add the documents of a chunk that fit under ``cap``; the tokens written so far after it."""
    n = _keep(lengths, done, cap)
    if n:
        writer.add(lengths[:n], flat[:int(lengths[:n].sum())])
    return done + int(lengths[:n].sum())


def _tokens_done(writer: ShardWriter) -> int:
    return int(sum(int(x.sum()) for x in writer.lengths))


def _full(done: int, cap: int | None) -> bool:
    return cap is not None and done >= cap


def source_key(src: DataSource, tokenizer, cache_dir: str | Path | None = None) -> str:
    """The cache key of ``src`` tokenised by ``tokenizer`` (the ``tok-<key>`` folder under ``cache_dir``).

    Hashing the data is the costly part: a distributed run computes it once, on rank 0, and passes it to
    the other ranks (``key=`` of :func:`tokenize_source`); ``cache_dir`` keeps the memo of file hashes.
    """
    memo = Path(cache_dir) / MEMO if cache_dir is not None else None
    parts = {"tok": tokenizer_fingerprint(tokenizer), "data": source_fingerprint(src, memo)}
    if src.kind == "chat":
        parts["chat_template"] = tokenizer.chat_template
        if "strftime_now" in str(tokenizer.chat_template):
            parts["chat_date"] = CHAT_DATE.isoformat()
    return fingerprint(parts)


def missing_cache(folder: Path) -> DataError:
    """The one line of a process that may only open a cache and finds none."""
    return DataError(f"{folder}: no finished data cache here; only rank 0 of a job (or `remit prepare-data`) "
                     f"builds it: run `remit prepare-data` with the same tokenizer and data first, with "
                     f"data.cache_dir on storage every process sees")


def encode_texts(tokenizer, texts: list[str], batch_size: int = 1024) -> list[list[int]]:
    """Token ids without added special tokens (fast path: the Rust tokenizer, no length warnings)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    out: list[list[int]] = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i:i + batch_size]
        if backend is not None:
            out += [e.ids for e in backend.encode_batch(chunk, add_special_tokens=False)]
        else:
            out += tokenizer(chunk, add_special_tokens=False)["input_ids"]
    return out


def encode_chunk(tokenizer, texts: list[str], dtype) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, flat ids with eos after each document) of a chunk of documents."""
    ids = encode_texts(tokenizer, texts)
    eos = tokenizer.eos_token_id
    lengths = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((t for x in ids for t in (*x, eos)), dtype=dtype, count=int(lengths.sum()))
    return lengths, flat


def _chunks(src: DataSource, size: int, skip: int):
    buf: list[str] = []
    for i, text in enumerate(iter_limited(src)):
        if i < skip:
            continue
        buf.append(text)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def _inline(src: DataSource, tokenizer, writer: ShardWriter, chunk_docs: int,
            mask_writer: ShardWriter | None = None) -> None:
    done = _tokens_done(writer)
    if _full(done, src.max_tokens):
        return
    for texts in _chunks(src, chunk_docs, writer.docs_done):
        if mask_writer is not None:  # the mask's shard first: the ids' shard marks the chunk done
            lengths, flat, mask = encode_assistant_only(tokenizer, texts, writer.dtype, src.path)
            _add_capped(mask_writer, lengths, mask, done, src.max_tokens)
            done = _add_capped(writer, lengths, flat, done, src.max_tokens)
        else:
            done = _add_capped(writer, *encode_chunk(tokenizer, render(src, tokenizer, texts), writer.dtype), done,
                               src.max_tokens)
        if _full(done, src.max_tokens):
            return  # the rest of the source is never read


def _gen_texts(src: dict, fp: str):  # fp keys datasets' own cache of the generator's output
    source = DataSource(**src)
    budget = None if source.max_tokens is None else CHARS_PER_TOKEN * source.max_tokens
    read = 0
    for t in iter_limited(source):
        text = t if isinstance(t, str) else json.dumps(t, ensure_ascii=False)  # chat: rendered in _encode_batch
        yield {"text": text}
        read += len(text)
        if budget is not None and read >= budget:
            return


def _encode_batch(batch: dict, tokenizer, chat: bool = False) -> dict:
    eos = tokenizer.eos_token_id
    texts = [render_chat(tokenizer, json.loads(t)) for t in batch["text"]] if chat else batch["text"]
    return {"ids": [x + [eos] for x in encode_texts(tokenizer, texts)]}


def _datasets(src: DataSource, tokenizer, writer: ShardWriter, chunk_docs: int, num_proc: int, fp: str) -> None:
    from datasets import Dataset, Features, Sequence, Value

    work = writer.folder / "hf"
    try:
        texts = Dataset.from_generator(_gen_texts, gen_kwargs={"src": asdict(src), "fp": fp},
                                       cache_dir=str(work / "texts"), features=Features({"text": Value("string")}))
    except Exception as e:  # datasets wraps the generator's errors: surface remit's own one-line error
        cause = e
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or e) from None
    ids = texts.map(_encode_batch, batched=True, batch_size=1000, num_proc=min(num_proc, len(texts)),
                    remove_columns=["text"], fn_kwargs={"tokenizer": tokenizer, "chat": src.kind == "chat"},
                    new_fingerprint=f"{fp}-ids",
                    cache_file_name=str(work / "ids.arrow"), features=Features({"ids": Sequence(Value("int32"))}),
                    desc=f"tokenise {src.path}")
    done = _tokens_done(writer)
    for lo in range(writer.docs_done, len(ids), chunk_docs):
        if _full(done, src.max_tokens):
            break
        col = ids.data.slice(lo, chunk_docs).column("ids").combine_chunks()
        done = _add_capped(writer, col.value_lengths().to_numpy().astype(np.int64), col.flatten().to_numpy(), done,
                           src.max_tokens)
    del texts, ids
    shutil.rmtree(work, ignore_errors=True)
    if src.max_tokens is not None and not _full(done, src.max_tokens):
        _inline(src, tokenizer, writer, chunk_docs)  # the character budget held too few tokens: read on


def tokenize_source(src: DataSource, tokenizer, *, cache_dir: str | Path | None, num_proc: int = 1,
                    engine: str | None = None, chunk_docs: int = CHUNK_DOCS, key: str | None = None,
                    build: bool = True) -> TokenizedSource:
    """Ids of every document of ``src`` + eos, from the cache when present (memory-mapped).

    ``key``: the :func:`source_key` computed elsewhere (the data is not hashed again); ``build=False``:
    only open the cache (ranks other than the builder), a missing one is :func:`missing_cache`.
    """
    src.validate()
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no eos token: documents cannot be separated when packed")
    if num_proc < 1:
        raise ConfigError(f"data.num_proc={num_proc} must be >= 1")
    engine = engine or ("inline" if num_proc == 1 else "datasets")
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
    if src.kind == "chat" and not getattr(tokenizer, "chat_template", None):
        raise DataError(f"{src.path}: kind=chat renders messages with the tokenizer's chat template, and this "
                        f"tokenizer has none (use the model's own tokenizer, or kind=text with a template)")
    fp = key or source_key(src, tokenizer, cache_dir)
    if cache_dir is None:  # tests and one-off calls: a throwaway folder, ids read into memory
        with tempfile.TemporaryDirectory() as tmp:
            out = tokenize_source(src, tokenizer, cache_dir=tmp, num_proc=num_proc, engine=engine,
                                  chunk_docs=chunk_docs)
            arr = np.asarray(out.tokens)
            mask = None if out.mask is None else ShardedTokens([np.asarray(out.mask)])
            return TokenizedSource(ShardedTokens([arr]), np.array(out.offsets), fp, mask)
    folder = Path(cache_dir) / f"tok-{fp}"
    if src.kind == "tokens":
        return _token_files(src, tokenizer, folder, fp, build)
    meta = read_meta(folder)
    if meta is not None:
        STATS["cache_hits"] += 1
        return _open(folder, meta, fp)
    if not build:
        raise missing_cache(folder)
    writer = ShardWriter(folder, token_dtype(len(tokenizer)))
    mask_writer = None
    if src.loss == "assistant":
        mask_writer = ShardWriter(folder / MASK, np.uint8)
        if mask_writer.docs_done != writer.docs_done:  # killed between a chunk's two shards: start afresh
            shutil.rmtree(folder)
            writer, mask_writer = ShardWriter(folder, writer.dtype), ShardWriter(folder / MASK, np.uint8)
        _inline(src, tokenizer, writer, chunk_docs, mask_writer)
    elif engine == "inline":
        _inline(src, tokenizer, writer, chunk_docs)
    else:
        _datasets(src, tokenizer, writer, chunk_docs, num_proc, fp)
    if writer.docs_done == 0:
        raise DataError(f"{src.path}: empty dataset (no non-empty documents)")
    if mask_writer is not None:
        mask_writer.finish({"fingerprint": fp})
    meta = writer.finish({"fingerprint": fp, "source": src.path})
    STATS["tokenized_sources"] += 1
    STATS["tokenized_docs"] += meta["num_docs"]
    return _open(folder, meta, fp)


def _open(folder: Path, meta: dict, fp: str) -> TokenizedSource:
    offsets = np.load(folder / "offsets.npy", mmap_mode="r")
    mask_meta = read_meta(folder / MASK)
    mask = None if mask_meta is None else ShardedTokens.open(folder / MASK, mask_meta["shards"], "uint8",
                                                             mask_meta.get("shard_bytes"), mask_meta.get("shard_crc32"))
    return TokenizedSource(ShardedTokens.open(folder, meta["shards"], meta["dtype"], meta.get("shard_bytes"),
                                              meta.get("shard_crc32")), offsets, fp, mask)


def _token_files(src: DataSource, tokenizer, folder: Path, fp: str, build: bool) -> TokenizedSource:
    eos = check_fit(src, tokenizer)
    tokens = open_token_files(src)
    if read_meta(folder) is None:
        if not build:
            raise missing_cache(folder)
        offsets = scan_offsets(tokens, eos, len(tokenizer), src.max_tokens)
        if src.limit is not None:
            offsets = offsets[:src.limit + 1]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "offsets.npy", offsets)
        atomic_write_json(folder / "meta.json", {"fingerprint": fp, "source": src.path, "kind": "tokens",
                                                 "num_docs": len(offsets) - 1, "num_tokens": int(offsets[-1])})
    else:
        STATS["cache_hits"] += 1
    return TokenizedSource(tokens, np.load(folder / "offsets.npy", mmap_mode="r"), fp)

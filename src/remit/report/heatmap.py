"""``remit analyze weights``: a token heat-map of ReMiT weights on a text.

Which tokens would ReMiT push up? Every token of the text is coloured by its weight
``w_t = clip(2 sigmoid((delta_t - mean delta) / tau), 1 - eps, 1 + eps)`` with
``delta_t = log p_ref(x_t) - log p_model(x_t)`` (:func:`remit.objectives.remit_weights`, one
row = one sequence, as in training): red = up-weighted (the reference predicts the token
better than the model being trained), blue = down-weighted. Hovering a token shows its weight,
delta and both log-probs; below the text, the tokens with the highest / lowest mean weight
aggregated over the whole text.

    remit analyze weights model=runs/demo/pretrain reference=runs/demo/r0_grpo \\
        text_file=data/midtrain.jsonl out=weights.html

``model`` is the model being trained (pre-annealing checkpoint or vanilla base), ``reference``
the RL model. ``text_file``: ``.txt`` = one text; ``.jsonl``/others via :mod:`remit.data`
(the first ``max_texts`` documents). Long texts are split into rows of ``max_length`` tokens.
Writes ``out`` (standalone HTML) and, unless ``png=false``, a PNG rendering next to it.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from remit.config import ConfigError, check_range, save_config
from remit.models import check_compatible
from remit.utils.io import atomic_write_text


@dataclass
class WeightsConfig:
    model: str = ""  # the model being trained (pre-annealing checkpoint or vanilla base)
    reference: str = ""  # the RL model
    text: str | None = None
    text_file: str | None = None
    epsilon: float = 0.2
    temperature: float = 1.0
    out: str = "weights_heatmap.html"
    max_length: int = 512
    max_texts: int = 8
    top_k: int = 20
    min_count: int = 1
    batch_size: int = 4
    device: str | None = None
    dtype: str | None = None
    png: bool = True

    def validate(self) -> None:
        if not self.model or not self.reference:
            raise ConfigError("model and reference are required (model=DIR reference=DIR)")
        if (self.text is None) == (self.text_file is None):
            raise ConfigError("give exactly one of text=... or text_file=...")
        check_range("epsilon", self.epsilon, 0.0, None, lo_open=True)
        check_range("temperature", self.temperature, 0.0, None, lo_open=True)
        for k in ("max_length", "max_texts", "top_k", "min_count", "batch_size"):
            check_range(k, getattr(self, k), 2 if k == "max_length" else 1)


@dataclass
class TokenScores:
    """Per scored token, in text order (row by row)."""

    texts: list[str]
    text_of: list[int] = field(default_factory=list)        # source text index
    span: list[tuple[int, int] | None] = field(default_factory=list)  # char span in the source text
    token_id: list[int] = field(default_factory=list)
    piece: list[str] = field(default_factory=list)          # the token decoded on its own
    weight: list[float] = field(default_factory=list)
    delta: list[float] = field(default_factory=list)
    logp_model: list[float] = field(default_factory=list)
    logp_ref: list[float] = field(default_factory=list)


def score_texts(model, reference, tokenizer, texts: list[str], *, epsilon: float = 0.2, temperature: float = 1.0,
                max_length: int = 512, batch_size: int = 4, max_windows: int | None = None) -> TokenScores:
    """Both models' fp32 log-probs on ``texts`` and the ReMiT weights of every token."""
    return score_against(model, [reference], tokenizer, texts, epsilon=epsilon, temperature=temperature,
                         max_length=max_length, batch_size=batch_size, max_windows=max_windows)[0]


def score_against(model, references: list, tokenizer, texts: list[str], *, epsilon: float = 0.2,
                  temperature: float = 1.0, max_length: int = 512, batch_size: int = 4,
                  max_windows: int | None = None) -> list[TokenScores]:
    """``score_texts`` for several references: the model is run once, every reference once."""
    import torch

    from remit.objectives import remit_weights
    from remit.report.lm import encode_texts, hidden_states, target_logps


    enc = encode_texts(tokenizer, texts, max_length=max_length, windows=True, max_windows=max_windows)
    R, T = len(enc.rows), max(enc.n_scored)

    def rows_of(m) -> torch.Tensor:  # flat per-token log-probs -> [R, T], zero-padded
        flat, out, pos = target_logps(hidden_states(m, enc, batch_size=batch_size), enc.targets), torch.zeros(R, T), 0
        for i, n in enumerate(enc.n_scored):
            out[i, :n] = flat[pos:pos + n]
            pos += n
        return out

    pm = rows_of(model)
    mask = torch.arange(T)[None, :] < torch.tensor(enc.n_scored)[:, None]
    outs = []
    for reference in references:
        pr = rows_of(reference)
        w = remit_weights(pr, pm, mask, epsilon=epsilon, temperature=temperature)
        out = TokenScores(texts=list(texts))
        for i, n in enumerate(enc.n_scored):
            row = enc.rows[i]
            for t in range(n):
                tok = row[t + 1]
                out.text_of.append(enc.row_of[i])
                out.span.append(enc.offsets[i][t + 1])
                out.token_id.append(tok)
                out.piece.append(tokenizer.decode([tok]))
                out.weight.append(float(w[i, t]))
                out.delta.append(float(pr[i, t] - pm[i, t]))
                out.logp_model.append(float(pm[i, t]))
                out.logp_ref.append(float(pr[i, t]))
        outs.append(out)
    return outs


def top_tokens(s: TokenScores, *, k: int = 20, min_count: int = 1) -> tuple[list[dict], list[dict]]:
    """(up, down): tokens with the highest / lowest mean weight over the text (ties: more frequent first)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for j, tok in enumerate(s.token_id):
        groups[tok].append(j)
    rows = []
    for tok, idx in groups.items():
        if len(idx) < min_count:
            continue
        rows.append({"token": s.piece[idx[0]], "token_id": tok, "count": len(idx),
                     "mean_weight": sum(s.weight[j] for j in idx) / len(idx),
                     "mean_delta": sum(s.delta[j] for j in idx) / len(idx)})
    up = sorted((r for r in rows if r["mean_weight"] > 1.0), key=lambda r: (-r["mean_weight"], -r["count"]))[:k]
    down = sorted((r for r in rows if r["mean_weight"] < 1.0), key=lambda r: (r["mean_weight"], -r["count"]))[:k]
    return up, down


def weight_rgba(w: float, epsilon: float) -> tuple[float, float, float, float]:
    """Red (up-weighted) / blue (down-weighted), opacity = |w - 1| / eps; w = 1 is transparent."""
    x = max(-1.0, min(1.0, (w - 1.0) / epsilon)) if epsilon > 0 else 0.0
    r, g, b = (0.84, 0.19, 0.15) if x > 0 else (0.13, 0.40, 0.67)
    return r, g, b, 0.85 * abs(x)


def _css(rgba) -> str:
    r, g, b, a = rgba
    return f"rgba({round(255 * r)},{round(255 * g)},{round(255 * b)},{a:.3f})"


def _visible(piece: str) -> str:
    return piece.replace(" ", "\u2423").replace("\n", "\\n").replace("\t", "\\t") or "\u2205"


def _segments(s: TokenScores, text_index: int):
    """(plain text, None) and (token text, j) pieces that tile the source text in order."""
    text, cursor, offsets = s.texts[text_index], 0, False
    for j in (j for j, ti in enumerate(s.text_of) if ti == text_index):
        sp = s.span[j]
        if sp is None:  # slow tokenizer: no offsets, show the decoded piece
            yield s.piece[j], j
            continue
        offsets = True
        a, b = sp
        if a > cursor:
            yield text[cursor:a], None
        yield text[max(a, cursor):b], j
        cursor = max(cursor, b)
    if offsets and cursor < len(text):
        yield text[cursor:], None


STYLE = """
.remit-hm { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 14px; line-height: 1.9;
  white-space: pre-wrap; border: 1px solid #ccc; padding: 10px; border-radius: 4px; margin-bottom: 10px; }
.remit-hm .tok { position: relative; border-radius: 2px; cursor: default; }
.remit-hm .tok:hover { outline: 1px solid #333; }
.remit-hm .tok:hover::after { content: attr(data-tip); position: absolute; left: 0; top: 1.6em; z-index: 10;
  white-space: pre; background: #222; color: #fff; padding: 4px 6px; border-radius: 3px; font-size: 12px; }
.remit-legend { display: flex; align-items: center; gap: 8px; font-family: sans-serif; font-size: 13px; }
.remit-legend .bar { width: 260px; height: 14px; border: 1px solid #999;
  background: linear-gradient(to right, rgba(33,102,171,0.85), rgba(255,255,255,0), rgba(214,48,39,0.85)); }
table.remit-top { border-collapse: collapse; font-family: sans-serif; font-size: 13px; margin: 6px 20px 6px 0; }
table.remit-top td, table.remit-top th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
table.remit-top td.t { font-family: monospace; text-align: left; }
"""


def _top_table(rows: list[dict], title: str) -> str:
    body = "".join(f"<tr><td class='t'>{html.escape(_visible(r['token']))}</td><td>{r['count']}</td>"
                   f"<td>{r['mean_weight']:.3f}</td><td>{r['mean_delta']:+.3f}</td></tr>" for r in rows)
    return (f"<table class='remit-top'><caption>{html.escape(title)}</caption><tr><th>token</th><th>count</th>"
            f"<th>mean w</th><th>mean delta</th></tr>{body}</table>")


def render_fragment(s: TokenScores, *, epsilon: float, top_k: int = 20, min_count: int = 1) -> str:
    """The heat-map, legend and top-token tables as an HTML fragment (uses the classes of STYLE)."""
    parts = [f"<div class='remit-legend'><span>w = {1 - epsilon:.2f} (down)</span><span class='bar'></span>"
             f"<span>w = {1 + epsilon:.2f} (up)</span><span>&nbsp;hover a token for its numbers</span></div>"]
    for ti in range(len(s.texts)):
        spans = []
        for seg, j in _segments(s, ti):
            if j is None:
                spans.append(html.escape(seg))
                continue
            tip = (f"token {_visible(s.piece[j])}\nweight {s.weight[j]:.4f}\ndelta {s.delta[j]:+.4f}\n"
                   f"log p model {s.logp_model[j]:.4f}\nlog p ref {s.logp_ref[j]:.4f}")
            spans.append(f"<span class='tok' data-w='{s.weight[j]:.4f}' data-tip='{html.escape(tip, quote=True)}' "
                         f"style='background:{_css(weight_rgba(s.weight[j], epsilon))}'>{html.escape(seg)}</span>")
        parts.append(f"<div class='remit-hm'>{''.join(spans)}</div>")
    up, down = top_tokens(s, k=top_k, min_count=min_count)
    parts.append("<div style='display:flex;flex-wrap:wrap'>" + _top_table(up, "most up-weighted tokens")
                 + _top_table(down, "most down-weighted tokens") + "</div>")
    return "\n".join(parts)


def render_html(s: TokenScores, *, epsilon: float, title: str, subtitle: str = "", top_k: int = 20,
                min_count: int = 1) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>body{{font-family:sans-serif;margin:20px;max-width:1100px}}{STYLE}</style></head><body>"
            f"<h2>{html.escape(title)}</h2><p>{html.escape(subtitle)}</p>"
            f"{render_fragment(s, epsilon=epsilon, top_k=top_k, min_count=min_count)}</body></html>\n")


def render_png(s: TokenScores, path: str | Path, *, epsilon: float, title: str = "ReMiT token weights",
               width: int = 96, max_lines: int = 36) -> Path:
    """A monospace rendering of the heat-map (for report.md and quick looks without a browser)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap, Normalize
    from matplotlib.patches import Rectangle

    cells = []  # (line, col, char, rgba or None)
    line = 0
    for ti in range(len(s.texts)):
        chars = [(ch, None if j is None else weight_rgba(s.weight[j], epsilon))
                 for seg, j in _segments(s, ti) for ch in seg]
        col, i = 0, 0
        while i < len(chars):
            ch = chars[i][0]
            if ch == "\n":
                line, col, i = line + 1, 0, i + 1
                continue
            if col > 0 and not ch.isspace() and (i == 0 or chars[i - 1][0].isspace()):
                end = next((k for k in range(i, len(chars)) if chars[k][0].isspace()), len(chars))
                if col + end - i > width and end - i <= width:  # wrap before a word that does not fit
                    line, col = line + 1, 0
            if col >= width:
                line, col = line + 1, 0
            cells.append((line, col, ch, chars[i][1]))
            col, i = col + 1, i + 1
        line += 2  # blank line between texts
    cells = [c for c in cells if c[0] < max_lines]
    n_lines = min(max_lines, max((c[0] for c in cells), default=0) + 1)
    fs = 9
    fig_w, fig_h = width * 0.6 * fs / 72 + 0.6, n_lines * 1.6 * fs / 72 + 1.1
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes([0.02, 0.75 / fig_h, 0.96, 1 - 1.1 / fig_h])
    ax.set_xlim(0, width)
    ax.set_ylim(n_lines, 0)
    ax.axis("off")
    for ln, c, ch, rgba in cells:
        if rgba is not None and rgba[3] > 0:
            ax.add_patch(Rectangle((c, ln + 0.05), 1, 0.9, color=rgba, lw=0))
        if not ch.isspace():
            ax.text(c + 0.5, ln + 0.5, ch, family="monospace", fontsize=fs, ha="center", va="center")
    ax.set_title(title, fontsize=11)
    cmap = LinearSegmentedColormap.from_list("remit", [weight_rgba(1 - epsilon, epsilon)[:3], (1, 1, 1),
                                                       weight_rgba(1 + epsilon, epsilon)[:3]])
    cax = fig.add_axes([0.3, 0.42 / fig_h, 0.4, 0.14 / fig_h])
    cb = fig.colorbar(plt.cm.ScalarMappable(Normalize(1 - epsilon, 1 + epsilon), cmap), cax=cax,
                      orientation="horizontal")
    cb.ax.set_title("ReMiT weight (blue: down-weighted, red: up-weighted)", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _load_texts(cfg: WeightsConfig) -> list[str]:
    from remit.report.lm import read_text_file

    return [cfg.text] if cfg.text is not None else read_text_file(cfg.text_file, limit=cfg.max_texts)[:cfg.max_texts]


def run(cfg: WeightsConfig) -> Path:
    """Write the heat-map HTML (and PNG); returns the HTML path."""
    from remit.report.lm import load_pair

    texts = _load_texts(cfg)
    check_compatible(cfg.model, cfg.reference)
    model, tok = load_pair(cfg.model, device=cfg.device, dtype=cfg.dtype)
    ref, _ = load_pair(cfg.reference, device=cfg.device, dtype=cfg.dtype)
    s = score_texts(model, ref, tok, texts, epsilon=cfg.epsilon, temperature=cfg.temperature,
                    max_length=cfg.max_length, batch_size=cfg.batch_size)
    out = Path(cfg.out)
    mean_w = sum(s.weight) / len(s.weight)
    sub = (f"model (being trained): {cfg.model} | reference: {cfg.reference} | eps={cfg.epsilon} "
           f"tau={cfg.temperature} | {len(s.weight)} tokens, mean weight {mean_w:.4f}, "
           f"up-weighted (w>1.01) {sum(w > 1.01 for w in s.weight)}, down-weighted (w<0.99) "
           f"{sum(w < 0.99 for w in s.weight)}")
    atomic_write_text(out, render_html(s, epsilon=cfg.epsilon, title="ReMiT token weights", subtitle=sub,
                                       top_k=cfg.top_k, min_count=cfg.min_count))
    if cfg.png:
        render_png(s, out.with_suffix(".png"), epsilon=cfg.epsilon)
    save_config(cfg, out.with_suffix(".config.yaml"))
    return out

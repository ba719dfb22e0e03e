"""token_logps / token_logps_from_hidden against fp64 references (values and gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from remit.objectives import token_logps, token_logps_from_hidden

B, T, V, H = 3, 9, 37, 6


def _labels(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, V, (B, T), generator=g)
    y[0, :3] = -100
    y[2, -1] = -100
    return y


def _reference(logits64: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    lp = F.log_softmax(logits64, -1).gather(-1, labels.clamp_min(0)[..., None]).squeeze(-1)
    return lp.masked_fill(labels == -100, 0.0)


@pytest.mark.parametrize("chunk_size", [None, 1, 4, 7, 1000])
def test_token_logps_matches_fp64_values_and_grads(chunk_size):
    g = torch.Generator().manual_seed(1)
    logits = (3 * torch.randn(B, T, V, generator=g)).requires_grad_()
    upstream = torch.randn(B, T, generator=g)
    labels = _labels()
    lp = token_logps(logits, labels, chunk_size=chunk_size)
    (lp * upstream).sum().backward()

    x64 = logits.detach().double().requires_grad_()
    ref = _reference(x64, labels)
    (ref * upstream.double()).sum().backward()
    assert lp.dtype == torch.float32 and lp.shape == labels.shape
    torch.testing.assert_close(lp.double(), ref.detach(), atol=2e-6, rtol=0)
    torch.testing.assert_close(logits.grad.double(), x64.grad, atol=1e-6, rtol=0)


def test_ignored_positions_give_zero_and_no_grad():
    logits = torch.randn(B, T, V, requires_grad=True)
    labels = _labels()
    lp = token_logps(logits, labels, chunk_size=2)
    lp.sum().backward()
    ignored = labels == -100
    assert torch.equal(lp[ignored], torch.zeros(int(ignored.sum())))
    assert torch.equal(logits.grad[ignored], torch.zeros(int(ignored.sum()), V))
    # Each counted row's gradient sums to 0 (onehot - softmax).
    torch.testing.assert_close(logits.grad[~ignored].sum(-1), torch.zeros(int((~ignored).sum())), atol=1e-6, rtol=0)


def test_gradcheck_fp64():
    x = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (2, 5))
    y[1, 2] = -100
    assert torch.autograd.gradcheck(lambda t: token_logps(t, y, chunk_size=3), (x,))


def test_bf16_logits_fp32_output_and_bf16_grad():
    x = torch.randn(B, T, V).bfloat16().requires_grad_()
    labels = _labels()
    lp = token_logps(x, labels)
    lp.sum().backward()
    x64 = x.detach().double().requires_grad_()
    ref = _reference(x64, labels)
    ref.sum().backward()
    assert lp.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(lp.double(), ref.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.grad.double(), x64.grad, atol=4e-3, rtol=0)  # bf16 rounding of the grad


def test_non_contiguous_logits():
    base = torch.randn(V, T, B)
    x = base.permute(2, 1, 0).requires_grad_()  # [B, T, V], not contiguous
    labels = _labels()
    token_logps(x, labels).sum().backward()
    x64 = x.detach().double().requires_grad_()
    _reference(x64, labels).sum().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, atol=1e-6, rtol=0)


def _saved_sizes(fn):
    """numel and data_ptr of every tensor autograd saves while running fn()."""
    saved = []

    def pack(t):
        saved.append((t.numel(), t.data_ptr()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return saved


def test_no_full_log_softmax_is_saved():
    logits = torch.randn(B, T, V, requires_grad=True)
    labels = _labels()
    saved = _saved_sizes(lambda: token_logps(logits, labels, chunk_size=2))
    big = [s for s in saved if s[0] >= B * T * V]
    assert big == [(B * T * V, logits.data_ptr())]  # only the logits themselves, by reference


def test_hidden_variant_saves_no_vocab_sized_tensor():
    hidden = torch.randn(B, T, H, requires_grad=True)
    weight = torch.randn(V, H, requires_grad=True)
    saved = _saved_sizes(lambda: token_logps_from_hidden(hidden, weight, _labels(), chunk_size=2))
    assert all(n < B * T * V for n, _ in saved)


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 1, 5])
def test_hidden_variant_matches_fp64(with_bias, chunk_size):
    g = torch.Generator().manual_seed(2)
    hidden = torch.randn(B, T, H, generator=g).requires_grad_()
    weight = torch.randn(V, H, generator=g).requires_grad_()
    bias = torch.randn(V, generator=g).requires_grad_() if with_bias else None
    upstream = torch.randn(B, T, generator=g)
    labels = _labels(3)
    lp = token_logps_from_hidden(hidden, weight, labels, bias=bias, chunk_size=chunk_size)
    (lp * upstream).sum().backward()

    h64, w64 = hidden.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    b64 = bias.detach().double().requires_grad_() if with_bias else None
    ref = _reference(F.linear(h64, w64, b64), labels)
    (ref * upstream.double()).sum().backward()
    torch.testing.assert_close(lp.double(), ref.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(hidden.grad.double(), h64.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(weight.grad.double(), w64.grad, atol=1e-5, rtol=0)
    if with_bias:
        torch.testing.assert_close(bias.grad.double(), b64.grad, atol=1e-5, rtol=0)


def test_hidden_variant_gradcheck_fp64():
    h = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(11, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (2, 4))
    y[0, 0] = -100
    assert torch.autograd.gradcheck(lambda h, w, b: token_logps_from_hidden(h, w, y, bias=b, chunk_size=3), (h, w, b))


def test_bad_input_raises_clear_errors():
    x = torch.randn(2, 3, 5)
    with pytest.raises(ValueError, match="plus a vocab dim"):
        token_logps(x, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        token_logps(x, torch.full((2, 3), 5))
    with pytest.raises(ValueError, match="chunk_size"):
        token_logps(x, torch.zeros(2, 3, dtype=torch.long), chunk_size=0)
    with pytest.raises(ValueError, match="integer"):
        token_logps(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\[vocab, 4\]"):
        token_logps_from_hidden(torch.randn(2, 3, 4), torch.randn(5, 3), torch.zeros(2, 3, dtype=torch.long))


def test_from_hidden_backward_keeps_the_autocast_dtype():
    """Under autocast every matmul of the chunked head (forward, recompute, both grads) runs in bf16, like an
    unchunked lm_head would; the log-probs stay fp32 and the gradients match the unchunked autocast ones."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class MatmulDtypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen: list[tuple[str, torch.dtype]] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.__name__.split(".")[0]
            if name in ("mm", "addmm", "bmm", "matmul", "linear"):
                self.seen.append((name, args[0].dtype))
            return func(*args, **(kwargs or {}))

    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(B, T, H, generator=g).requires_grad_()
    weight = torch.randn(V, H, generator=g).requires_grad_()
    y = _labels()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp = token_logps_from_hidden(hidden, weight, y, chunk_size=4)
    assert lp.dtype == torch.float32
    mode = MatmulDtypes()
    with mode:
        lp.sum().backward()
    assert len(mode.seen) >= 3 * 7 and {d for _, d in mode.seen} == {torch.bfloat16}  # 7 chunks of 4 rows

    h2, w2 = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = F.linear(h2, w2)
    F.log_softmax(logits.float(), -1).gather(-1, y.clamp_min(0)[..., None]).squeeze(-1).masked_fill(
        y == -100, 0.0).sum().backward()
    torch.testing.assert_close(hidden.grad, h2.grad, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(weight.grad, w2.grad, atol=2e-2, rtol=2e-2)


def test_default_chunk_rows_per_device():
    from remit.objectives.logprobs import CUDA_CHUNK_ELEMENTS, DEFAULT_CHUNK_ELEMENTS, _rows_per_chunk

    assert _rows_per_chunk(None, 100352, torch.device("cpu")) == DEFAULT_CHUNK_ELEMENTS // 100352 == 167
    assert _rows_per_chunk(None, 100352, torch.device("cuda", 0)) == CUDA_CHUNK_ELEMENTS // 100352 == 1337
    assert _rows_per_chunk(7, 100352, torch.device("cuda")) == 7

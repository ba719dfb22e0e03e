"""NTP and ReMiT objectives: closed forms and invariants (padding, 1 x 8 vs 8 x 1 micro-batches)."""

from __future__ import annotations

import pytest
import torch

from remit.errors import ConfigError
from remit.objectives import KD, NTP, ObjectiveInputs, ReMiT, Rho1, remit_weights, summarize, token_logps

V, H = 13, 8


class TinyLM(torch.nn.Module):
    """Embedding + linear head: enough to check gradients w.r.t. real parameters."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = torch.nn.Embedding(V, H)
        self.head = torch.nn.Linear(H, V)

    def forward(self, ids):
        return self.head(torch.tanh(self.emb(ids)))


def _data(seed=0, b=8, t=10):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (b, t), generator=g)
    labels = torch.randint(0, V, (b, t), generator=g)
    for i in range(b):  # rows with different numbers of counted tokens (the contract matters)
        labels[i, t - i % 5:] = -100
    return ids, labels


def _inputs(model, ref_model, ids, labels, doc_ids=None):
    logits = model(ids)
    with torch.no_grad():
        ref_logits = ref_model(ids)
    return ObjectiveInputs(
        policy_logps=token_logps(logits, labels), mask=labels != -100,
        ref_logps=token_logps(ref_logits, labels), doc_ids=doc_ids,
        policy_logits=logits, ref_logits=ref_logits)


def test_ntp_is_mean_cross_entropy():
    model, ids, labels = TinyLM(0), *_data()
    logits = model(ids)
    out = NTP()(ObjectiveInputs(token_logps(logits, labels), labels != -100))
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), reduction="sum")
    torch.testing.assert_close(out.loss_sum, ce, atol=1e-4, rtol=1e-6)
    assert out.denom.item() == (labels != -100).sum().item()


def test_remit_with_identical_reference_is_ntp_bit_for_bit():
    model, ids, labels = TinyLM(0), *_data()
    grads = []
    for objective in (NTP(), ReMiT()):
        model.zero_grad()
        inp = _inputs(model, model, ids, labels)
        out = objective(inp)
        (out.loss_sum / out.denom).backward()
        grads.append(([p.grad.clone() for p in model.parameters()], out.loss_sum.detach(), out.denom))
    (g_ntp, l_ntp, d_ntp), (g_remit, l_remit, d_remit) = grads
    assert torch.equal(l_ntp, l_remit) and torch.equal(d_ntp, d_remit)
    assert all(torch.equal(a, b) for a, b in zip(g_ntp, g_remit))


def test_remit_loss_closed_form_and_weight_normalisation():
    g = torch.Generator().manual_seed(5)
    policy = (-torch.rand(2, 6, generator=g) * 3).requires_grad_()
    ref = -torch.rand(2, 6, generator=g) * 3
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    w = remit_weights(ref, policy, mask, epsilon=0.2)
    out = ReMiT(epsilon=0.2)(ObjectiveInputs(policy, mask, ref_logps=ref))
    torch.testing.assert_close(out.loss_sum, (w * -policy)[mask].sum())
    assert out.denom.item() == 10
    logged = summarize(out.stats)  # the statistics are sums over the same weights and deltas
    assert logged["w_mean"] == pytest.approx(w[mask].double().mean().item(), abs=1e-12)
    assert logged["delta_mean"] == pytest.approx((ref - policy.detach())[mask].double().mean().item(), abs=1e-6)
    assert ReMiT()(ObjectiveInputs(policy, mask, ref_logps=ref, want_stats=False)).stats == {}
    out_w = ReMiT(normalize="weights")(ObjectiveInputs(policy, mask, ref_logps=ref))
    torch.testing.assert_close(out_w.denom, w.sum())
    out.loss_sum.backward()
    torch.testing.assert_close(policy.grad, -w)  # no gradient through the (detached) weights


def test_frozen_base_weights_ignore_the_policy():
    g = torch.Generator().manual_seed(6)
    ref, base = -torch.rand(2, 5, generator=g), -torch.rand(2, 5, generator=g)
    mask = torch.ones(2, 5, dtype=torch.bool)
    grads, logged = [], []
    for _ in range(2):  # two different policies
        policy = (-torch.rand(2, 5, generator=g)).requires_grad_()
        out = ReMiT()(ObjectiveInputs(policy, mask, ref_logps=ref, base_logps=base))
        out.loss_sum.backward()
        grads.append(policy.grad)
        logged.append(summarize(out.stats))
    # d loss / d log p = -w: the same weights whatever the policy, those of (ref, base)
    assert torch.equal(grads[0], grads[1]) and torch.equal(-grads[0], remit_weights(ref, base, mask))
    assert logged[0] == logged[1]


def test_remit_config_and_missing_inputs():
    with pytest.raises(ConfigError, match="epsilon"):
        ReMiT(epsilon=0)
    with pytest.raises(ConfigError, match="temperature"):
        ReMiT(temperature=-1.0)
    with pytest.raises(ConfigError, match="normalize"):
        ReMiT(normalize="mean")
    x = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="ref_logps"):
        ReMiT()(ObjectiveInputs(x, torch.ones(1, 3)))
    with pytest.raises(ValueError, match="doc_ids"):
        ReMiT(per_document=True)(ObjectiveInputs(x, torch.ones(1, 3), ref_logps=x))
    assert (NTP.needs, ReMiT.needs, Rho1.needs, KD.needs) == ("none", "ref_logps", "ref_logps", "ref_logits")


OBJECTIVES = [NTP(), ReMiT(), ReMiT(normalize="weights"), ReMiT(per_document=True, temperature=0.5), Rho1(0.6),
              KD(alpha=0.5, temperature=2.0)]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: repr(o))
def test_padding_changes_nothing(objective):
    model, ref_model = TinyLM(0), TinyLM(1)
    ids, labels = _data(b=3, t=7)
    doc_ids = torch.arange(7).div(3, rounding_mode="floor").expand(3, 7).contiguous()
    results = []
    for pad in (0, 5):
        model.zero_grad()
        p_ids = torch.cat([ids, torch.randint(0, V, (3, pad))], 1)
        p_labels = torch.cat([labels, torch.full((3, pad), -100)], 1)
        p_docs = torch.cat([doc_ids, torch.full((3, pad), 99)], 1)
        out = objective(_inputs(model, ref_model, p_ids, p_labels, p_docs))
        (out.loss_sum / out.denom).backward()
        results.append((out.loss_sum.detach(), out.denom, [p.grad.clone() for p in model.parameters()]))
    (l0, d0, g0), (l1, d1, g1) = results
    torch.testing.assert_close(l1, l0, atol=1e-6, rtol=1e-6)
    assert torch.equal(d1, d0)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)


# Rho1 selects per micro-batch by design, so only keep_ratio=1 is accumulation-invariant.
@pytest.mark.parametrize("objective", [NTP(), ReMiT(), ReMiT(normalize="weights"), Rho1(1.0), KD(alpha=0.3)],
                         ids=lambda o: repr(o))
def test_one_by_eight_equals_eight_by_one_micro_batches(objective):
    model, ref_model = TinyLM(2), TinyLM(3)
    ids, labels = _data(seed=4)
    out = objective(_inputs(model, ref_model, ids, labels))
    (out.loss_sum / out.denom).backward()
    full = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    denom = torch.zeros(())
    for i in range(8):  # the global-token-count contract: sum loss_sum and denom, divide once
        out_i = objective(_inputs(model, ref_model, ids[i:i + 1], labels[i:i + 1]))
        out_i.loss_sum.backward()
        denom += out_i.denom
    for p, g in zip(model.parameters(), full):
        torch.testing.assert_close(p.grad / denom, g, atol=1e-6, rtol=0)

"""RHO-1 and KD baselines against closed forms, F.kl_div and fp64 references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from remit.errors import ConfigError
from remit.objectives import KD, NTP, ObjectiveInputs, Rho1, soft_cross_entropy, summarize, token_logps

# ------------------------------------------------------------------------------------------------ RHO-1


def test_rho1_keep_all_is_cross_entropy_exactly():
    g = torch.Generator().manual_seed(0)
    policy = -torch.rand(3, 8, generator=g) * 4
    ref = -torch.rand(3, 8, generator=g) * 4
    mask = torch.rand(3, 8, generator=g) > 0.3
    rho = Rho1(keep_ratio=1.0)(ObjectiveInputs(policy, mask, ref_logps=ref))
    ntp = NTP()(ObjectiveInputs(policy, mask))
    assert torch.equal(rho.loss_sum, ntp.loss_sum) and torch.equal(rho.denom, ntp.denom)
    assert summarize(rho.stats)["kept_fraction"] == 1.0


def test_rho1_keeps_the_top_excess_tokens_and_divides_by_their_number():
    policy = torch.tensor([[-1.0, -2.0, -3.0, -4.0, -5.0], [-1.0, -1.0, -1.0, -1.0, -9.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, -1.0, -1.0, -1.0, -1.0], [-1.5, -0.5, -1.0, -3.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], dtype=torch.bool)
    # excess = loss_theta - loss_ref = ref - policy:  row0 [0,1,2,3,4], row1 [-.5,.5,0,-2,(9: masked)]
    out = Rho1(keep_ratio=0.5)(ObjectiveInputs(policy, mask, ref_logps=ref))  # ceil(0.5 * 9) = 5 kept
    expected_keep = torch.tensor([[0, 1, 1, 1, 1], [0, 1, 0, 0, 0]], dtype=torch.bool)
    assert out.denom.item() == 5
    assert out.loss_sum.item() == pytest.approx(2 + 3 + 4 + 5 + 1)
    out.loss_sum.backward()
    assert torch.equal(policy.grad, -expected_keep.float())  # the kept tokens, and only those
    logged = summarize(out.stats)
    assert logged["kept_fraction"] == pytest.approx(5 / 9)
    assert logged["excess_kept_mean"] == pytest.approx((1 + 2 + 3 + 4 + 0.5) / 5)


def test_rho1_ratio_rounding_and_validation():
    policy, ref, mask = torch.zeros(1, 10), torch.arange(10.0)[None], torch.ones(1, 10, dtype=torch.bool)
    assert Rho1(0.6)(ObjectiveInputs(policy, mask, ref_logps=ref)).denom.item() == 6  # not 7 (0.6 * 10 rounding)
    assert Rho1(0.01)(ObjectiveInputs(policy, mask, ref_logps=ref)).denom.item() == 1
    empty = Rho1(0.6)(ObjectiveInputs(policy, torch.zeros(1, 10, dtype=torch.bool), ref_logps=ref))
    assert empty.denom.item() == 0 and empty.loss_sum.item() == 0
    for bad in (0.0, 1.5, -0.2, float("nan")):
        with pytest.raises(ConfigError, match="keep_ratio"):
            Rho1(bad)


# --------------------------------------------------------------------------------------------------- KD


def _kd_case(seed=0, b=2, t=5, v=17):
    g = torch.Generator().manual_seed(seed)
    policy_logits = (2 * torch.randn(b, t, v, generator=g)).requires_grad_()
    ref_logits = 2 * torch.randn(b, t, v, generator=g)
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[0, -2:] = -100
    return policy_logits, ref_logits, labels


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_soft_ce_matches_kl_div_plus_entropy(temperature):
    x, r, labels = _kd_case()
    mask = labels != -100
    ce = soft_cross_entropy(x, r, mask, temperature=temperature, chunk_size=3)
    log_q = F.log_softmax(x.detach().double() / temperature, -1)
    log_p = F.log_softmax(r.double() / temperature, -1)
    kl = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    torch.testing.assert_close(ce.double(), torch.where(mask, kl + entropy, 0.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("temperature,scale_t2", [(1.0, False), (2.0, False), (2.0, True)])
def test_kd_loss_and_grad_match_fp64_reference(temperature, scale_t2):
    x, r, labels = _kd_case(1)
    mask = labels != -100
    alpha = 0.3
    out = KD(alpha=alpha, temperature=temperature, scale_t2=scale_t2, chunk_size=4)(
        ObjectiveInputs(token_logps(x, labels), mask, policy_logits=x, ref_logits=r))
    out.loss_sum.backward()

    x64 = x.detach().double().requires_grad_()
    hard = -F.log_softmax(x64, -1).gather(-1, labels.clamp_min(0)[..., None]).squeeze(-1)
    p = F.softmax(r.double() / temperature, -1)
    soft = -(p * F.log_softmax(x64 / temperature, -1)).sum(-1) * (temperature**2 if scale_t2 else 1.0)
    ref_loss = ((1 - alpha) * hard + alpha * soft)[mask].sum()
    ref_loss.backward()
    torch.testing.assert_close(out.loss_sum.double(), ref_loss.detach(), atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(x.grad.double(), x64.grad, atol=1e-6, rtol=0)
    assert out.denom.item() == mask.sum().item()


def test_kd_alpha_zero_is_cross_entropy_and_ref_gets_no_grad():
    x, r, labels = _kd_case(2)
    r.requires_grad_()
    mask = labels != -100
    lp = token_logps(x, labels)
    kd = KD(alpha=0.0)(ObjectiveInputs(lp, mask, policy_logits=x, ref_logits=r))
    ntp = NTP()(ObjectiveInputs(lp, mask))
    assert torch.equal(kd.loss_sum, ntp.loss_sum)
    KD(alpha=1.0)(ObjectiveInputs(lp, mask, policy_logits=x, ref_logits=r)).loss_sum.backward()
    assert r.grad is None
    assert torch.equal(x.grad[~mask], torch.zeros(int((~mask).sum()), x.shape[-1]))


def test_soft_ce_gradcheck_fp64_and_self_distillation_minimum():
    x = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, 3, 7, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda t: soft_cross_entropy(t, r, mask, temperature=1.7, chunk_size=2), (x,))
    # CE(p, p) is the entropy and its gradient is zero (the minimum over q).
    same = r.clone().requires_grad_()
    soft_cross_entropy(same, r).sum().backward()
    torch.testing.assert_close(same.grad, torch.zeros_like(r), atol=1e-12, rtol=0)


def test_kd_validation():
    with pytest.raises(ConfigError, match="alpha"):
        KD(alpha=1.2)
    with pytest.raises(ConfigError, match="temperature"):
        KD(temperature=0)
    with pytest.raises(ValueError, match="ref_logits"):
        KD()(ObjectiveInputs(torch.zeros(1, 2), torch.ones(1, 2)))

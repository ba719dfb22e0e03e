"""One optimizer step of every training run: :class:`Trainer` (the loop is ``remit.midtrain.engine``).

:meth:`Trainer.step` runs a list of micro-batches under the global-token-count contract
(docs/ARCHITECTURE.md): each micro-batch backpropagates its objective's ``loss_sum``; the denominators
are summed over micro-batches and ranks (one all-reduce) and the gradients are scaled once by
``world_size / global_denom`` (DDP / FSDP2 average over ranks) before clipping and AdamW. So 1 x 8 and
8 x 1 micro-batches, or 1 and 2 processes, give the same update. On a logged step the objective's
summable statistics are added up too; :meth:`Trainer.pop_stats` reduces them over ranks and returns
``remit.objectives.stats.summarize`` of the totals. The trainer knows no method: it scores the frozen
models it is given (the run builder gives those the method needs) and logs what the objective reports.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from remit.midtrain.distributed import World, all_reduce_sum, no_sync
from remit.midtrain.reference import score_rows
from remit.objectives import stats
from remit.objectives.base import ObjectiveInputs
from remit.utils.integrations import autocast

__all__ = ["Trainer", "NonFiniteLoss", "build_optimizer"]


class NonFiniteLoss(Exception):
    def __init__(self, what: str, value: float):
        super().__init__(f"{what} is {value}")
        self.what, self.value = what, value


def build_optimizer(model: torch.nn.Module, cfg, *, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW; no weight decay on vectors (norms, biases). ``fused``: the fused kernel (``perf.fused_adamw``)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                             **({"fused": True} if fused else {}))


class Trainer:
    """One optimizer step: forward/backward per micro-batch, global denominator, scale, clip, AdamW."""

    def __init__(self, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, objective, *, world: World,
                 reference=None, base=None, grad_clip: float = 0.0, autocast_dtype: torch.dtype | None = None,
                 reference_rows: int | None = None, reduce_every_micro_batch: bool = False):
        self.policy, self.optimizer, self.objective = policy, optimizer, objective
        self.world, self.reference, self.base = world, reference, base
        self.grad_clip, self.autocast_dtype = grad_clip, autocast_dtype
        self.reference_rows = reference_rows  # rows per reference forward (perf.reference_micro_batch_size)
        self.sums: dict[str, torch.Tensor] = {}  # the objective's summable statistics since the last log
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        # FSDP2: reduce-scatter each micro-batch's gradients (fsdp.reduce_every_micro_batch) instead of holding
        # unsharded ones until the last micro-batch
        self.reduce_every = reduce_every_micro_batch

    def _autocast(self, device: torch.device):
        return autocast(device.type, self.autocast_dtype)

    def _frozen_logps(self, frozen, micro_batches: list[dict[str, torch.Tensor]], device: torch.device):
        """Per micro-batch (log-probs, logits) of a frozen model; with ``reference_rows`` in larger forwards."""
        if frozen is None:
            return [(None, None)] * len(micro_batches)
        if self.reference_rows is None or not getattr(frozen, "batchable", False):
            return [None] * len(micro_batches)  # scored inside the loop, one micro-batch at a time
        return score_rows(frozen, micro_batches, self.reference_rows, device)

    def step(self, micro_batches: list[dict[str, torch.Tensor]], lr: float, *, collect_stats: bool = False
             ) -> dict[str, float]:
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        device = torch.device(self.world.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        denom = torch.zeros((), dtype=torch.float64, device=device)
        nll_sum = torch.zeros((), dtype=torch.float64, device=device)  # plain NTP loss, comparable across methods
        n_tokens = torch.zeros((), dtype=torch.float64, device=device)
        last = len(micro_batches) - 1
        refs = self._frozen_logps(self.reference, micro_batches, device)  # given only when the method needs it
        bases = self._frozen_logps(self.base, micro_batches, device)
        for i, mb in enumerate(micro_batches):
            mb = {k: v.to(device, non_blocking=True) for k, v in mb.items()}
            mask = mb["labels"] != -100
            ref_logps, ref_logits = refs[i] if refs[i] is not None else self.reference(mb)
            base_logps, _ = bases[i] if bases[i] is not None else self.base(mb)
            with no_sync(self.policy, sync=(i == last) or self.reduce_every):
                with self._autocast(device):
                    logps, logits = self.policy(mb["input_ids"], mb["labels"], mb.get("position_ids"))
                out = self.objective(ObjectiveInputs(
                    policy_logps=logps, mask=mask, ref_logps=ref_logps, base_logps=base_logps,
                    doc_ids=mb.get("doc_ids"), policy_logits=logits, ref_logits=ref_logits, want_stats=collect_stats))
                out.loss_sum.backward()
            loss_sum += out.loss_sum.detach().double()
            denom += out.denom.detach().double()
            nll_sum -= (logps.detach().double() * mask).sum()
            n_tokens += mask.sum()
            if collect_stats:
                stats.accumulate(self.sums, out.stats)
        totals = all_reduce_sum(torch.stack([loss_sum, denom, nll_sum, n_tokens]), self.world)
        total_denom = float(totals[1])
        loss = float(totals[0]) / total_denom if total_denom > 0 else 0.0
        nll = float(totals[2]) / float(totals[3]) if float(totals[3]) > 0 else 0.0
        if not math.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLoss("the loss", loss)
        grad_norm = 0.0
        if total_denom > 0:
            scale = self.world.world_size / total_denom
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(scale)
            max_norm = self.grad_clip if self.grad_clip > 0 else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
            if hasattr(norm, "full_tensor"):  # FSDP2 DTensor
                norm = norm.full_tensor()
            grad_norm = float(norm)
            if not math.isfinite(grad_norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLoss("the gradient norm", grad_norm)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss, "nll": nll, "denom": total_denom, "grad_norm": grad_norm}

    def pop_stats(self) -> dict[str, Any]:
        """The objective's statistics since the last call, summed over micro-batches and ranks, summarised."""
        vec, layout = stats.flatten(self.sums)
        self.sums = {}
        if not layout:  # every rank runs the same objective, so all of them skip the all-reduce together
            return {}
        return stats.summarize(stats.unflatten(all_reduce_sum(vec.to(self.world.device), self.world).cpu(), layout))

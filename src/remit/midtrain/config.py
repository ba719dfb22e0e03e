"""Typed configs of the training engine (pre-training and mid-training share one loop).

    from remit.config import load_config
    cfg = load_config(MidtrainConfig, "configs/midtrain/remit.yaml", ["optim.lr=3e-4", "method.epsilon=0.1"])

Batch sizes are in rows of ``data.seq_len`` tokens: ``optim.batch_size`` is the GLOBAL batch of one
optimizer step; each rank runs ``batch_size / (micro_batch_size * world_size)`` micro-batches, so the
same config gives the same update on 1 or N processes and for any micro-batch size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from remit.config import ConfigError, check_choice, check_range
from remit.data.sources import DataSource
from remit.methods.registry import find_method, get_method, method_names, vanilla_arm
from remit.models.compat import check_positions
from remit.models.tiny import ModelConfig

__all__ = [
    "ModelSource", "DataConfig", "OptimConfig", "ScheduleConfig", "MethodConfig",
    "ReferenceConfig", "LoggingConfig", "PerfConfig", "FSDPConfig", "TrainConfig", "PretrainConfig", "MidtrainConfig",
]


@dataclass
class ModelSource:
    """Where training starts: an HF directory / hub id (``path``), or a fresh model (``fresh``, pre-training).

    A fresh model needs a tokenizer: ``tokenizer`` (dir or hub id), or one trained on the training data
    with ``tokenizer_vocab_size`` tokens when ``tokenizer`` is unset.
    """

    path: str | None = None
    tokenizer: str | None = None
    tokenizer_vocab_size: int = 512
    tokenizer_split_digits: bool = False  # one token per digit (what small models need for arithmetic)
    fresh: ModelConfig = field(default_factory=ModelConfig)
    extrapolate_positions: bool = False  # allow data.seq_len > the model's max_position_embeddings

    def validate(self) -> None:
        check_range("model.tokenizer_vocab_size", self.tokenizer_vocab_size, lo=16)


@dataclass
class DataConfig:
    sources: list[DataSource] = field(default_factory=list)  # fields of remit.data.DataSource; weight = mixture
    seq_len: int = 256
    max_tokens: int | None = None  # cap on tokens packed (None: all)
    pack_seed: int = 0  # seed of the packing shuffle (part of the dataset's identity)
    cache_dir: str | None = None  # tokenisation cache (default: <out_dir>/../cache)
    num_proc: int = 1  # tokenisation processes (>1: datasets.map(num_proc=...); 1: this process, streaming)
    # false: position ids restart per document and no token attends across a document boundary in a row
    cross_document_attention: bool = True

    def validate(self) -> None:
        if not self.sources:
            raise ConfigError("data.sources is empty: give at least one source (data.sources=[{path: FILE}])")
        check_range("data.seq_len", self.seq_len, lo=2)
        check_range("data.num_proc", self.num_proc, lo=1)


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # <= 0: no clipping
    batch_size: int = 32  # global rows per optimizer step
    micro_batch_size: int = 8  # rows per forward pass on one rank

    def validate(self) -> None:
        check_range("optim.lr", self.lr, lo=0.0, lo_open=True)
        check_range("optim.weight_decay", self.weight_decay, lo=0.0)
        check_range("optim.beta1", self.beta1, lo=0.0, hi=1.0, hi_open=True)
        check_range("optim.beta2", self.beta2, lo=0.0, hi=1.0, hi_open=True)
        check_range("optim.batch_size", self.batch_size, lo=1)
        check_range("optim.micro_batch_size", self.micro_batch_size, lo=1)
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"optim.batch_size={self.batch_size} must be a multiple of "
                              f"optim.micro_batch_size={self.micro_batch_size}")


@dataclass
class ScheduleConfig:
    """LR multiplier over the run: linear warmup, then ``constant`` or warmup-stable-decay (``wsd``).

    ``wsd`` decays over the last ``decay_fraction`` of the steps to ``min_lr_ratio * lr`` with shape
    ``linear``, ``cosine`` or ``1-sqrt``. The mid-training default decays over the whole run (annealing).
    """

    kind: Literal["constant", "wsd"] = "wsd"
    warmup_fraction: float = 0.0
    decay_fraction: float = 1.0
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "linear"
    min_lr_ratio: float = 0.01

    def validate(self) -> None:
        check_range("schedule.warmup_fraction", self.warmup_fraction, lo=0.0, hi=1.0)
        check_range("schedule.decay_fraction", self.decay_fraction, lo=0.0, hi=1.0)
        check_range("schedule.min_lr_ratio", self.min_lr_ratio, lo=0.0, hi=1.0)
        if self.kind == "wsd" and self.warmup_fraction + self.decay_fraction > 1.0 + 1e-9:
            raise ConfigError(f"schedule.warmup_fraction + schedule.decay_fraction = "
                              f"{self.warmup_fraction + self.decay_fraction} must be <= 1")


@dataclass
class MethodConfig:
    """Which method (a name of the method table, ``remit.methods``) and its hyper-parameters.

    Built in: ntp | remit | rho1 | kd | miniplm | remit_placebo. Each reads only its own keys below (``remit.methods``
    lists them); a key of another method set away from its default is an error, not silently ignored.
    ``params``: the keys of a method registered from outside remit (``Method.params`` has their defaults).
    """

    name: str = "ntp"
    epsilon: float = 0.2  # remit: clip range of the weights [1 - eps, 1 + eps]
    temperature: float = 1.0  # remit: tau of the sigmoid
    per_document: bool = False  # remit: center delta per packed document instead of per row
    normalize: Literal["tokens", "weights"] = "tokens"  # remit: divide by the token count or the weight sum
    frozen_base: bool = False  # remit: delta uses the frozen starting checkpoint instead of the live model
    keep_ratio: float = 0.6  # rho1: fraction of counted tokens kept
    alpha: float = 0.5  # kd: weight of the distillation term
    kd_temperature: float = 1.0  # kd: softmax temperature
    select_ratio: float = 0.5  # miniplm: fraction of documents kept
    weak_model: str | None = None  # miniplm: the weak scorer (default: the starting checkpoint)
    # a registered method's own keys; left out of config.yaml and the config hash while empty
    params: dict[str, Any] = field(default_factory=dict, metadata={"omit_if_empty": True})

    def validate(self) -> None:
        method = get_method(self.name)
        check_range("method.epsilon", self.epsilon, lo=0.0, lo_open=True)
        check_range("method.temperature", self.temperature, lo=0.0, lo_open=True)
        check_range("method.keep_ratio", self.keep_ratio, lo=0.0, hi=1.0, lo_open=True)
        check_range("method.alpha", self.alpha, lo=0.0, hi=1.0)
        check_range("method.kd_temperature", self.kd_temperature, lo=0.0, lo_open=True)
        check_range("method.select_ratio", self.select_ratio, lo=0.0, hi=1.0, lo_open=True)
        default = MethodConfig()
        for f in dataclasses.fields(self):
            if f.name in ("name", "params") or f.name in method.options:
                continue
            if getattr(self, f.name) != getattr(default, f.name):
                readers = [n for n in method_names() if f.name in find_method(n).options]
                raise ConfigError(f"method.{f.name}={getattr(self, f.name)!r} does not apply to method.name="
                                  f"{self.name} (it is read by {', '.join(readers) or 'no method'}); remove it")
        unknown = sorted(set(self.params) - set(method.params))
        if unknown:
            accepted = ", ".join(sorted(method.params)) or "none"
            raise ConfigError(f"method.params.{unknown[0]} is not a parameter of method.name={self.name} "
                              f"(its params: {accepted})")

    def param(self, key: str) -> Any:
        """``params[key]``, else the registered method's default for it."""
        return self.params.get(key, get_method(self.name).params.get(key))


@dataclass
class ReferenceConfig:
    """The frozen reference: a model (``path``, run online) or a ``remit score-reference`` cache.

    Under DDP and FSDP the reference is replicated on every rank (see ``remit.midtrain.distributed``).
    ``base_cache``: cached log-probs of the starting checkpoint for ``method.frozen_base``.
    """

    path: str | None = None
    cache: str | None = None
    base_cache: str | None = None
    check: bool = True  # run remit.models.check_compatible before training
    chunk_size: int | None = None  # rows per chunk of the fp32 log-prob computation

    def validate(self) -> None:
        if self.chunk_size is not None:
            check_range("reference.chunk_size", self.chunk_size, lo=1)


@dataclass
class LoggingConfig:
    every: int = 10  # steps between metrics.jsonl lines
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "remit"
    progress: bool = True  # tqdm bar on rank 0
    hist_bins: int = 10  # bins of the weight histogram over [1 - eps, 1 + eps]

    def validate(self) -> None:
        check_range("logging.every", self.every, lo=1)
        check_range("logging.hist_bins", self.hist_bins, lo=1)


@dataclass
class PerfConfig:
    """Speed and memory options (``remit.midtrain.perf`` applies them); the defaults keep today's numerics.

    ``compile``: ``torch.compile`` of each decoder layer (helps on CUDA; on CPU it measured 0.956x the
    eager time for a 5M model, i.e. no gain). ``activation_checkpointing``: recompute each decoder
    layer in backward (less activation memory, ~1/3 more compute). ``fused_adamw``: the fused AdamW
    kernel (None: on CUDA only). ``precision``: ``auto`` = bf16 autocast on CUDA, fp32 on CPU;
    log-probs and the loss are fp32 in every mode. ``reference_micro_batch_size``: rows per forward of an
    online log-prob reference (inference mode keeps no activations, so it can exceed the training one).
    """

    compile: bool = False
    activation_checkpointing: bool = False
    fused_adamw: bool | None = None
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    reference_micro_batch_size: int | None = None

    def validate(self) -> None:
        check_choice("perf.precision", self.precision, ("auto", "bf16", "fp32"))
        if self.reference_micro_batch_size is not None:
            check_range("perf.reference_micro_batch_size", self.reference_micro_batch_size, lo=1)


@dataclass
class FSDPConfig:
    """``parallel=fsdp``: FSDP2's mixed precision, and when gradients are reduce-scattered.

    ``param_dtype``: of the all-gathered parameters and the compute (the shards and AdamW stay fp32);
    ``reduce_dtype``: of the gradient reduce-scatters. ``reduce_every_micro_batch``: reduce-scatter after
    every micro-batch and keep only sharded gradients (1/N of them per GPU) instead of every layer's
    unsharded gradient until the last micro-batch (one reduce-scatter per step: less communication).
    """

    param_dtype: Literal["float32", "bfloat16"] = "float32"
    reduce_dtype: Literal["float32", "bfloat16"] = "float32"
    reduce_every_micro_batch: bool = False

    def validate(self) -> None:
        check_choice("fsdp.param_dtype", self.param_dtype, ("float32", "bfloat16"))
        check_choice("fsdp.reduce_dtype", self.reduce_dtype, ("float32", "bfloat16"))


@dataclass
class TrainConfig:
    """Fields common to pre-training and mid-training."""

    out_dir: str = "runs/default/midtrain"
    model: ModelSource = field(default_factory=ModelSource)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    token_budget: int = 1_000_000  # training tokens (rows * seq_len) over the run
    max_steps: int | None = None  # overrides token_budget when set
    seed: int = 0
    checkpoint_every: int = 100  # optimizer steps between resumable checkpoints (0: only at the end)
    keep_checkpoints: int = 2
    resume: bool = False
    overwrite: bool = False  # start afresh even if out_dir holds checkpoints of an earlier run
    parallel: Literal["ddp", "fsdp"] = "ddp"  # under torchrun / accelerate launch
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)  # options of parallel=fsdp
    device: str | None = None  # default: cuda when visible, else cpu
    perf: PerfConfig = field(default_factory=PerfConfig)
    dist_timeout_s: int = 1800  # several processes: how long a collective waits for the slowest rank
    save_dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # of the final HF checkpoint's weights
    checkpoint_async: bool = False  # parallel=fsdp: write checkpoints in the background while training goes on
    # Weights-only HF snapshots (model + tokenizer, save_dtype) at these training-token counts, for curves:
    # out_dir/snapshots/tokens-<n>, n = the first optimizer step's count that reaches the given one. No optimizer
    # state: they cannot be resumed from. Whoever scores them deletes them (the flywheel's curve stages do).
    snapshot_tokens: list[int] = field(default_factory=list, metadata={"omit_if_empty": True})

    @property
    def tokens_per_step(self) -> int:
        return self.optim.batch_size * self.data.seq_len

    @property
    def total_steps(self) -> int:
        return self.max_steps or max(1, -(-self.token_budget // self.tokens_per_step))

    def snapshot_steps(self) -> dict[int, int]:
        """{optimizer step: tokens trained} of the snapshots; counts at or past the run's end are left out
        (the final model is that point)."""
        per, total = self.tokens_per_step, self.total_steps
        steps = {max(1, -(-int(t) // per)) for t in self.snapshot_tokens}
        return {s: s * per for s in sorted(steps) if s < total}

    def validate(self) -> None:
        check_range("token_budget", self.token_budget, lo=1)
        check_range("dist_timeout_s", self.dist_timeout_s, lo=1)
        check_choice("save_dtype", self.save_dtype, ("float32", "bfloat16", "float16"))
        if self.max_steps is not None:
            check_range("max_steps", self.max_steps, lo=1)
        check_range("checkpoint_every", self.checkpoint_every, lo=0)
        check_range("keep_checkpoints", self.keep_checkpoints, lo=1)
        for t in self.snapshot_tokens:
            check_range("snapshot_tokens", t, lo=1)
        if self.model.path is None:  # a fresh model: its window is known now (a loaded one: in setup)

            check_positions(self.model.fresh, self.data.seq_len, where="model.fresh",
                            allow=self.model.extrapolate_positions)


@dataclass
class PretrainConfig(TrainConfig):
    """Pre-training (next-token prediction) from a fresh or given model, constant or WSD LR."""

    out_dir: str = "runs/default/pretrain"
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(
        kind="constant", warmup_fraction=0.05, decay_fraction=0.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3))


@dataclass
class MidtrainConfig(TrainConfig):
    """Mid-training (annealing) with ReMiT or a baseline; LR decays rapidly to near zero by default."""

    method: MethodConfig = field(default_factory=MethodConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    smoke: bool = False  # --smoke: this config's code paths on tiny models and local fixtures (remit.midtrain.smoke)

    def validate(self) -> None:
        super().validate()
        if self.model.path is None:
            raise ConfigError("model.path is required for mid-training (the pre-annealing checkpoint)")
        method = get_method(self.method.name)
        ref = self.reference
        if method.needs_reference and ref.path is None and ref.cache is None:
            raise ConfigError(f"method.name={self.method.name} needs a reference: set reference.path "
                              f"(a model) or reference.cache (a remit score-reference output)")
        if method.needs_model and ref.path is None:
            raise ConfigError(f"method.name={self.method.name} needs reference.path: {method.reference_why or ''}"
                              .rstrip(": "))


def as_midtrain(cfg: PretrainConfig) -> MidtrainConfig:
    """The engine runs a pre-training config as mid-training with ``ntp`` and no reference.

    Built with the constructor, not validated: a fresh model has no ``model.path``, which mid-training
    requires of a user's config; the pre-training config itself was validated when it was loaded.
    """
    common = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TrainConfig)}
    return MidtrainConfig(**common, method=MethodConfig(name=vanilla_arm().method), reference=ReferenceConfig())

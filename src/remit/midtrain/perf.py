"""Apply the speed / memory options of :class:`~remit.midtrain.config.PerfConfig` to a run.

    from remit.midtrain import perf
    perf.apply_to_model(hf_model, cfg.perf)                 # activation checkpointing, then compile
    dtype = perf.autocast_dtype(cfg.perf, world.device)     # bf16 on CUDA by default, None = fp32
    weights, dtype = perf.numerics(cfg.perf.precision, "cuda")  # ("float32", bf16): every model of a run
    opt = build_optimizer(policy, cfg.optim, fused=perf.use_fused_adamw(cfg.perf, world.device))

The order follows torchtitan: activation checkpointing, then ``torch.compile`` per decoder layer, then
FSDP2 / DDP (``remit.midtrain.distributed.wrap_model``). Compiling layer by layer (not the whole
model) keeps the state-dict keys, the chunked log-prob head and the custom autograd functions of
``remit.objectives`` eager, and one compiled graph serves every layer. The device-specific calls are
in ``remit.utils.integrations``; this module only decides from the config.
"""

from __future__ import annotations

import warnings

import torch

from remit.errors import ConfigError
from remit.midtrain.config import PerfConfig
from remit.utils.integrations import compile_module, fused_adamw_available

__all__ = ["apply_to_model", "autocast_dtype", "numerics", "numerics_key", "use_fused_adamw", "decoder_layers"]


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated transformer blocks of a causal LM (the first non-empty ``layers`` ModuleList)."""
    for m in model.modules():
        layers = getattr(m, "layers", None)
        if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0:
            return list(layers)
    return []


def apply_to_model(model: torch.nn.Module, cfg: PerfConfig, *, frozen: bool = False,
                   backend: str | None = None) -> torch.nn.Module:
    """Turn on activation checkpointing and/or compile the decoder layers of ``model`` (in place).

    ``frozen``: a reference / base model run in inference mode (compiled, never checkpointed: it keeps
    no activations). ``backend``: the ``torch.compile`` backend (default inductor; the CPU check of
    ``benchmarks/gpu_check.py --tiny`` uses ``aot_eager`` to skip the C++ build).
    """
    if cfg.activation_checkpointing and not frozen:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ConfigError(f"perf.activation_checkpointing=true: {type(model).__name__} does not support "
                              f"gradient checkpointing; set perf.activation_checkpointing=false")
        # Non-reentrant: works with inputs that do not require grad and with torch.compile / FSDP2.
        with warnings.catch_warnings():  # renamed activation_checkpointing_enable in transformers 5.2x
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.compile:
        layers = decoder_layers(model)
        if not layers:
            raise ConfigError(f"perf.compile=true: no decoder layers found in {type(model).__name__}; "
                              f"set perf.compile=false")
        for layer in layers:
            compile_module(layer, backend=backend)
    return model


def numerics(precision: str, device: str) -> tuple[str, torch.dtype | None]:
    """``(weight dtype, autocast dtype)`` of EVERY forward of a run on ``device`` (a device string or type).

    One policy for the policy and the frozen models (reference online or scored into a cache, frozen
    base, MiniPLM scorer): fp32 weights (the policy's master weights) under the same autocast, bf16 for
    ``precision=bf16`` and for ``auto`` on CUDA, none otherwise. A frozen model loaded with bf16 weights
    (what this project did on CUDA before) keeps its norms, embeddings and residual stream in bf16 while
    the policy's are fp32: with identical weights its log-probs differ from the policy's by bf16 rounding
    (issue #20 measured ReMiT weight std 0.024-0.041 in a CPU emulation, as pure noise); under this policy
    they are equal and the weights are exactly 1 (``tests/midtrain/test_numerics.py``, on CPU). On CUDA that
    holds for the same matmul shapes through the same graph; other rows per forward (a ``score-reference``
    cache, ``perf.reference_micro_batch_size``) or separately compiled graphs (``perf.compile``) may choose
    other GEMM tilings and fusions, leaving bf16 rounding noise (``benchmarks/gpu_check.py``, ``noise_floor``).
    The price: a frozen model takes 4 bytes per parameter, not 2.
    """
    autocast = precision == "bf16" or (precision == "auto" and str(device).startswith("cuda"))
    return "float32", (torch.bfloat16 if autocast else None)


def numerics_key(precision: str, device: str) -> str:
    """``numerics`` as a short string (part of a reference cache's fingerprint: a cache scored under other
    numerics would not give delta 0 for identical models)."""
    weights, autocast = numerics(precision, device)
    return f"{weights} weights, {str(autocast).removeprefix('torch.') if autocast else 'no'} autocast"


def autocast_dtype(cfg: PerfConfig, device: str) -> torch.dtype | None:
    """The autocast dtype of the forward passes (None: fp32). Log-probs and losses stay fp32 regardless."""
    return numerics(cfg.precision, device)[1]


def use_fused_adamw(cfg: PerfConfig, device: str) -> bool:
    """Fused AdamW: on CUDA unless turned off; elsewhere only when asked (and available)."""
    if cfg.fused_adamw is None:
        return device.startswith("cuda")
    if cfg.fused_adamw and not fused_adamw_available(device):
        raise ConfigError(f"perf.fused_adamw=true: no fused AdamW kernel for device {device!r}; "
                          f"set perf.fused_adamw=false")
    return bool(cfg.fused_adamw)

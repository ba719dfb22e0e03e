"""Optional integrations, probed in one place (style rule 10).

The rest of the code asks these functions instead of try-importing packages itself.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import warnings


@functools.cache
def has_package(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def has_wandb() -> bool:
    return has_package("wandb")


def has_tensorboard() -> bool:
    return has_package("tensorboard") or has_package("tensorboardX")


def has_vllm() -> bool:
    return has_cuda() and has_package("vllm")


def default_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    return "cuda" if has_cuda() else "cpu"


def default_dtype(device: str | None = None) -> str:
    """fp32 on CPU (bf16 is 20-30x slower there), bf16 on GPU."""
    device = device or default_device()
    return "bfloat16" if device.startswith("cuda") else "float32"


# ---------------------------------------------------------------- device-specific training paths
# (remit.midtrain.perf decides WHAT to turn on from the config; the calls that differ per device live here)

def autocast(device_type: str, dtype):
    """Autocast to ``dtype`` on ``device_type`` (cuda or cpu); a no-op context when ``dtype`` is None."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def fused_adamw_available(device: str) -> bool:
    """The fused AdamW kernel exists for CUDA (and, since torch 2.4, CPU) parameters."""
    return device.startswith("cuda") or device == "cpu"


def compile_module(module, backend: str | None = None) -> None:
    """``torch.compile`` a module's ``forward`` in place.

    Only ``forward`` is compiled: module hooks (FSDP2's all-gather / reshard) stay eager around it and
    the state-dict keys are unchanged (no ``_orig_mod.`` prefix).
    """
    import torch

    module.forward = torch.compile(module.forward, **({"backend": backend} if backend else {}))


def bf16_peak_flops(device: str) -> tuple[float | None, str]:
    """Dense bf16 peak FLOP/s of the visible GPU from its name (None when unknown), and that name."""
    import torch

    if not device.startswith("cuda"):
        return None, "cpu"
    name = torch.cuda.get_device_name(torch.device(device))
    table = {"H200": 989e12, "H100": 989e12, "H800": 989e12, "GH200": 989e12, "B200": 2250e12,
             "A100": 312e12, "A800": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}
    for key, flops in table.items():
        if key in name:
            return (756e12 if key == "H100" and "PCIe" in name else flops), name
    return None, name


def device_synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def reset_peak_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def peak_memory_bytes(device: str) -> int | None:
    """Peak bytes allocated by torch on a CUDA device since the last reset (None on CPU)."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(torch.device(device)))
    return None


def is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.OutOfMemoryError)


def quiet_libraries() -> None:
    """Silence the per-call progress bars and advisory warnings of datasets/transformers/lm-eval.

    Long pipelines (the flywheel) call this so that the terminal shows remit's own progress:
    stage lines and one bar per training run.
    """
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for name in ("lm-eval", "lm_eval", "trl", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="trl")

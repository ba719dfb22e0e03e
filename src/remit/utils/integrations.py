"""Optional integrations, probed in one place (style rule 10).

The rest of the code asks these functions instead of try-importing packages itself.
"""

from __future__ import annotations

import functools
import importlib.util


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

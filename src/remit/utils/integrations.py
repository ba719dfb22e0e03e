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


def quiet_libraries() -> None:
    """Silence the per-call progress bars and advisory warnings of datasets/transformers/lm-eval.

    Long pipelines (the flywheel) call this so that the terminal shows remit's own progress:
    stage lines and one bar per training run.
    """
    import logging
    import os
    import warnings

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

"""`launcher`: the smoke flywheel with every training and post-training stage on 2 processes (torchrun, gloo,
CPU) gives the same report as in one process.

Tolerance: the report's text is equal up to its cost section (wall times, tokens/s); mid-training losses
within 1e-6 (the global batch is the same; DDP sums it in another order; Adam eps 1e-4, as in test_dist);
GRPO samples on each rank from its own generator, which did not change this smoke run's greedy evaluations.
Measured: equal reports; largest loss difference 2.4e-7 (midtrain-remit-r1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remit.config import load_config
from remit.flywheel.config import FlywheelConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "flywheel"
# 2 processes x micro-batch 4 = pre-training's global batch of 8
SAME = ["pretrain.optim.micro_batch_size=4", "pretrain.optim.eps=1e-4", "midtrain.optim.eps=1e-4"]


def _results(report: Path) -> str:
    """The report up to its cost section, without its date, the run folder's path made neutral."""
    text = report.read_text(encoding="utf-8").split("## Cost per stage")[0].replace(str(report.parent), "RUN")
    return "\n".join(line for line in text.splitlines() if "built 20" not in line)


def _losses(run: Path, stage: str) -> list[float]:
    return [json.loads(x)["loss"] for x in (run / stage / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.dist
def test_launched_flywheel_gives_the_single_process_report(tmp_path):
    from remit.errors import ConfigError
    from remit.flywheel import run as fw

    one = fw.run(load_config(FlywheelConfig, CONFIGS / "smoke.yaml", [f"runs_dir={tmp_path / 'one'}", *SAME]))
    launched = load_config(FlywheelConfig, CONFIGS / "smoke.yaml", [
        f"runs_dir={tmp_path / 'two'}", *SAME, "launcher=torchrun --standalone --nproc_per_node 2"])
    two = fw.run(launched)
    assert _results(Path(two)) == _results(Path(one))
    a, b = Path(one).parent, Path(two).parent
    for stage in ("pretrain", "midtrain-vanilla", "midtrain-remit-r1"):
        assert json.loads((b / stage / "manifest.json").read_text())["world_size"] == 2
        assert _losses(b, stage) == pytest.approx(_losses(a, stage), abs=1e-6)
    assert json.loads((b / "post-vanilla" / "sft" / "manifest.json").read_text())["processes"] == 2
    assert (b / "launch" / "midtrain-remit-r1.yaml").is_file()

    # the same configs: in one process the launched run's stages are all reused, not redone
    def stages() -> dict[str, str]:  # the report is rebuilt by every run; the stages are not
        return {p.parent.name: p.read_text() for p in b.glob("*/manifest.json") if p.parent.name != "report"}

    before = stages()
    launched.launcher = ""
    fw.run(launched)
    # 11 stages + the default A/A arm (mid-training, eval) and 4 chat evals (P, vanilla, ReMiT, A/A)
    assert stages() == before and len(before) == 17
    with pytest.raises(ConfigError, match="launcher="):
        load_config(FlywheelConfig, None, ["launcher=no-such-launcher -n 2"])

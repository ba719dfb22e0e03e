"""G3's numbers for one RL model, scored from the end of vanilla mid-training (B0) and from P.

    PYTHONPATH=src python benchmarks/results/world/calibration/g3_from.py runs/experiments/calibration-m \
        /work/tmp/grpo-100-1e-4 runs/experiments/calibration-h/start/pretrain

Arguments: a calibration experiment folder (its seed 0 gives the SFT model S0, B0 and the mid-training text),
the RL model, the pre-annealing checkpoint P. Prints corr(w_RL, w_SFT) and the share of task tokens whose
weights differ by > 0.05 on the first 32 mid-training documents (epsilon 0.2, temperature 1), through the gates'
own scorer (remit.experiment.gates._weights). Used for attempt M's GRPO variants (README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from remit.experiment.gates import GatesConfig, _weights
from remit.report.lm import load_pair, read_text_file

root, rl_path, p_path = Path(sys.argv[1]) / "seed0", Path(sys.argv[2]), Path(sys.argv[3])
texts = read_text_file(root / "world/midtrain.jsonl", limit=32)[:32]
rl, tok = load_pair(rl_path)
sft, _ = load_pair(root / "post-vanilla/sft")
for name, path in (("B0", root / "midtrain-vanilla"), ("P", p_path)):
    model, _ = load_pair(path)
    nums = _weights(model, rl, sft, tok, texts, 0.2, 1.0, GatesConfig())
    print(name, {k: round(v, 4) for k, v in nums.items()}, flush=True)

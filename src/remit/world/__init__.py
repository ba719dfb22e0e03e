"""The embedded default world: seeded generators of general text, worked solutions and verifiable tasks.

    remit world out_dir=runs/world   # writes pretrain/midtrain/sft/rl/eval .jsonl

Pure Python (no heavy imports): see ``generate.py`` (splits), ``tasks.py`` (task kinds),
``text.py`` (general text), ``checkers.py`` (answer extraction and checking), ``config.py``
(``WorldConfig``), ``stage.py`` (writes the files).
"""

from remit.world.checkers import check_answer, extract_answer, has_answer_format
from remit.world.generate import generate_world
from remit.world.stage import WorldConfig, run
from remit.world.tasks import KINDS, Task, make_task

__all__ = ["KINDS", "Task", "WorldConfig", "check_answer", "extract_answer", "generate_world", "has_answer_format",
           "make_task", "run"]

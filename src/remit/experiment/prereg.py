"""Does the pre-registration precede the results? The check ``remit experiment`` writes into its summary.

The pre-registration is the experiment config file, committed before the run. ``prereg_commit`` is the last
commit that touched it (``git log -1 --format=%H -- <file>``); ``prereg_precedes_results`` compares that
commit's committer time (``%ct``) with the earliest modification time of the ``results.json`` files the
analysis read (every arm of every seed). Both are clocks of the machine that ran: the check is meaningful
there (a fresh clone gives every file its checkout time), and a config edited after its commit is flagged
(``prereg_uncommitted_changes``).
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def prereg(config_file: str, result_files: list[str]) -> dict[str, Any]:
    """The pre-registration check: the last commit that touched the experiment config file
    (``git log -1 --format=%H -- <file>``) and whether its commit time precedes the earliest modification
    time of the results.json files the analysis read (every arm, every seed)."""
    out: dict[str, Any] = {"prereg_commit": None, "prereg_precedes_results": None, "prereg_check": ""}
    f = Path(config_file) if config_file else None
    if f is None or not f.is_file():
        out["prereg_check"] = "no config file given (the command had no --config)" if f is None else \
            f"{f}: not a file"
        return out
    f = f.resolve()
    log = _git(["log", "-1", "--format=%H %ct", "--", f.name], f.parent)
    if not log:
        out["prereg_check"] = f"{config_file}: not committed in a git repository"
        return out
    commit, ct = log.split()
    out["prereg_commit"] = commit
    changed = bool(_git(["status", "--porcelain", "--", f.name], f.parent))
    out["prereg_uncommitted_changes"] = changed
    when = datetime.datetime.fromtimestamp(int(ct), datetime.timezone.utc).isoformat(timespec="seconds")
    mtimes = [Path(p).stat().st_mtime for p in result_files if Path(p).is_file()]
    if not mtimes:
        out["prereg_check"] = f"commit {commit[:12]} at {when}; no results files to compare"
        return out
    first = min(mtimes)
    out["prereg_precedes_results"] = int(ct) < first
    out["prereg_check"] = (
        f"commit {commit[:12]} at {when} (git log -1 --format=%ct) "
        f"{'<' if int(ct) < first else '>='} the earliest mtime of the {len(mtimes)} results.json files read, "
        f"{datetime.datetime.fromtimestamp(first, datetime.timezone.utc).isoformat(timespec='seconds')}"
        + ("; the file has uncommitted changes" if changed else ""))
    return out

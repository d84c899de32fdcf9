"""Carry unfinished training runs across sessions: `python -m train.long_runs save|restore RUN ...`.

Why: a session's machine keeps no files outside git, and the second-generation runs (and their
ablation) need far more CPU time than one session has. `save` copies what a run needs to continue
from `runs/<RUN>` into `train/long_runs/<RUN>` (committed); `restore` puts it back into an empty
`runs/<RUN>`. Per run: `history.jsonl` (the learning curve, small) and `config.yaml` always, and
`last.pt` (weights, weight average, optimizer, schedule, RNG: what `edgefer train --resume` needs)
only while the run is unfinished, so a finished ablation candidate costs a few kilobytes, not 22 MB.
`best.pt` is not carried (see train/long_runs/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from train.curves import read_history

RUNS = Path("runs")
STORE = Path("train/long_runs")


def planned_epochs(run_dir: Path) -> int | None:
    """`optim.epochs` of the run's resolved config, or None when it has none yet."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return int(config.get("optim", {}).get("epochs", 0)) or None


def finished(run_dir: Path) -> bool:
    epochs = planned_epochs(run_dir)
    return epochs is not None and len(read_history(run_dir)) >= epochs


def save(name: str, runs: Path = RUNS, store: Path = STORE) -> list[Path]:
    """Copy `runs/<name>` into `store/<name>`; returns the files written (nothing if no run)."""
    src, dst = runs / name, store / name
    if not src.is_dir():
        return []
    dst.mkdir(parents=True, exist_ok=True)
    wanted = ["config.yaml", "history.jsonl"] + ([] if finished(src) else ["last.pt"])
    written = []
    for file in wanted:
        if (src / file).is_file():
            shutil.copy2(src / file, dst / file)
            written.append(dst / file)
    stale = dst / "last.pt"
    if "last.pt" not in wanted and stale.is_file():
        stale.unlink()  # finished: the carried state is no longer needed
    return written


def restore(name: str, runs: Path = RUNS, store: Path = STORE) -> list[Path]:
    """Copy `store/<name>` into `runs/<name>` unless that run folder already has a `last.pt`."""
    src, dst = store / name, runs / name
    if not src.is_dir() or (dst / "last.pt").is_file():
        return []
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for file in sorted(src.iterdir()):
        if file.is_file() and file.name != "README.md":
            shutil.copy2(file, dst / file.name)
            written.append(dst / file.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.long_runs", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "restore"))
    parser.add_argument("runs", nargs="+", help="run folders relative to runs/, e.g. fer2013_edge2_au")
    args = parser.parse_args(argv)
    for name in args.runs:
        files = (save if args.action == "save" else restore)(name)
        verb = "saved" if args.action == "save" else "restored"
        print(f"{verb} {name}: {', '.join(p.name for p in files) if files else 'nothing to do'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

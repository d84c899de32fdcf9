"""`python -m train.long_runs`: what an unfinished run needs travels through git, a finished one sheds
its 20-30 MB of state, and a restore never overwrites a run that is already there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from train.long_runs import restore, save

REPO = Path(__file__).resolve().parents[1]


def _run(folder: Path, epochs: int, done: int) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"optim": {"epochs": epochs}}))
    (folder / "history.jsonl").write_text("".join(json.dumps({"epoch": e + 1, "val_accuracy": 0.5}) + "\n"
                                                  for e in range(done)))
    (folder / "last.pt").write_bytes(b"state" * 100)
    (folder / "best.pt").write_bytes(b"best")
    (folder / "train.log").write_text("log")


def test_save_keeps_state_only_while_unfinished_and_restore_puts_it_back(tmp_path):
    runs, store = tmp_path / "runs", tmp_path / "store"
    _run(runs / "long", epochs=200, done=3)
    _run(runs / "abl" / "done", epochs=3, done=3)
    assert {p.name for p in save("long", runs, store)} == {"config.yaml", "history.jsonl", "last.pt"}
    assert {p.name for p in save("abl/done", runs, store)} == {"config.yaml", "history.jsonl"}
    assert not (store / "long" / "best.pt").exists() and not (store / "abl" / "done" / "last.pt").exists()
    assert save("missing", runs, store) == []
    # a new session: empty runs/
    fresh = tmp_path / "fresh"
    assert {p.name for p in restore("long", fresh, store)} == {"config.yaml", "history.jsonl", "last.pt"}
    assert (fresh / "long" / "last.pt").read_bytes() == b"state" * 100
    # a run already present (resumed and moved on) is never overwritten by the older copy
    (fresh / "long" / "last.pt").write_bytes(b"newer")
    assert restore("long", fresh, store) == []
    assert (fresh / "long" / "last.pt").read_bytes() == b"newer"
    # once a run finishes, the next save drops its carried state
    (runs / "long" / "config.yaml").write_text(yaml.safe_dump({"optim": {"epochs": 3}}))
    save("long", runs, store)
    assert not (store / "long" / "last.pt").exists()


def test_command_line(tmp_path):
    (tmp_path / "runs").mkdir()
    result = subprocess.run([sys.executable, "-m", "train.long_runs", "save", "nothing_here"], cwd=tmp_path,
                            capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "saved nothing_here: nothing to do" in result.stdout

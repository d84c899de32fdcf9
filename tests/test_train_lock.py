"""A run folder has one trainer at a time, and SIGTERM saves like Ctrl-C.

Real processes: `edgefer train` runs in a subprocess on real FER2013 images; a second trainer on the
same folder is refused while it runs, and `kill -TERM` leaves a resumable last.pt behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.processes import reaped
from tests.support.training import base_config, landmark_cache, session_root
from train.run_lock import RunFolderBusy, locked_run_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return session_root(tmp_path_factory)


def test_second_lock_on_a_run_folder_is_refused(tmp_path):
    with locked_run_dir(tmp_path / "run"):
        with pytest.raises(RunFolderBusy, match=str(os.getpid())):
            with locked_run_dir(tmp_path / "run"):
                pass
    with locked_run_dir(tmp_path / "run"):  # released on exit: free again
        pass


@pytest.mark.slow
def test_sigterm_saves_and_a_second_trainer_is_refused(fer_dir, face_model, root, tmp_path):
    cache = landmark_cache(fer_dir, face_model, root)
    cfg = base_config(fer_dir, cache, root, optim={"epochs": 200, "batch_size": 16}, run={"save_every_steps": 0})
    recipe = tmp_path / "long.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgefer.cli", "train", "--config", str(recipe), "--out", str(out)]
    with reaped(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as first:
        deadline = time.monotonic() + 120
        while not (out / "history.jsonl").is_file():  # one epoch done: surely inside the loop
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the trainer did not finish an epoch in 120 s"
            time.sleep(0.5)
        second = subprocess.run(cmd[:-2] + ["--out", str(out), "--resume"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "in use by another edgefer train" in second.stderr and str(first.pid) in second.stderr
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err[-2000:]
    assert "interrupted" in err and "--resume" in err
    from train.checkpoint import read_payload

    payload = read_payload(out / "last.pt")
    assert payload is not None

"""`edgefer ablate`: a plan of candidates trained as real `edgefer train` processes, resumable, reported;
`edgefer curves` on the runs it made.

Tiny backbone on 200 real FER2013 images, one epoch per candidate: the point is the mechanics.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from tests.support.training import base_config, landmark_cache, session_root

REPO = Path(__file__).resolve().parents[1]


def _ablate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgefer.cli", "ablate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_plan_trains_each_candidate_once_and_reports(fer_dir, face_model, tmp_path_factory, tmp_path):
    root = session_root(tmp_path_factory)
    cache = landmark_cache(fer_dir, face_model, root)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(base_config(fer_dir, cache, root, optim={"epochs": 3, "batch_size": 32})))
    plan = tmp_path / "plan.yaml"
    out = tmp_path / "abl"
    plan.write_text(yaml.safe_dump({
        "base": str(base), "out": str(out),
        "common": {"optim.epochs": 1},
        "candidates": {"base": {}, "smooth_mix": {"loss.label_smoothing": 0.1, "augment.mix": "mixup"}},
    }))
    first = _ablate("--plan", str(plan), "--jobs", "2", "--nice", "0")
    assert first.returncode == 0, first.stderr[-2000:]
    rows = json.loads((out / "ablation.json").read_text())
    assert [r["name"] for r in rows] == ["base", "smooth_mix"]
    for r in rows:
        assert r["epochs_done"] == r["epochs"] == 1
        assert 0.0 <= r["best_val_accuracy"] <= 1.0 and r["val_n"] > 0
    assert sorted(rows[1]["overrides"]) == ["augment.mix=mixup", "loss.label_smoothing=0.1"]
    stored = yaml.safe_load((out / "smooth_mix" / "config.yaml").read_text())
    assert stored["loss"]["label_smoothing"] == 0.1 and stored["augment"]["mix"] == "mixup"
    table = (out / "ablation.md").read_text()
    assert "| smooth_mix |" in table and "standard error" in table
    # a second call finds every candidate finished: nothing is trained again
    mtime = (out / "base" / "history.jsonl").stat().st_mtime_ns
    again = _ablate("--plan", str(plan))
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "base" / "history.jsonl").stat().st_mtime_ns == mtime
    # the learning curves of the two candidates, side by side; a line cut by a kill is ignored
    with open(out / "smooth_mix" / "history.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "val_accur')
    png = tmp_path / "curves.png"
    curves = subprocess.run([sys.executable, "-m", "edgefer.cli", "curves", str(out / "base"),
                             f"mixed={out / 'smooth_mix'}", "--out", str(png)], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert curves.returncode == 0, curves.stderr[-2000:]
    assert "base: 1 epochs" in curves.stdout and "mixed: 1 epochs" in curves.stdout
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] > 800 and image.std() > 10
    missing = subprocess.run([sys.executable, "-m", "edgefer.cli", "curves", str(tmp_path), "--out", str(png)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and str(tmp_path / "history.jsonl") in missing.stderr


@pytest.mark.parametrize("plan_text, message", [
    ("candidates: {a: {}}\n", "'base' and 'candidates' are required"),
    ("base: nowhere.yaml\ncandidates: {a: {}}\n", "base recipe"),
    ("base: configs/train/fer2013_edge_au.yaml\ncandidates: {a: {}}\nepochs: 3\n", "unknown field(s) epochs"),
    ("base: configs/train/fer2013_edge_au.yaml\ncandidates: {a: [optim.lr]}\n", "candidates.a"),
])
def test_bad_plans_name_the_file_and_field(tmp_path, plan_text, message):
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    result = _ablate("--plan", str(plan), "--report-only")
    assert result.returncode == 2
    assert str(plan) in result.stderr and message in result.stderr

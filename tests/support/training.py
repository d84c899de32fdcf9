"""Shared, memoised set-up for the training and evaluation tests (no tests of its own).

Training runs are expensive on 2 shared cores, so each distinct run is trained once per session and
reused by `test_train*.py` and `test_eval*.py` alike: the memo lives in this module, which both import.
Data: a class-stratified subset of the real FER2013 train split (and of the test split for eval), with
landmarks computed by MediaPipe (`compute_landmarks`) into a session folder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.datasets.folder import read_folder
from train.packed import stratified_limit

TRAIN_LIMIT = 200
TEST_LIMIT = 70
SEED = 0

#: A tiny stride-8 ResNet (8-64 channels): seconds per epoch on 2 cores, 6x6 attention at 48 px.
TINY_MODEL = {
    "backbone": "resnet18",
    "backbone_kwargs": {"channels": [8, 16, 32, 64], "stem_width": 8},
    "input_size": 48,
    "output_stride": 8,
    "drop_rate": 0.0,
}


def subset_relpaths(fer_dir: Path, split: str, limit: int) -> list[str]:
    entries = read_folder(fer_dir, split)
    keep = stratified_limit(np.array([e.label for e in entries]), limit, SEED)
    return [entries[i].relpath for i in keep]


@functools.cache
def landmark_cache(fer_dir: Path, face_model: Path, root: Path) -> Path:
    """Landmarks of the train and test subsets, computed once per session."""
    from edgefer.landmarks_cache import compute_landmarks

    cache = root / "landmarks"
    rel = subset_relpaths(fer_dir, "train", TRAIN_LIMIT) + subset_relpaths(fer_dir, "test", TEST_LIMIT)
    compute_landmarks(fer_dir, cache, relpaths=rel, face_model=face_model, progress=False)
    return cache


def base_config(fer_dir: Path, cache: Path, root: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "data": {
            "root": str(fer_dir),
            "limit": TRAIN_LIMIT,
            "val_fraction": 0.15,
            "landmarks": str(cache),
            "cache_dir": str(root / "packed"),
        },
        "model": dict(TINY_MODEL),
        "loss": {"au_lambda": 4.0},
        "optim": {"lr": 0.05, "epochs": 3, "batch_size": 32, "eval_batch_size": 64, "schedule": "cosine"},
        "run": {"progress": False, "seed": SEED, "threads": 1},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


@dataclass
class Run:
    run_dir: Path
    summary: dict[str, Any]
    trainer: Any


_RUNS: dict[str, Run] = {}


def train_run(name: str, fer_dir: Path, face_model: Path, root: Path, **sections: dict[str, Any]) -> Run:
    """Train (once per session and name) with the tiny config plus `sections` overrides."""
    if name in _RUNS:
        return _RUNS[name]
    from edgefer.config import validate_settings
    from train.config import TrainConfig
    from train.trainer import Trainer

    cache = landmark_cache(fer_dir, face_model, root)
    cfg = validate_settings(TrainConfig, base_config(fer_dir, cache, root, **sections), name)
    run_dir = root / "runs" / name
    trainer = Trainer(cfg, run_dir)
    summary = trainer.fit()
    _RUNS[name] = Run(run_dir, summary, trainer)
    return _RUNS[name]


def session_root(tmp_path_factory) -> Path:
    """One folder for the whole session (the same for every module that asks)."""
    path = tmp_path_factory.getbasetemp() / "train_session"
    path.mkdir(exist_ok=True)
    return path

"""Where edgefer finds things: one place for environment variables and default locations.

Environment variables (documented in the README):
- `EDGEFER_FACE_MODEL`: path to `face_landmarker.task`.
- `EDGEFER_MODELS_DIR`: a folder holding `face_landmarker.task` (e.g. `../shared/models`).
- `EDGEFER_DATA`: the data root (e.g. `../shared/data`), used by tests and benchmarks.
- `EDGEFER_CACHE_DIR`: overrides the user cache directory (downloads, engines, landmark caches).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

PACKAGE_DIR = Path(__file__).resolve().parent
#: The shipped default model (trained by this project on FER2013, see its model card).
DEFAULT_MODEL = PACKAGE_DIR / "models" / "edgefer_fer2013.onnx"


def cache_dir() -> Path:
    """The user cache directory (created on demand)."""
    root = os.environ.get("EDGEFER_CACHE_DIR")
    path = Path(root) if root else Path(user_cache_dir("edgefer"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_root() -> Path | None:
    """The data root from EDGEFER_DATA, or None when unset."""
    root = os.environ.get("EDGEFER_DATA")
    return Path(root) if root else None


def default_model_path() -> Path:
    """The shipped model; a clear error if the package was installed without it."""
    if not DEFAULT_MODEL.is_file():
        raise FileNotFoundError(
            f"the default model {DEFAULT_MODEL} is missing from this installation; "
            "pass --model PATH or reinstall edgefer"
        )
    return DEFAULT_MODEL

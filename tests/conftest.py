"""Shared fixtures: real data from ../shared, found through EDGEFER_DATA; the face model is the
copy shipped in the package (no EDGEFER_MODELS_DIR needed).

Tests that need ../shared fail loudly when it is missing (never skip): a CI run without the data
must not look green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    path = Path(value) if value else default
    if not path.exists():
        pytest.fail(
            f"{path} is missing: set {env} or put the shared folder at {REPO.parent / 'shared'}",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _shared_path("EDGEFER_DATA", REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def face_model() -> Path:
    """The face model shipped inside the package: the file every install uses by default."""
    from edgefer.face_model import PACKAGED_FACE_MODEL

    if not PACKAGED_FACE_MODEL.is_file():
        pytest.fail(f"{PACKAGED_FACE_MODEL} is missing from the package", pytrace=False)
    return PACKAGED_FACE_MODEL


@pytest.fixture(scope="session")
def fer_dir(data_dir: Path) -> Path:
    return data_dir / "fer2013"


@pytest.fixture(scope="session")
def videos_dir(data_dir: Path) -> Path:
    return data_dir / "videos"


@pytest.fixture(scope="session")
def one_face_video(videos_dir: Path) -> Path:
    return videos_dir / "WolfgangLanger_Pexels.mp4"


@pytest.fixture(scope="session")
def two_face_gif(videos_dir: Path) -> Path:
    return videos_dir / "head-pose-face-detection-female-and-male.gif"


@pytest.fixture(scope="session")
def noface_mov(videos_dir: Path) -> Path:
    return videos_dir / "noface_face.mov"


#: A real but untrained model, committed so that the runtime tests need neither torch nor the
#: exporter: they guard the torch-free (Jetson) install. Built by `python -m export.tiny TINY_ONNX`.
TINY_ONNX = REPO / "tests" / "data" / "tiny_fernet.onnx"


@pytest.fixture(scope="session")
def tiny_onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real but untrained ONNX model (48x48 gray, outputs logits/attention/cam): the project's
    classifier on timm's `test_resnet`, exported with edgefer's own exporter (`export.tiny`), so it
    carries a valid contract and runs through `edgefer.runtime.load_classifier` exactly like the
    shipped model. A session copy of `tests/data/tiny_fernet.onnx`: a TensorRT run caches its engine
    beside the model, which must not write into the repository.
    """
    if not TINY_ONNX.is_file():
        pytest.fail(f"{TINY_ONNX} is missing; rebuild it with `python -m export.tiny {TINY_ONNX}`", pytrace=False)
    out = tmp_path_factory.mktemp("tiny_onnx") / TINY_ONNX.name
    shutil.copyfile(TINY_ONNX, out)
    return out


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB file system (tmpfs) that fills up while a test writes to it. Mounting needs
    root, which CI has; elsewhere the test is skipped (the message says why)."""
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()}); CI runs as root and can")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)

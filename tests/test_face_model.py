"""Finding, verifying and downloading face_landmarker.task (real file, real local HTTP server,
a real wheel installed and run without network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from edgefer import face_model as fm


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No env hints and an empty user cache: only what each test sets up exists."""
    monkeypatch.delenv(fm.ENV_FILE, raising=False)
    monkeypatch.delenv(fm.ENV_DIR, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGEFER_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def stripped_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An installation whose package lacks the shipped copy (e.g. a repackager removed it):
    the cache and the download are what is left."""
    monkeypatch.setattr(fm, "PACKAGED_FACE_MODEL", tmp_path / "stripped_package" / fm.FACE_MODEL_NAME)


def test_a_clean_install_uses_the_shipped_copy_and_downloads_nothing(clean_env: Path) -> None:
    assert fm.PACKAGED_FACE_MODEL.is_file()
    assert fm.resolve_face_model() == fm.PACKAGED_FACE_MODEL
    status = fm.face_model_status()
    assert status.source == "package" and status.ok and str(fm.PACKAGED_FACE_MODEL) in str(status)
    assert not clean_env.exists()  # the user cache was not even created: nothing downloaded
    notice = fm.PACKAGED_FACE_MODEL.with_name("face_landmarker.NOTICE.md").read_text()
    assert "MediaPipe Face Landmarker / BlazeFace models © Google LLC, Apache-2.0" in notice
    assert fm.FACE_MODEL_SHA256 in notice
    licence = (fm.PACKAGED_FACE_MODEL.parent / "LICENSE-Apache-2.0.txt").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence


def test_explicit_path_and_folder(face_model: Path, clean_env: Path) -> None:
    assert fm.resolve_face_model(face_model) == face_model
    assert fm.resolve_face_model(str(face_model.parent)) == face_model


def test_env_file_then_env_dir_then_package(
    face_model: Path, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = clean_env / fm.FACE_MODEL_NAME
    clean_env.mkdir(parents=True)
    shutil.copyfile(face_model, cached)
    assert fm.resolve_face_model() == fm.PACKAGED_FACE_MODEL  # the shipped copy before the cache
    assert fm.face_model_status().source == "package"

    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(face_model, models / fm.FACE_MODEL_NAME)
    monkeypatch.setenv(fm.ENV_DIR, str(models))
    assert fm.resolve_face_model() == models / fm.FACE_MODEL_NAME
    assert fm.face_model_status().source == fm.ENV_DIR

    other = tmp_path / "elsewhere.task"
    shutil.copyfile(face_model, other)
    monkeypatch.setenv(fm.ENV_FILE, str(other))
    assert fm.resolve_face_model() == other
    status = fm.face_model_status()
    assert status.source == fm.ENV_FILE and status.ok and "sha256 ok" in str(status)


def test_cache_serves_an_install_without_the_shipped_copy(
    face_model: Path, clean_env: Path, stripped_install: None
) -> None:
    cached = clean_env / fm.FACE_MODEL_NAME
    clean_env.mkdir(parents=True)
    shutil.copyfile(face_model, cached)
    assert fm.resolve_face_model() == cached
    assert fm.face_model_status().source == "cache"


def test_env_dir_without_the_file_falls_back_to_the_shipped_copy(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty_models"
    empty.mkdir()
    monkeypatch.setenv(fm.ENV_DIR, str(empty))
    assert fm.resolve_face_model() == fm.PACKAGED_FACE_MODEL
    assert "holds no face_landmarker.task; using the copy shipped with edgefer" in caplog.text


def test_env_file_missing_is_an_error_not_a_fallback(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fm.ENV_FILE, str(tmp_path / "typo.task"))
    with pytest.raises(fm.FaceModelError, match=r"EDGEFER_FACE_MODEL: face model .*typo\.task does not exist"):
        fm.resolve_face_model()


def test_corrupt_copy_is_refused_with_both_hashes(face_model: Path, clean_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "face_landmarker.task"
    data = bytearray(face_model.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(fm.FaceModelError) as err:
        fm.resolve_face_model(bad)
    message = str(err.value)
    assert str(bad) in message and fm.FACE_MODEL_SHA256 in message
    assert fm.sha256_of(bad) in message and "delete it" in message
    status = fm.face_model_status(bad)
    assert status.sha256_ok is False and not status.ok and "WRONG" in str(status)


def test_a_damaged_shipped_copy_says_reinstall(
    face_model: Path, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = tmp_path / "package" / fm.FACE_MODEL_NAME
    damaged.parent.mkdir()
    damaged.write_bytes(face_model.read_bytes()[:100_000])  # a truncated install
    monkeypatch.setattr(fm, "PACKAGED_FACE_MODEL", damaged)
    with pytest.raises(fm.FaceModelError, match="the copy shipped with edgefer is damaged: reinstall edgefer"):
        fm.resolve_face_model()


def test_offline_without_file_says_where_to_put_it(
    clean_env: Path, stripped_install: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fm, "FACE_MODEL_URL", "http://127.0.0.1:9/face_landmarker.task")
    monkeypatch.setattr(fm, "DOWNLOAD_TIMEOUT_S", 5.0)
    with pytest.raises(fm.FaceModelError) as err:
        fm.resolve_face_model()
    message = str(err.value)
    assert "download from http://127.0.0.1:9/" in message and "failed" in message
    assert str(clean_env / fm.FACE_MODEL_NAME) in message
    assert fm.ENV_FILE in message and fm.ENV_DIR in message and "--face-model" in message
    assert "reinstall edgefer" in message
    assert list(clean_env.iterdir()) == []  # no partial file left behind
    status = fm.face_model_status()
    assert status.path is None and status.sha256_ok is None and "downloaded on first use" in str(status)


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real local HTTP server serving a folder (stands in for Google's bucket)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_once_into_cache_and_verify(
    face_model: Path, clean_env: Path, stripped_install: None, http_dir: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, url = http_dir
    shutil.copyfile(face_model, root / fm.FACE_MODEL_NAME)
    monkeypatch.setattr(fm, "FACE_MODEL_URL", f"{url}/{fm.FACE_MODEL_NAME}")
    got = fm.resolve_face_model()
    assert got == clean_env / fm.FACE_MODEL_NAME and fm.sha256_of(got) == fm.FACE_MODEL_SHA256
    assert sorted(p.name for p in clean_env.iterdir()) == [fm.FACE_MODEL_NAME]
    (root / fm.FACE_MODEL_NAME).unlink()  # the server loses it: the cached copy is used, no download
    assert fm.resolve_face_model() == got


def test_download_of_a_wrong_file_is_refused_and_not_kept(
    clean_env: Path, stripped_install: None, http_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = http_dir
    (root / fm.FACE_MODEL_NAME).write_bytes(b"<html>captive portal</html>")
    monkeypatch.setattr(fm, "FACE_MODEL_URL", f"{url}/{fm.FACE_MODEL_NAME}")
    with pytest.raises(fm.FaceModelError, match="sha256 mismatch"):
        fm.resolve_face_model()
    assert list(clean_env.iterdir()) == []


_OFFLINE_PROBE = """
import json, sys
import cv2
import edgefer
from edgefer.face_model import face_model_status, resolve_face_model
from edgefer.tracking import FaceTracker

cap = cv2.VideoCapture(sys.argv[1])
cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
ok, frame = cap.read()
cap.release()
assert ok, "cannot read the test frame"
with FaceTracker(mode="image", blendshapes=False) as tracker:
    faces = tracker.process(frame)
print(json.dumps({"package": edgefer.__file__, "model": str(resolve_face_model()),
                  "source": face_model_status().source, "faces": len(faces)}))
"""


def _offline_prefix() -> list[str]:
    """`unshare -n` (a new network namespace with no interface up: nothing can be reached) when
    this machine allows it (root, CI); else nothing, and the empty cache proves no download."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.slow
def test_a_built_wheel_tracks_faces_offline_with_no_env(tmp_path: Path, one_face_video: Path) -> None:
    """The wheel carries the face model with its notice; installed on its own, with no EDGEFER_*
    variable, an empty user cache and no network, it finds a face."""
    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(repo / name, src / name)
    shutil.copytree(repo / "edgefer", src / "edgefer", ignore=shutil.ignore_patterns("__pycache__", "*.engine"))
    wheels = tmp_path / "wheels"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFER_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    # Build with this environment's setuptools when it has one (no download); a venv without it
    # (Python >= 3.12 venvs ship none) lets pip fetch the build backend from the registry.
    import importlib.util

    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels), str(src)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("edgefer-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for shipped in ("face_landmarker.task", "face_landmarker.NOTICE.md", "LICENSE-Apache-2.0.txt"):
        assert f"edgefer/models/{shipped}" in names

    cache = tmp_path / "empty_cache"
    env.update(PYTHONPATH=str(tmp_path / "site"), EDGEFER_CACHE_DIR=str(cache))
    res = subprocess.run(
        [*_offline_prefix(), sys.executable, "-c", _OFFLINE_PROBE, str(one_face_video)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    site = str(tmp_path / "site")
    assert report["package"].startswith(site)  # the installed wheel ran, not the checkout
    assert report["model"] == f"{site}/edgefer/models/face_landmarker.task"
    assert report["source"] == "package" and report["faces"] == 1
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing downloaded

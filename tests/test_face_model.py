"""Finding, verifying and downloading face_landmarker.task (real file, real local HTTP server)."""

from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Iterator

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


def test_explicit_path_and_folder(face_model: Path, clean_env: Path) -> None:
    assert fm.resolve_face_model(face_model) == face_model
    assert fm.resolve_face_model(str(face_model.parent)) == face_model


def test_env_file_then_env_dir_then_cache(
    face_model: Path, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = clean_env / fm.FACE_MODEL_NAME
    clean_env.mkdir(parents=True)
    shutil.copyfile(face_model, cached)
    assert fm.resolve_face_model() == cached
    assert fm.face_model_status().source == "cache"

    monkeypatch.setenv(fm.ENV_DIR, str(face_model.parent))
    assert fm.resolve_face_model() == face_model
    assert fm.face_model_status().source == fm.ENV_DIR

    other = tmp_path / "elsewhere.task"
    shutil.copyfile(face_model, other)
    monkeypatch.setenv(fm.ENV_FILE, str(other))
    assert fm.resolve_face_model() == other
    status = fm.face_model_status()
    assert status.source == fm.ENV_FILE and status.ok and "sha256 ok" in str(status)


def test_env_dir_without_the_file_falls_back_to_cache(
    face_model: Path, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env.mkdir(parents=True)
    shutil.copyfile(face_model, clean_env / fm.FACE_MODEL_NAME)
    empty = tmp_path / "empty_models"
    empty.mkdir()
    monkeypatch.setenv(fm.ENV_DIR, str(empty))
    assert fm.resolve_face_model() == clean_env / fm.FACE_MODEL_NAME


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


def test_offline_without_file_says_where_to_put_it(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "FACE_MODEL_URL", "http://127.0.0.1:9/face_landmarker.task")
    monkeypatch.setattr(fm, "DOWNLOAD_TIMEOUT_S", 5.0)
    with pytest.raises(fm.FaceModelError) as err:
        fm.resolve_face_model()
    message = str(err.value)
    assert "download from http://127.0.0.1:9/" in message and "failed" in message
    assert str(clean_env / fm.FACE_MODEL_NAME) in message
    assert fm.ENV_FILE in message and fm.ENV_DIR in message and "--face-model" in message
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
    face_model: Path, clean_env: Path, http_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
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
    clean_env: Path, http_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url = http_dir
    (root / fm.FACE_MODEL_NAME).write_bytes(b"<html>captive portal</html>")
    monkeypatch.setattr(fm, "FACE_MODEL_URL", f"{url}/{fm.FACE_MODEL_NAME}")
    with pytest.raises(fm.FaceModelError, match="sha256 mismatch"):
        fm.resolve_face_model()
    assert list(clean_env.iterdir()) == []

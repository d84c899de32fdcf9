"""Finding, fetching and verifying MediaPipe's `face_landmarker.task`.

The face tracker and the landmark cache both need Google's FaceLandmarker model bundle (Apache-2.0,
3.7 MB). A copy ships inside the package (`edgefer/models/face_landmarker.task`, with its licence
notice beside it) so that a fresh install works offline, a Jetson on a closed network included. This
module decides which file is used, in the order a user expects (most explicit first):

1. an explicit path (the CLI's `--face-model`; a folder holding `face_landmarker.task` also works),
2. `EDGEFER_FACE_MODEL` (a file),
3. `EDGEFER_MODELS_DIR` (a folder containing `face_landmarker.task`),
4. the copy shipped in the package (`edgefer/models/face_landmarker.task`),
5. the user cache (`edgefer.paths.cache_dir() / "face_landmarker.task"`), for an installation that
   was stripped of the shipped copy,
6. a one-time download from Google's published URL into that cache (temp file, then rename, so a
   killed download never leaves a half file where step 5 would trust it).

Steps 1 and 2 are explicit requests: when they name a missing file it is an error, not a silent
fallback (a typo should not quietly fetch something else). Step 3 names a folder that may hold other
models, so a folder without the file falls through to the shipped copy with a warning.

The sha256 is checked every time the file is resolved, whether it comes from disk, the package or
the network: a truncated copy or a different model version would otherwise give subtly wrong
landmarks.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edgefer.media import file_sha256
from edgefer.paths import PACKAGE_DIR, cache_dir

log = logging.getLogger(__name__)

FACE_MODEL_NAME = "face_landmarker.task"
#: Google's published float16 FaceLandmarker bundle (v1).
FACE_MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    "face_landmarker.task"
)
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
#: The copy shipped inside the package (package data; see face_landmarker.NOTICE.md beside it).
PACKAGED_FACE_MODEL = PACKAGE_DIR / "models" / FACE_MODEL_NAME
#: Seconds to wait for the download server before telling the user how to work offline.
DOWNLOAD_TIMEOUT_S = 30.0

ENV_FILE = "EDGEFER_FACE_MODEL"
ENV_DIR = "EDGEFER_MODELS_DIR"


class FaceModelError(RuntimeError):
    """The face model cannot be found, fetched or trusted; the message says what to do."""


#: The sha256 of a file (the one helper, `edgefer.media.file_sha256`, under the name callers know).
sha256_of = file_sha256


def _where_to_put_it() -> str:
    return (
        f"reinstall edgefer (it ships the file as {PACKAGED_FACE_MODEL}), or "
        f"download {FACE_MODEL_URL} on a connected machine and either put it at "
        f"{cache_dir() / FACE_MODEL_NAME}, or set {ENV_FILE}=/path/to/{FACE_MODEL_NAME}, "
        f"or set {ENV_DIR}=/folder/holding/it, or pass --face-model PATH"
    )


def verify_face_model(path: Path) -> Path:
    """Return `path` if its sha256 is the pinned one; else a FaceModelError saying what to do."""
    actual = sha256_of(path)
    if actual != FACE_MODEL_SHA256:
        if path.resolve() == PACKAGED_FACE_MODEL.resolve():
            fix = "the copy shipped with edgefer is damaged: reinstall edgefer, or"
        else:
            fix = "The file is corrupt, truncated or a different version: delete it and let edgefer download it again, or"
        raise FaceModelError(
            f"{path}: sha256 mismatch for the MediaPipe face model (expected {FACE_MODEL_SHA256}, "
            f"got {actual}). {fix} {_where_to_put_it()}"
        )
    return path


def _explicit(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / FACE_MODEL_NAME
    if not p.is_file():
        raise FaceModelError(f"{what}: face model {p} does not exist; {_where_to_put_it()}")
    return p


def _candidate() -> tuple[Path | None, str]:
    """The first local candidate (without download) and where it came from."""
    env_file = os.environ.get(ENV_FILE)
    if env_file:
        return _explicit(env_file, ENV_FILE), ENV_FILE
    env_dir = os.environ.get(ENV_DIR)
    if env_dir:
        p = Path(env_dir).expanduser() / FACE_MODEL_NAME
        if p.is_file():
            return p, ENV_DIR
        log.warning("%s=%s holds no %s; using the copy shipped with edgefer", ENV_DIR, env_dir, FACE_MODEL_NAME)
    if PACKAGED_FACE_MODEL.is_file():
        return PACKAGED_FACE_MODEL, "package"
    cached = cache_dir() / FACE_MODEL_NAME
    if cached.is_file():
        return cached, "cache"
    return None, "missing"


def download_face_model(dest: Path | None = None, url: str | None = None) -> Path:
    """Download the model once into `dest` (default: the user cache), atomically, and verify it."""
    dest = dest or cache_dir() / FACE_MODEL_NAME
    url = url or FACE_MODEL_URL
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading the MediaPipe face model from %s to %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(prefix=FACE_MODEL_NAME + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        actual = sha256_of(tmp)
        if actual != FACE_MODEL_SHA256:
            raise FaceModelError(
                f"{dest}: the file downloaded from {url} has sha256 {actual}, expected "
                f"{FACE_MODEL_SHA256} (sha256 mismatch: a proxy or captive portal answered, or Google "
                f"changed the file); nothing was saved. {_where_to_put_it()[0].upper()}{_where_to_put_it()[1:]}"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise FaceModelError(
            f"no MediaPipe face model found locally and the download from {url} failed ({exc}). "
            f"To work offline, {_where_to_put_it()}"
        ) from exc
    except FaceModelError:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def resolve_face_model(path: str | Path | None = None) -> Path:
    """The verified `face_landmarker.task` to load (see the module docstring for the order)."""
    if path is not None:
        return verify_face_model(_explicit(path, "--face-model"))
    found, _source = _candidate()
    if found is not None:
        return verify_face_model(found)
    return download_face_model()


@dataclass(frozen=True)
class FaceModelStatus:
    """What `edgefer doctor` reports: where the face model would be loaded from and if it checks out."""

    path: Path | None
    source: str  # "--face-model", EDGEFER_FACE_MODEL, EDGEFER_MODELS_DIR, "package", "cache" or "missing"
    sha256_ok: bool | None  # None when there is no file to check
    message: str

    @property
    def ok(self) -> bool:
        return bool(self.sha256_ok)

    def __str__(self) -> str:
        return self.message


def face_model_status(path: str | Path | None = None) -> FaceModelStatus:
    """Locate and checksum the face model without downloading anything (for `edgefer doctor`)."""
    found: Path | None
    try:
        if path is not None:
            found, source = _explicit(path, "--face-model"), "--face-model"
        else:
            found, source = _candidate()
    except FaceModelError as exc:
        return FaceModelStatus(None, "missing", None, str(exc))
    if found is None:
        return FaceModelStatus(
            None,
            "missing",
            None,
            f"face model: not found locally; it will be downloaded on first use into "
            f"{cache_dir() / FACE_MODEL_NAME} (offline: {_where_to_put_it()})",
        )
    actual = sha256_of(found)
    if actual != FACE_MODEL_SHA256:
        return FaceModelStatus(
            found, source, False, f"face model: {found} (from {source}) has the WRONG sha256 {actual}"
        )
    return FaceModelStatus(found, source, True, f"face model: {found} (from {source}), sha256 ok")

"""TensorRT engine cache: engines live next to their ONNX file, keyed by what makes them valid.

(When the ONNX file's folder is read-only, e.g. the shipped model in a system-wide install, the
engines go to the user cache instead: `edgefer.paths.cache_dir() / "engines"`.)

An engine is only valid for the ONNX file it was built from, the TensorRT version that built it
and the GPU it was built on (and the precision/batch profile it was built with). Those facts form
an `EngineKey`; its digest names the cached file (`MODEL.<digest>.engine`) and the sidecar JSON
(`MODEL.<digest>.engine.json`) records them in full, with the contract, so a `.engine` file is
self-describing. `cache_decision` is a pure function of the files on disk and the current key,
so the rebuild logic is tested without TensorRT.

This module only knows files and keys: it imports neither TensorRT nor the builder. Building and
the build-or-reuse step (`ensure_engine`) live in `trt_build`, which sits above it.

Stale engines of the same model (another ONNX hash) can never be used again and are deleted when
a new one is built; engines for another device or TensorRT version are kept, because a shared
folder may serve several machines.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgefer.atomic_write import write_text_atomically
from edgefer.contract import ModelContract
from edgefer.media import file_sha256
from edgefer.paths import cache_dir
from edgefer.runtime.errors import ModelLoadError

log = logging.getLogger(__name__)

__all__ = [
    "PRECISIONS",
    "CacheDecision",
    "EngineKey",
    "EngineSidecar",
    "cache_decision",
    "cached_engine_path",
    "engine_folder",
    "file_sha256",
    "read_sidecar",
    "sidecar_path",
    "write_sidecar",
]

SIDECAR_SUFFIX = ".json"
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's validity depends on."""

    onnx_sha256: str
    tensorrt_version: str
    device_name: str
    precision: str = "fp16"
    max_batch: int = 8

    def digest(self) -> str:
        """A short, stable name part: 16 hex digits of the key's sha256."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def differences(self, other: EngineKey) -> list[str]:
        """Human-readable list of what changed from `other` to `self`."""
        out = []
        for name, mine in asdict(self).items():
            theirs = getattr(other, name)
            if mine != theirs:
                out.append(f"{name} {theirs!r} -> {mine!r}")
        return out


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def engine_folder(onnx_path: Path, writable: Callable[[Path], bool] = _writable) -> Path:
    """Beside the ONNX file; the user cache (`EDGEFER_CACHE_DIR`/engines) when that folder is
    read-only, e.g. the shipped model inside a system-wide installation."""
    if writable(onnx_path.parent):
        return onnx_path.parent
    folder = cache_dir() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_engine_path(onnx_path: Path, key: EngineKey, folder: Path | None = None) -> Path:
    return (folder or onnx_path.parent) / f"{onnx_path.stem}.{key.digest()}.engine"


def sidecar_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


@dataclass
class EngineSidecar:
    """What `MODEL.engine.json` records about an engine."""

    contract: ModelContract
    tensorrt_version: str
    device_name: str
    compute_capability: str
    onnx_sha256: str
    precision: str
    max_batch: int
    opt_batch: int
    onnx_file: str = ""
    built_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> EngineKey:
        return EngineKey(self.onnx_sha256, self.tensorrt_version, self.device_name, self.precision, self.max_batch)

    def to_json(self) -> str:
        raw = asdict(self)
        raw["contract"] = json.loads(self.contract.to_json())
        raw["key"] = self.key.digest()
        return json.dumps(raw, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> EngineSidecar:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{source}: engine sidecar is not valid JSON ({exc})") from None
        try:
            return cls(
                contract=ModelContract.from_dict(raw["contract"], source=source),
                tensorrt_version=str(raw["tensorrt_version"]),
                device_name=str(raw["device_name"]),
                compute_capability=str(raw["compute_capability"]),
                onnx_sha256=str(raw["onnx_sha256"]),
                precision=str(raw["precision"]),
                max_batch=int(raw["max_batch"]),
                opt_batch=int(raw["opt_batch"]),
                onnx_file=str(raw.get("onnx_file", "")),
                built_at=str(raw.get("built_at", "")),
                extra=dict(raw.get("extra", {})),
            )
        except KeyError as exc:
            raise ModelLoadError(f"{source}: engine sidecar lacks field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{source}: engine sidecar is malformed: {exc}") from None


def write_sidecar(engine_path: Path, sidecar: EngineSidecar) -> Path:
    return write_text_atomically(sidecar_path(engine_path), sidecar.to_json())


def read_sidecar(engine_path: Path) -> EngineSidecar:
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ModelLoadError(
            f"{engine_path}: its sidecar {path.name} is missing, so the engine's contract and origin are "
            "unknown; rebuild it with `edgefer export tensorrt`, or pass the contract explicitly"
        )
    return EngineSidecar.from_json(path.read_text(encoding="utf-8"), source=str(path))


@dataclass(frozen=True)
class CacheDecision:
    """What to do for one ONNX file on this machine: reuse, build (nothing yet) or rebuild."""

    action: str  # "reuse" | "build" | "rebuild"
    engine_path: Path
    reason: str
    stale: tuple[Path, ...] = ()  # engines of older ONNX versions of this model, to delete


def _siblings(onnx_path: Path, folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{onnx_path.stem}.*.engine"))


def cache_decision(onnx_path: Path, key: EngineKey, folder: Path | None = None) -> CacheDecision:
    """Decide whether the cached engine for `key` can be reused (pure: reads sidecars only).

    `folder`: where engines are cached (default: beside the ONNX file).
    """
    folder = folder or onnx_path.parent
    target = cached_engine_path(onnx_path, key, folder)
    stale: list[Path] = []
    nearest: tuple[EngineKey, Path] | None = None
    for engine in _siblings(onnx_path, folder):
        try:
            other = read_sidecar(engine).key
        except ModelLoadError as exc:
            log.debug("ignoring cached engine %s: %s", engine, exc)
            continue
        if other.onnx_sha256 != key.onnx_sha256:
            stale.append(engine)
        if engine != target and (nearest is None or len(key.differences(other)) < len(key.differences(nearest[0]))):
            nearest = (other, engine)
    if target.is_file():
        try:
            recorded = read_sidecar(target).key
        except ModelLoadError as exc:
            return CacheDecision("rebuild", target, f"sidecar unusable ({exc})", tuple(stale))
        if recorded == key:
            return CacheDecision("reuse", target, "engine matches ONNX hash, TensorRT version and device", tuple(stale))
        return CacheDecision("rebuild", target, "engine sidecar differs: " + "; ".join(key.differences(recorded)), tuple(stale))
    if nearest is not None:
        return CacheDecision(
            "rebuild", target, f"cached {nearest[1].name} is stale: " + "; ".join(key.differences(nearest[0])), tuple(stale)
        )
    return CacheDecision("build", target, "no cached engine yet", tuple(stale))

"""Files the window writes: recording names and snapshots (PNG of the annotated frame + JSON).

Plain functions without Qt, so they are testable on their own. Names never overwrite an existing
file (a suffix is added), and a snapshot is written to temporary names then renamed, so a full
disk or an unwritable folder leaves no half-written file and raises an error naming the path.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.classes import EXPRESSIONS
from edgefer.types import FrameResult


def _timestamp(now: datetime | None = None) -> str:
    now = now or datetime.now()
    return now.strftime("%Y%m%d-%H%M%S")


def unique_path(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path:
    """`folder/stem` (no suffix) such that no `stem + s` for s in suffixes exists yet."""
    candidate = stem
    n = 1
    while any((folder / f"{candidate}{s}").exists() for s in suffixes):
        n += 1
        candidate = f"{stem}_{n}"
    return folder / candidate


def ensure_folder(folder: str | Path) -> Path:
    """Create the output folder; an OSError names it when that is impossible."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create output folder {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise OSError(f"output folder {path} is not writable")
    return path


def recording_path(folder: str | Path, suffix: str = ".mp4", now: datetime | None = None) -> Path:
    """A fresh `edgefer_YYYYmmdd-HHMMSS.mp4` in `folder` (created if needed)."""
    path = ensure_folder(folder)
    return unique_path(path, f"edgefer_{_timestamp(now)}", (suffix,)).with_suffix(suffix)


@dataclass(frozen=True)
class Snapshot:
    png: Path
    json: Path


def predictions_record(result: FrameResult, source: str = "", model: str = "") -> dict[str, Any]:
    """The JSON body of a snapshot: the frame and, per face, box, label and all probabilities.

    Column names follow `edgefer run --jsonl` (face_id, x, y, w, h, expression, confidence,
    p_<class>) so one parser reads both.
    """
    faces = []
    for pred in result.predictions:
        box = pred.face.box
        probs = np.asarray(pred.probs, dtype=float)
        known = pred.has_estimate  # NaN from the model: null, never "neutral"
        face: dict[str, Any] = {
            "face_id": int(pred.face.track_id),
            "x": round(float(box.x), 2),
            "y": round(float(box.y), 2),
            "w": round(float(box.w), 2),
            "h": round(float(box.h), 2),
            "expression": EXPRESSIONS[int(np.argmax(probs))] if known else None,
            "confidence": round(float(np.max(probs)), 6) if known else None,
        }
        for name, p in zip(EXPRESSIONS, probs, strict=True):
            face[f"p_{name}"] = round(float(p), 6) if known else None
        faces.append(face)
    return {
        "frame": int(result.frame.index),
        "timestamp_s": round(float(result.frame.timestamp_s), 6),
        "source": source,
        "model": model,
        "written_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "classes": list(EXPRESSIONS),
        "faces": faces,
    }


def write_snapshot(result: FrameResult, folder: str | Path, source: str = "", model: str = "") -> Snapshot:
    """Save the annotated frame (or the raw frame when nothing was drawn) and its predictions."""
    image = result.annotated if result.annotated is not None else result.frame.image
    if image.size == 0:
        raise ValueError("snapshot: the frame has no image to save")
    out = ensure_folder(folder)
    ms = int((time.time() % 1) * 1000)
    base = unique_path(out, f"edgefer_snapshot_{_timestamp()}-{ms:03d}", (".png", ".json"))
    png, js = base.with_suffix(".png"), base.with_suffix(".json")
    tmp_png = png.with_name(png.stem + ".part.png")  # cv2 picks the encoder from the suffix
    tmp_js = js.with_name(js.name + ".part")
    try:
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise OSError(f"cannot encode the frame as PNG for {png}")
        tmp_png.write_bytes(encoded.tobytes())
        tmp_js.write_text(json.dumps(predictions_record(result, source, model), indent=2), encoding="utf-8")
        os.replace(tmp_png, png)
        os.replace(tmp_js, js)
    except OSError as exc:
        for tmp in (tmp_png, tmp_js):
            tmp.unlink(missing_ok=True)
        raise OSError(f"cannot write snapshot {png}: {exc.strerror or exc}") from exc
    return Snapshot(png=png, json=js)

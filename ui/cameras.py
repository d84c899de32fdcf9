"""Find the cameras a user can pick, from `/dev/video*` and the V4L2 sysfs entries.

Listing is a directory walk, not an open: opening every node with OpenCV takes seconds per node
and grabs devices another program is using. A UVC webcam exposes two nodes (capture + metadata);
sysfs' `index` attribute is 0 for the capture node, so nodes with another index are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_VIDEO_NODE = re.compile(r"^video(\d+)$")


@dataclass(frozen=True)
class CameraInfo:
    """One capture device: `source` is what the pipeline is given (the camera index as text)."""

    index: int
    device: Path
    name: str

    @property
    def source(self) -> str:
        return str(self.index)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.device})"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def list_cameras(dev_dir: str | Path = "/dev", sysfs_dir: str | Path = "/sys/class/video4linux") -> list[CameraInfo]:
    """Video capture devices sorted by index; empty when the machine has none."""
    dev = Path(dev_dir)
    sysfs = Path(sysfs_dir)
    found: list[CameraInfo] = []
    try:
        entries = list(dev.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _VIDEO_NODE.match(entry.name)
        if not match:
            continue
        node = sysfs / entry.name
        index_attr = _read(node / "index")
        if index_attr is not None and index_attr.isdigit() and int(index_attr) != 0:
            continue  # a metadata node of a camera whose capture node is listed separately
        name = _read(node / "name") or f"Camera {match.group(1)}"
        found.append(CameraInfo(index=int(match.group(1)), device=entry, name=name))
    return sorted(found, key=lambda c: c.index)

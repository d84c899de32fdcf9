"""Atomic replacement: a failed write leaves the old file and no temporary file behind."""

from __future__ import annotations

import pytest

from edgefer.atomic_write import atomic_path, write_bytes_atomically, write_text_atomically


def test_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "model.json"
    write_text_atomically(target, "one")
    write_bytes_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["model.json"]
    # Ordinary umask permissions (not mkstemp's 0600): shared caches stay readable by others.
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, suffix=".json") as tmp:
            assert tmp.suffix == ".json" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]

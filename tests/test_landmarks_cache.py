"""The landmark cache on a small real FER2013 subset: counts, precision, resume, CLI, bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer import landmarks_cache as lc
from edgefer.cli import main as edgefer_main
from edgefer.tracking.still import StillLandmarker


@pytest.fixture(scope="module")
def small_fer(fer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 test/happy + 12 train/sad FER2013 images, one text file, one empty .jpg, a hidden file."""
    root = tmp_path_factory.mktemp("fer_small")
    for split, cls in (("test", "happy"), ("train", "sad")):
        (root / split / cls).mkdir(parents=True)
        for src in sorted((fer_dir / split / cls).glob("*.jpg"))[:12]:
            shutil.copyfile(src, root / split / cls / src.name)
    (root / "train" / "sad" / "notes.txt").write_text("not an image")
    (root / "test" / "happy" / "empty.jpg").write_bytes(b"")
    (root / "test" / "happy" / ".DS_Store").write_bytes(b"\0\1")
    (root / "README.md").write_text("dataset readme, not an image")
    return root


def test_list_images_layout(small_fer: Path) -> None:
    rel = lc.list_images(small_fer)
    assert len(rel) == 26 and rel == sorted(rel)
    assert "train/sad/notes.txt" in rel and "test/happy/empty.jpg" in rel
    assert not any(".DS_Store" in p or p == "README.md" for p in rel)
    with pytest.raises(NotADirectoryError, match="nope"):
        lc.list_images(small_fer / "nope")


def test_compute_counts_and_reads_back(small_fer: Path, face_model: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    summary = lc.compute_landmarks(small_fer, cache_dir, face_model=face_model, progress=False)
    assert summary.images == 26 and summary.computed == 26
    assert summary.unreadable == 2
    assert summary.faces_found + summary.failures + summary.unreadable == 26
    assert summary.faces_found >= 22  # >= 95% of the 24 real images
    assert f"{summary.found_pct:.2f}%" in str(summary) and "unreadable: 2" in str(summary)

    cache = lc.LandmarkCache.open(cache_dir)
    assert len(cache) == 26
    assert "train/sad/notes.txt" in cache and cache.get("train/sad/notes.txt") is None
    assert cache.status("test/happy/empty.jpg") == lc.UNREADABLE
    with pytest.raises(KeyError, match="not in the landmark cache"):
        cache.get("test/happy/missing.jpg")
    found = [(p, m) for p, m in cache.items() if m is not None]
    assert len(found) == summary.faces_found
    for _, marks in found:
        assert marks.shape == (478, 2) and marks.dtype == np.float32
        centre = marks.mean(axis=0)
        assert np.all((centre > 4) & (centre < 44))  # inside the crop (profiles sit off-centre)
        assert np.all((marks > -12) & (marks < 60))
    assert (cache_dir / lc.MANIFEST).is_file()

    # float16 storage is exact to well under a tenth of a pixel at 48x48.
    relpath, stored = found[0]
    image = cv2.cvtColor(cv2.imread(str(small_fer / relpath)), cv2.COLOR_BGR2RGB)
    with StillLandmarker(face_model) as still:
        direct, variant = still.detect(image)
    assert direct is not None and variant == cache.status(relpath)
    assert np.abs(direct - stored).max() < 0.05

    # A second run computes nothing and reports the same counts.
    again = lc.compute_landmarks(small_fer, cache_dir, face_model=face_model, progress=False)
    assert again.computed == 0 and again.faces_found == summary.faces_found


def test_interrupted_run_resumes(
    small_fer: Path, face_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    monkeypatch.setattr(lc, "SHARD_SIZE", 5)
    real_detect = StillLandmarker.detect
    calls = {"n": 0}

    def detect_then_interrupt(self: StillLandmarker, image: np.ndarray):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real_detect(self, image)

    monkeypatch.setattr(StillLandmarker, "detect", detect_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        lc.compute_landmarks(small_fer, cache_dir, face_model=face_model, progress=False)
    partial = lc.LandmarkCache.open(cache_dir)
    assert 8 <= len(partial) < 26  # every finished image kept (one full shard + the flushed rest)
    assert len(list(cache_dir.glob(lc.SHARD_GLOB))) >= 2
    (cache_dir / ".shard-stale.tmp").write_bytes(b"half a shard from a killed run")

    monkeypatch.setattr(StillLandmarker, "detect", real_detect)
    summary = lc.compute_landmarks(small_fer, cache_dir, face_model=face_model, progress=False)
    assert summary.computed == 26 - len(partial)
    assert summary.images == 26 and len(lc.LandmarkCache.open(cache_dir)) == 26


def test_subset_of_relpaths(small_fer: Path, face_model: Path, tmp_path: Path) -> None:
    rel = [p for p in lc.list_images(small_fer) if p.startswith("train/")][:3]
    summary = lc.compute_landmarks(small_fer, tmp_path / "c", relpaths=rel, face_model=face_model, progress=False)
    assert summary.images == 3 and summary.computed == 3
    assert sorted(p for p, _ in lc.LandmarkCache.open(tmp_path / "c").items()) == sorted(rel)


def test_corrupt_shard_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "shard-0-0-00000.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"shard-0-0-00000\.npz is unreadable.*delete it"):
        lc.LandmarkCache.open(tmp_path)
    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(NotADirectoryError, match="a_file"):
        lc.LandmarkCache.open(file)


def test_cli_split_and_summary(
    small_fer: Path, face_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli_cache"
    code = edgefer_main(
        ["landmarks", str(small_fer), "--out", str(out), "--split", "train", "--face-model", str(face_model), "--no-progress"]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "images: 13" in text and "unreadable: 1" in text and "faces found:" in text and "seconds:" in text
    assert all(p.startswith("train/") for p, _ in lc.LandmarkCache.open(out).items())

    assert edgefer_main(["landmarks", str(small_fer), "--out", str(out), "--split", "val"]) == 2
    assert "no split val" in capsys.readouterr().out
    assert edgefer_main(["landmarks", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_redo_uncertain_recomputes_only_those(small_fer: Path, face_model: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    lc.compute_landmarks(small_fer, cache_dir, face_model=face_model, progress=False)
    cache = lc.LandmarkCache.open(cache_dir)
    assert cache.image_size("test/happy/" + sorted((small_fer / "test" / "happy").glob("*.jpg"))[1].name) == (48, 48)
    assert cache.image_size("train/sad/notes.txt") is None
    uncertain = [p for p, _ in cache.items() if lc._uncertain(cache, small_fer, p)]
    assert "train/sad/notes.txt" in uncertain and len(uncertain) < 26
    summary = lc.compute_landmarks(small_fer, cache_dir, face_model=face_model, progress=False, redo_uncertain=True)
    assert summary.computed == len(uncertain) and summary.images == 26
    assert len(lc.LandmarkCache.open(cache_dir)) == 26  # newer shards replace, never duplicate


def test_cli_measure_variants(small_fer: Path, face_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = edgefer_main(
        ["landmarks", str(small_fer), "--split", "test", "--measure-variants", "6", "--face-model", str(face_model), "--no-progress"]
    )
    text = capsys.readouterr().out
    assert code == 0 and re.search(r"^[56] images from", text)  # an unreadable pick is left out
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if "%" in line and not line.startswith("alone")}
    assert "pad25_const_up4" in rows and "policy" in rows and "pad25_reflect_up4" in rows
    alone = float(rows["pad25_const_up4"][0].rstrip("%"))
    chain_last = float(rows["up4_c0.1"][1].rstrip("%"))
    assert 0 <= alone <= chain_last <= 100  # the chain only ever adds


def test_cli_needs_out_unless_measuring(small_fer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert edgefer_main(["landmarks", str(small_fer)]) == 2
    assert "--out" in capsys.readouterr().out

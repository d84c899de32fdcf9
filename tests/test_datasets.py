"""Dataset readers on tiny fixtures written in the real layouts, bad input, packing, splits."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.classes import INDEX
from train.datasets import read_entries
from train.datasets.base import Entry, load_images
from train.datasets.folder import read_folder
from train.packed import load_archive, pack_entries, save_archive, stratified_limit, stratified_split


def _img(path: Path, value: int = 128, size: int = 48, color: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if color else (size, size)
    img = np.full(shape, value, np.uint8)
    img[: size // 2] = 255 - value
    assert cv2.imwrite(str(path), img)


def test_folder_reader_maps_fer2013_names_and_aliases(tmp_path):
    for folder in ("angry", "Happy", "surprised", "neutral"):
        _img(tmp_path / "train" / folder / "a.jpg")
        _img(tmp_path / "train" / folder / "b.png")
    (tmp_path / "train" / "angry" / ".DS_Store").write_text("x")
    entries = read_folder(tmp_path, "train")
    assert len(entries) == 8
    labels = {e.relpath.split("/")[1]: e.label for e in entries}
    assert labels == {"angry": INDEX["anger"], "Happy": INDEX["happiness"], "surprised": INDEX["surprise"],
                      "neutral": INDEX["neutral"]}
    assert all(e.relpath.startswith("train/") for e in entries)


def test_folder_reader_errors_name_the_folder(tmp_path):
    _img(tmp_path / "train" / "happy" / "a.jpg")
    (tmp_path / "train" / "sad").mkdir()
    with pytest.raises(ValueError, match=r"train/sad is empty"):
        read_folder(tmp_path, "train")
    (tmp_path / "train" / "sad").rmdir()
    _img(tmp_path / "train" / "contempt" / "a.jpg")
    with pytest.raises(ValueError, match=r"class folder 'contempt'"):
        read_folder(tmp_path, "train")
    with pytest.raises(NotADirectoryError, match="valid"):
        read_folder(tmp_path, "valid")


def test_corrupt_image_is_skipped_with_a_warning_and_counted(tmp_path, caplog):
    _img(tmp_path / "train" / "happy" / "good.jpg", 40)
    (tmp_path / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "train" / "happy" / "empty.jpg").write_bytes(b"")
    entries = read_folder(tmp_path, "train")
    with caplog.at_level(logging.WARNING):
        loaded = load_images(tmp_path, entries, 48, "gray", progress=False)
    assert loaded.relpaths == ["train/happy/good.jpg"]
    assert sorted(loaded.skipped) == ["train/happy/broken.jpg", "train/happy/empty.jpg"]
    assert "broken.jpg" in caplog.text and "2 of 3" in caplog.text


def test_load_images_resizes_and_records_scale(tmp_path):
    _img(tmp_path / "x" / "happy" / "big.png", 10, size=96, color=True)
    loaded = load_images(tmp_path, [Entry("x/happy/big.png", 1)], 48, "rgb", progress=False)
    assert loaded.images.shape == (1, 48, 48, 3) and loaded.scales[0].tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="label 9"):
        load_images(tmp_path, [Entry("x/happy/big.png", 9)], 48, "gray", progress=False)


def test_rafdb_reader(tmp_path):
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text(
        "train_00001.jpg 1\ntrain_00002.jpg 4\ntest_0001.jpg 7\n\n"
    )
    for name in ("train_00001", "train_00002", "test_0001"):
        _img(tmp_path / "Image" / "aligned" / f"{name}_aligned.jpg", size=100, color=True)
    train = read_entries("rafdb", tmp_path, "train")
    assert [(e.relpath, e.label) for e in train] == [
        ("Image/aligned/train_00001_aligned.jpg", INDEX["surprise"]),
        ("Image/aligned/train_00002_aligned.jpg", INDEX["happiness"]),
    ]
    assert [e.label for e in read_entries("rafdb", tmp_path, "test")] == [INDEX["neutral"]]
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 1\ntrain_00002.jpg 8\n")
    with pytest.raises(ValueError, match=r"list_patition_label.txt:2: label '8'"):
        read_entries("rafdb", tmp_path, "train")


def test_affectnet_reader_drops_contempt_and_rejects_unknown(tmp_path):
    split = tmp_path / "train_set"
    labels = {"0": "1", "1": "7", "2": "6", "3": "10"}
    for stem, lab in labels.items():
        _img(split / "images" / f"{stem}.jpg", color=True)
        (split / "annotations").mkdir(parents=True, exist_ok=True)
        np.save(split / "annotations" / f"{stem}_exp.npy", np.array(lab))
    entries = read_entries("affectnet", tmp_path, "train")
    assert [(e.relpath, e.label) for e in entries] == [
        ("train_set/images/0.jpg", INDEX["happiness"]),
        ("train_set/images/2.jpg", INDEX["anger"]),
    ]
    np.save(split / "annotations" / "4_exp.npy", np.array("12"))
    with pytest.raises(ValueError, match=r"4_exp.npy: expression id 12"):
        read_entries("affectnet", tmp_path, "train")
    with pytest.raises(NotADirectoryError, match="val_set"):
        read_entries("affectnet", tmp_path, "test")


def test_fer2013_csv_becomes_a_folder(tmp_path):
    from train.datasets.fer2013_csv import materialize_csv

    pix = " ".join(str(v % 256) for v in range(48 * 48))
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text(
        "emotion,pixels,Usage\n"
        f"3,{pix},Training\n0,{pix},Training\n6,{pix},PublicTest\n5,{pix},PrivateTest\n"
    )
    root = materialize_csv(csv_path, tmp_path / "cache")
    train = read_folder(root, "train")
    assert sorted(e.label for e in train) == sorted([INDEX["happiness"], INDEX["anger"]])
    assert [e.label for e in read_folder(root, "test")] == [INDEX["surprise"]]
    img = cv2.imread(str(root / train[0].relpath), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (48, 48) and int(img[0, 5]) == 5  # lossless
    assert materialize_csv(csv_path, tmp_path / "cache") == root  # reused
    bad = tmp_path / "bad.csv"
    bad.write_text(f"emotion,pixels,Usage\n3,{pix},Training\n7,{pix},Training\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: emotion '7'"):
        materialize_csv(bad, tmp_path / "cache")


def test_archive_round_trip_and_reuse(tmp_path, caplog):
    for i in range(6):
        _img(tmp_path / "data" / "train" / ("happy" if i % 2 else "sad") / f"{i}.jpg", 20 * i)
    entries = read_folder(tmp_path / "data", "train")
    kwargs = dict(data_root=tmp_path / "data", split_name="train", stored_size=48, color="gray",
                  landmark_dir=None, compute_missing=False, cache_dir=tmp_path / "packed",
                  dataset_name="toy", progress=False)
    first = pack_entries(entries, **kwargs)
    assert len(first) == 6 and not first.has_landmarks.any()
    assert first.meta["landmark_counts"]["missing"] == 6
    archives = list((tmp_path / "packed").glob("toy-train-*.npz"))
    assert len(archives) == 1
    with caplog.at_level(logging.INFO):
        again = pack_entries(entries, **kwargs)
    assert "loaded" in caplog.text
    assert np.array_equal(again.images, first.images) and list(again.relpaths) == list(first.relpaths)
    # A truncated archive is an error naming the file.
    broken = tmp_path / "broken.npz"
    broken.write_bytes(archives[0].read_bytes()[:200])
    with pytest.raises(ValueError, match="broken.npz"):
        load_archive(broken)
    save_archive(first.subset(np.array([0, 1])), tmp_path / "two.npz")
    assert len(load_archive(tmp_path / "two.npz")) == 2


def test_stratified_split_and_limit():
    labels = np.repeat(np.arange(7), [50, 100, 30, 20, 40, 4, 60])
    tr, va = stratified_split(labels, 0.1, seed=0)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    counts = np.bincount(labels[va], minlength=7)
    assert counts.tolist() == [5, 10, 3, 2, 4, 1, 6]  # ~10% of each class, at least one
    tr2, va2 = stratified_split(labels, 0.1, seed=0)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(labels, 0.1, seed=1)[1])
    sub = stratified_limit(labels, 61, seed=0)
    assert 55 <= len(sub) <= 67 and set(labels[sub]) == set(range(7))

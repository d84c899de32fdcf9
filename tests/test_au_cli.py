"""`edgefer aumap` and `edgefer bench aumap`, run in-process through the real command-line entry point
on real images (a frame of the one-face video, a FER2013 crop) with the real MediaPipe model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.cli import main


@pytest.fixture(scope="module")
def frame_png(one_face_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cap = cv2.VideoCapture(str(one_face_video))
    for _ in range(260):
        cap.grab()
    ok, frame = cap.read()
    cap.release()
    assert ok
    path = tmp_path_factory.mktemp("aumap") / "frame260.png"
    cv2.imwrite(str(path), frame)
    return path


def _aumap(*args: str | Path, face_model: Path) -> int:
    return main(["aumap", *map(str, args), "--face-model", str(face_model)])


def test_aumap_writes_an_overlay_of_the_input_size(frame_png: Path, face_model: Path, tmp_path: Path, capsys):
    out = tmp_path / "sub" / "happy.png"
    assert _aumap(frame_png, "-e", "happy", "-o", out, "--outlines", face_model=face_model) == 0
    assert "AU12 Lip Corner Puller" in capsys.readouterr().out
    src = cv2.imread(str(frame_png))
    img = cv2.imread(str(out))
    assert img is not None and img.shape == src.shape
    changed = np.abs(img.astype(int) - src.astype(int)).sum(axis=2) > 30
    ys, xs = np.nonzero(changed)
    # The overlay sits on the face (frame 260: face around x 250-420, y 60-330 of 640x360), not everywhere.
    assert 0.005 < changed.mean() < 0.25
    assert 200 < xs.mean() < 460 and 80 < ys.mean() < 330
    # Ekman mask instead of the soft map: a different picture of the same size.
    out_ekman = tmp_path / "happy_ekman.png"
    assert _aumap(frame_png, "-e", "happiness", "-o", out_ekman, "--ekman", face_model=face_model) == 0
    ekman = cv2.imread(str(out_ekman))
    assert ekman.shape == src.shape and not np.array_equal(ekman, img)


def test_aumap_on_a_fer_crop_and_a_video_frame(fer_dir: Path, one_face_video: Path, face_model: Path, tmp_path: Path):
    crop = sorted((fer_dir / "test" / "surprise").glob("*.jpg"))[0]
    out = tmp_path / "fer.png"
    assert _aumap(crop, "-e", "surprise", "-o", out, "--scale", "4", face_model=face_model) == 0
    plain = cv2.imread(str(out))
    assert plain.shape == (192, 192, 3)
    out_marked = tmp_path / "fer_marked.png"
    assert _aumap(crop, "-e", "surprise", "-o", out_marked, "--scale", "4", "--outlines", "--ibug",
                  face_model=face_model) == 0
    marked = cv2.imread(str(out_marked))
    assert marked.shape == plain.shape and (marked != plain).any(axis=2).mean() > 0.02
    out_video = tmp_path / "video.png"
    assert _aumap(one_face_video, "--frame", "260", "-e", "sadness", "-o", out_video, face_model=face_model) == 0
    assert cv2.imread(str(out_video)).shape == (360, 640, 3)


def test_aumap_errors_are_clear_and_lose_nothing(frame_png: Path, face_model: Path, tmp_path: Path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")

    assert _aumap(frame_png, "-e", "joy", "-o", out, face_model=face_model) == 2
    err = capsys.readouterr().err
    assert "unknown expression 'joy'" in err and "happiness" in err and "sadness" in err

    assert _aumap(frame_png, "-e", "neutral", "-o", out, face_model=face_model) == 2
    assert "neutral has no AUs" in capsys.readouterr().err

    not_image = tmp_path / "notes.txt"
    not_image.write_text("not an image\n")
    assert _aumap(not_image, "-e", "happy", "-o", out, face_model=face_model) == 1
    assert f"{not_image}: not an image or video" in capsys.readouterr().err

    missing = tmp_path / "missing.png"
    assert _aumap(missing, "-e", "happy", "-o", out, face_model=face_model) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    assert _aumap(blank, "-e", "happy", "-o", out, face_model=face_model) == 1
    assert "no face found" in capsys.readouterr().err

    assert _aumap(frame_png, "-e", "happy", "-o", frame_png, face_model=face_model) == 2
    assert "refusing to overwrite" in capsys.readouterr().err

    assert out.read_bytes() == b"keep me", "a failed run must not touch an existing output"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".aumap-")], "no temp files left"


def test_bench_aumap_prints_rates_and_ratio(fer_dir: Path, face_model: Path, capsys):
    rc = main(["bench", "aumap", "--n", "60", "--faces", "2", "--rounds", "2",
               "--images", str(fer_dir / "test" / "happy"), "--face-model", str(face_model)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Numba au_maps (batch)" in out and "NumPy reference (per call)" in out
    assert "ratio Numba batch / NumPy:" in out and "validity identical" in out

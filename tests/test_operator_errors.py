"""What an operator sees when the setup is wrong: one line naming the file, the documented exit
code, no traceback (issue 11, items 13 and 15). Every case runs the real `edgefer` program."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


def edgefer(*argv: str, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (the way a supervisor or a shell runs it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "edgefer.cli", *argv],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
    )


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, which must be a single line and no traceback."""
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="this machine has TensorRT")
def test_engine_without_tensorrt_is_one_line_and_exit_2(tmp_path: Path, one_face_video: Path) -> None:
    engine = tmp_path / "model.engine"  # the import fails before a byte is read: any content will do
    engine.write_bytes(b"an engine built on a Jetson")
    res = edgefer("run", "--source", str(one_face_video), "--model", str(engine), "--headless",
                  "--max-frames", "3", "--no-progress")
    assert res.returncode == 2
    line = one_line_error(res)
    assert str(engine) in line and "TensorRT" in line and "--model MODEL.onnx" in line

    res = edgefer("eval", "--model", str(engine), "--data", str(tmp_path), "--report", str(tmp_path / "r.json"))
    assert res.returncode == 2
    line = one_line_error(res)
    assert line.startswith("edgefer eval: ") and str(engine) in line


def test_a_folder_as_source_says_it_is_a_folder(tmp_path: Path) -> None:
    res = edgefer("run", "--source", str(tmp_path), "--headless", "--no-progress")
    assert res.returncode == 2
    line = one_line_error(res)
    assert f"source {tmp_path} is a folder, not a video file" in line and "not found" not in line


def test_a_config_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("# profile\nsource: \"caméra.mp4\"\n".encode("latin-1"))  # what an old editor saves
    res = edgefer("run", "--config", str(bad), "--no-progress")
    assert res.returncode == 2
    line = one_line_error(res)
    assert f"{bad}: not UTF-8 text (byte 0xe9 at line 2" in line and "save the file as UTF-8" in line


@pytest.fixture(scope="module")
def landmark_cache(tmp_path_factory: pytest.TempPathFactory, fer_dir: Path) -> tuple[Path, Path]:
    """A real landmark cache of three FER2013 images, made by `edgefer landmarks`."""
    import shutil

    root = tmp_path_factory.mktemp("landmarks")
    images = root / "data" / "test" / "happy"
    images.mkdir(parents=True)
    for src in sorted((fer_dir / "test" / "happy").iterdir())[:3]:
        shutil.copyfile(src, images / src.name)
    res = edgefer("landmarks", str(root / "data"), "--out", str(root / "cache"), "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    return root / "data", root / "cache"


@pytest.mark.parametrize("damage", ["overwritten", "truncated"])
def test_a_damaged_landmark_shard_is_named(landmark_cache: tuple[Path, Path], tmp_path: Path, damage: str) -> None:
    import shutil

    data, cache = landmark_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (shard,) = copy.glob("shard-*.npz")
    raw = bytearray(shard.read_bytes())
    if damage == "overwritten":  # a bad sector in the middle: the zip's CRC check fails
        raw[len(raw) // 3: len(raw) // 3 + 64] = bytes(64)
    else:  # a copy cut short: no zip directory at all
        raw = raw[: len(raw) // 2]
    shard.write_bytes(bytes(raw))
    res = edgefer("landmarks", str(data), "--out", str(copy), "--no-progress")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("edgefer landmarks:")]
    assert f"landmark cache shard {shard} is unreadable (BadZipFile:" in line
    assert "delete it and re-run `edgefer landmarks`" in line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_record_to_dev_full_writes_to_the_device_not_beside_it(tmp_path: Path, one_face_video: Path,
                                                                tiny_onnx_model: Path) -> None:
    stray = Path("/dev/full.mp4")
    if stray.is_file():
        stray.unlink()  # left by an edgefer before this fix: a regular file among the devices
    rows = tmp_path / "rows.csv"
    res = edgefer("run", "--source", str(one_face_video), "--model", str(tiny_onnx_model), "--headless",
                  "--no-progress", "--max-frames", "12", "--record", "/dev/full", "--csv", str(rows))
    assert not stray.exists()
    assert res.returncode == 1, res.stderr[-2000:]  # an output failed: exit 1, no crash
    # 12 frames fit in the writer's buffer, so the failure comes when the file is finished
    assert "ERROR: record: " in res.stdout and "recording /dev/full: " in res.stdout
    assert "(No space left on device)" in res.stdout and "saved" not in res.stdout
    assert len(rows.read_text().splitlines()) == 1 + 12  # the rows went on: one face in every frame


def test_outputs_that_failed_are_not_called_missing(tmp_path: Path, one_face_video: Path,
                                                      tiny_onnx_model: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the recording's folder should be")
    res = edgefer("run", "--source", str(one_face_video), "--model", str(tiny_onnx_model), "--headless",
                  "--no-progress", "--max-frames", "5", "--record", str(blocker / "rec.mp4"))
    assert res.returncode == 1
    assert "ERROR: record: recording" in res.stdout and str(blocker) in res.stdout
    assert "outputs: none written (the outputs asked for failed: see the errors above)" in res.stdout
    assert "add --record" not in res.stdout


def test_a_nearly_full_disk_says_recording_stopped_once(tmp_path: Path, one_face_video: Path,
                                                        tiny_onnx_model: Path) -> None:
    res = edgefer("run", "--source", str(one_face_video), "--model", str(tiny_onnx_model), "--headless",
                  "--no-progress", "--max-frames", "5", "--record", str(tmp_path / "rec.mp4"),
                  "--set", "record.min_free_mb=1e12")  # every disk is "nearly full" at this threshold
    assert res.returncode == 1
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("ERROR: record:")]
    assert "disk nearly full" in line and "what was written is kept" in line
    assert line.count("recording stopped") == 1


def test_mediapipe_start_up_lines_come_before_the_progress_bar(one_face_video: Path, tiny_onnx_model: Path) -> None:
    """The bar starts at the first frame, after MediaPipe's native start-up lines (issue 11, item 15)."""
    res = edgefer("run", "--source", str(one_face_video), "--model", str(tiny_onnx_model), "--headless",
                  "--max-frames", "20")
    assert res.returncode == 0, res.stderr[-2000:]
    err = res.stderr
    assert "edgefer run:" in err and "20/20" in err  # the bar ran
    bar_at = err.index("edgefer run:")
    native = [m for m in ("W0000", "INFO: Created TensorFlow Lite", "Logging before InitGoogle") if m in err]
    assert native, "MediaPipe printed nothing at start-up: this test no longer checks anything"
    assert all(err.rindex(m) < bar_at for m in native), err[:3000]

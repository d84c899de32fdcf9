"""A monitor that runs unattended for days (issue 11): what a real `edgefer run` leaves behind after
a second Ctrl+C, a restart with the same outputs, a camera that never opens, a model that returns
NaN, an outage of a live source, and a days-long run. Real processes, real signals, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.pipeline import count_frames, read_csv
from tests.support.processes import reaped

REPO = Path(__file__).resolve().parents[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def four_face_clip(one_face_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real frames, each a 2x2 mosaic of the one-face video at four moments (four faces, 640x360)."""
    cap = cv2.VideoCapture(str(one_face_video))
    frames = []
    while len(frames) < 160:
        ok, img = cap.read()
        assert ok
        frames.append(cv2.resize(img, (320, 180), interpolation=cv2.INTER_AREA))
    cap.release()
    out = tmp_path_factory.mktemp("clips") / "four40.mp4"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (640, 360))
    for i in range(40):
        a, b, c, d = (frames[i + 40 * k] for k in range(4))
        writer.write(np.vstack([np.hstack([a, b]), np.hstack([c, d])]))
    writer.release()
    return out


def _run_cmd(source: Path | str, model: Path, face_model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgefer.cli", "run", "--source", str(source), "--headless", "--no-progress",
            "--model", str(model), "--face-model", str(face_model), *extra]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO))


# ---- item 7: a second Ctrl+C ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("gap_s", [0.05, 0.4])
def test_a_second_ctrl_c_still_closes_a_playable_recording(gap_s, four_face_clip, tiny_onnx_model, face_model,
                                                            tmp_path):
    """SIGINT, then another `gap_s` later, while a looped four-face clip is recorded: the second
    one drops the queued frames but the recording is still finished (and would play even if the
    process had been killed: fragmented MP4), the exit is 130, no traceback, no abort."""
    rec, rows = tmp_path / "rec.mp4", tmp_path / "rows.csv"
    cmd = _run_cmd(four_face_clip, tiny_onnx_model, face_model, "--loop", "--record", str(rec), "--csv", str(rows),
                   "--set", "flush_seconds=0.2")
    with reaped(subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)) as proc:
        _wait_for(lambda: rows.exists() and rows.read_text().count("\n") > 60, 120, "rows to appear")
        proc.send_signal(signal.SIGINT)
        time.sleep(gap_s)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "FATAL" not in err, err[-3000:]
    assert "SIGINT again: dropping queued frames; closing files" in err
    assert took < 15, f"the second Ctrl+C took {took:.1f} s"
    assert "outputs:" in out and str(rec) in out
    played = count_frames(rec)
    table = read_csv(rows)
    assert played >= 15 and len(table) >= 60


# ---- item 5: a restart with the same outputs ---------------------------------------------------
def _digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_a_restart_with_the_same_outputs_overwrites_nothing(one_face_video, tiny_onnx_model, face_model, tmp_path):
    """The same `--record R/rec.mp4 --segment-seconds S --csv R/rows.csv` twice (a supervisor's
    restart): the first run's files stay byte for byte, the second writes rec-2_*.mp4 and
    rows-2.csv, says so, and lists them; a third gets -3."""
    out = tmp_path / "R"
    cmd = _run_cmd(one_face_video, tiny_onnx_model, face_model, "--max-frames", "30", "--record", str(out / "rec.mp4"),
                   "--segment-seconds", "0.5", "--csv", str(out / "rows.csv"))
    first = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _digest(out)
    assert "rows.csv" in before and {"rec_000.mp4", "rec_001.mp4"} <= set(before)
    second = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    after = _digest(out)
    assert {name: after[name] for name in before} == before  # nothing of the first run changed
    new = sorted(set(after) - set(before))
    assert "rows-2.csv" in new and all(n.startswith("rec-2_") or n == "rows-2.csv" for n in new), new
    assert len([n for n in new if n.startswith("rec-2_")]) == len([n for n in before if n.startswith("rec_")])
    assert "a previous run's outputs are kept; this run (run 2) writes" in second.stderr
    assert str(out / "rows-2.csv") in second.stdout and str(out / "rec-2_000.mp4") in second.stdout
    assert len(read_csv(out / "rows-2.csv")) == len(read_csv(out / "rows.csv")) == 30
    third = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and (out / "rows-3.csv").is_file() and (out / "rec-3_000.mp4").is_file()
    assert {name: _digest(out)[name] for name in after} == after


def test_run_numbers_cover_every_output_and_its_segments(tmp_path: Path) -> None:
    from edgefer.pipeline.sinkbase import first_free_run, run_path

    rec, rows = tmp_path / "rec.mp4", tmp_path / "rows.csv"
    assert first_free_run([(rec, True), (rows, False)]) == 1
    (tmp_path / "rec_004.mp4").write_bytes(b"x")  # only a segment of a previous run
    assert first_free_run([(rec, True), (rows, False)]) == 2 and first_free_run([(rec, False)]) == 1
    (tmp_path / "rows-2.csv").write_text("frame\n")  # run 2 got as far as its rows
    assert first_free_run([(rec, True), (rows, False)]) == 3
    assert run_path(rows, 3) == tmp_path / "rows-3.csv" and run_path(rows, 1) == rows
    (tmp_path / "rec_notes.mp4").write_bytes(b"x")  # not a segment name
    assert first_free_run([(tmp_path / "other.mp4", True)]) == 1
    assert first_free_run([(Path("/dev/full"), False)]) == 1  # a device is written as it is

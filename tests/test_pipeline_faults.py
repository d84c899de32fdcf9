"""Faults and long runs: SIGINT, damaged files, unwritable outputs, lost live sources, memory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgefer.pipeline.runner import Pipeline
from tests.support.pipeline import CallbackFailures, count_frames, make_clip, read_csv, rss_mb, run_to_end, settings
from tests.support.processes import reaped, wait_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def face_clip(one_face_video: Path, tmp_path_factory) -> Path:
    """20 real frames of the one-face video at 320x180 (a face in every frame)."""
    return make_clip(tmp_path_factory.mktemp("clips") / "face20.mp4", [(one_face_video, 0, 20)])


@pytest.fixture(scope="module")
def soak_clip(one_face_video: Path, noface_mov: Path, tmp_path_factory) -> Path:
    """8 face frames then 32 faceless cartoon frames (real frames; faceless ones track fast)."""
    return make_clip(
        tmp_path_factory.mktemp("clips") / "soak40.mp4", [(one_face_video, 100, 8), (noface_mov, 0, 32)]
    )


@pytest.mark.slow
def test_sigint_halfway_leaves_a_playable_recording(face_clip, tiny_onnx_model, face_model, tmp_path):
    rec, rows = tmp_path / "rec.mp4", tmp_path / "rows.csv"
    cmd = [
        sys.executable, "-m", "edgefer.cli", "run", "--source", str(face_clip), "--loop", "--headless",
        "--model", str(tiny_onnx_model), "--face-model", str(face_model), "--record", str(rec), "--csv", str(rows),
        "--no-progress", "--set", "flush_seconds=0.2",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with reaped(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
        wait_for(lambda: rows.exists() and rows.read_text().count("\n") > 40, 90, "rows to appear")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "SIGINT: finishing queued frames" in err
    assert "outputs:" in out and str(rec) in out
    frames = count_frames(rec)
    table = read_csv(rows)
    assert frames >= 40
    assert len(table) == frames  # one face per frame: every processed frame is in both files
    assert int(table[-1]["frame"]) == frames - 1


@pytest.mark.slow
def test_truncated_mp4_processes_the_readable_part(one_face_video, tiny_onnx_model, face_model, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = one_face_video.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    rec = tmp_path / "cut_annotated.mp4"
    run = run_to_end(settings(cut, tiny_onnx_model, face_model, record={"path": rec}, capture={"max_read_failures": 2}))
    st = run.stats
    assert 150 < st.frames_processed < 472
    assert st.read_errors >= 1
    damaged = [m for m in run.messages("warning") if "damaged or truncated" in m]
    assert damaged and str(cut) in damaged[0] and "of 472 announced" in damaged[0]
    assert count_frames(rec) == st.frames_processed


def test_unwritable_recording_reports_and_csv_goes_on(face_clip, tiny_onnx_model, face_model, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the recording's folder should be")
    bad = blocker / "rec.mp4"
    rows = tmp_path / "rows.csv"
    run = run_to_end(settings(face_clip, tiny_onnx_model, face_model, record={"path": bad}, csv=rows))
    errors = [e for e in run.events if e.kind == "error"]
    assert len(errors) == 1 and errors[0].stage == "record" and str(bad) in errors[0].message
    assert run.stats.frames_processed == 20
    assert len(read_csv(rows)) == 20
    assert not bad.exists()


def test_rows_to_a_full_disk_report_and_recording_goes_on(face_clip, tiny_onnx_model, face_model, tmp_path):
    rec = tmp_path / "rec.mp4"
    run = run_to_end(settings(face_clip, tiny_onnx_model, face_model, record={"path": rec}, csv=Path("/dev/full")))
    errors = [e for e in run.events if e.kind == "error"]
    assert errors and errors[0].stage == "rows" and "/dev/full" in errors[0].message
    assert "No space left" in errors[0].message
    assert count_frames(rec) == 20


def test_live_source_reconnects_and_stops_promptly_when_gone(face_clip, tiny_onnx_model, face_model, tmp_path):
    # A file played as a live stream: at its end the "stream" is lost and reopened.
    run = run_to_end(
        settings(
            face_clip, tiny_onnx_model, face_model, max_frames=60, record={"path": tmp_path / "live.mp4"},
            capture={"live": True}, reconnect={"initial_delay_s": 0.02, "max_delay_s": 0.1},
        )
    )
    st = run.stats
    assert st.frames_read == 60 and st.reconnects >= 2
    assert st.frames_dropped > 0 and st.frames_processed + st.frames_dropped == 60
    msgs = run.messages()
    assert any(m.startswith("lost ") for m in msgs) and any(m.startswith("reconnected to") for m in msgs)
    assert count_frames(tmp_path / "live.mp4") == st.frames_processed

    # The source disappears for good: reconnection keeps trying with backoff, stop() is prompt.
    gone = tmp_path / "gone.mp4"
    shutil.copy(face_clip, gone)
    events = []
    s = settings(gone, tiny_onnx_model, face_model, record={"path": tmp_path / "kept.mp4"}, capture={"live": True},
                 reconnect={"initial_delay_s": 0.05, "max_delay_s": 0.4})
    with Pipeline(s, on_event=events.append) as p:
        p.start()
        wait_for(lambda: p.stats().frames_processed >= 3, 60, "first frames")
        gone.unlink()
        wait_for(lambda: any("attempt 5" in e.message for e in events), 30, "reconnection attempts")
        t0 = time.monotonic()
        p.stop()
        assert time.monotonic() - t0 < 5
        kept = p.stats().frames_processed
    assert count_frames(tmp_path / "kept.mp4") == kept
    delays = [float(e.message.split(" in ")[1].split(" s")[0]) for e in events if "reconnecting to" in e.message]
    assert delays[-1] == 0.4 and delays == sorted(delays)  # exponential, capped
    assert not [t for t in threading.enumerate() if t.name.startswith("edgefer-")]


def test_gives_up_after_max_attempts(tmp_path, tiny_onnx_model, face_model):
    missing_live = "rtsp://127.0.0.1:9/nothing-here"
    s = settings(missing_live, tiny_onnx_model, face_model, reconnect={"initial_delay_s": 0.01, "max_delay_s": 0.02, "max_attempts": 2})
    run = run_to_end(s, timeout=60)
    errors = run.messages("error")
    assert errors and "gave up on rtsp://127.0.0.1:9/nothing-here after 2" in errors[-1]
    assert run.stats.frames_read == 0


def test_live_controls(face_clip, tiny_onnx_model, face_model, tmp_path):
    events = []
    s = settings(face_clip, tiny_onnx_model, face_model, capture={"loop": True})
    with Pipeline(s, on_event=events.append) as p:
        assert p.recording is None and not p.paused
        p.start()
        wait_for(lambda: p.stats().frames_processed >= 10, 60, "frames")
        p.pause()
        assert p.paused

        def settled() -> bool:  # frames already in flight have finished
            a = p.stats().frames_processed
            time.sleep(0.3)
            return p.stats().frames_processed == a

        wait_for(settled, 20, "frames in flight to finish")
        n1 = p.stats().frames_processed
        time.sleep(0.6)
        assert p.stats().frames_processed == n1 and p.stats().state == "paused"
        p.resume()
        wait_for(lambda: p.stats().frames_processed >= n1 + 5, 60, "frames after resume")
        rec = tmp_path / "clip"  # no suffix: the container's is added
        p.start_recording(rec)
        assert p.recording == tmp_path / "clip.mp4"
        n2 = p.stats().frames_processed
        wait_for(lambda: p.stats().frames_processed >= n2 + 15, 60, "recorded frames")
        p.stop_recording()
        assert p.recording is None
        assert count_frames(tmp_path / "clip.mp4") >= 15  # closed and playable while still running
        assert p.recording_files() == [str(tmp_path / "clip.mp4")]
        p.set_heatmap("cam", 0.7)
        assert p.heatmap == ("cam", 0.7)
        p.set_heatmap("off")
        assert p.heatmap == ("off", 0.7)
        with pytest.raises(ValueError, match="heatmap mode"):
            p.set_heatmap("gradcam", 0.5)
        with pytest.raises(ValueError, match="opacity"):
            p.set_heatmap("attention", 1.5)
        p.set_smoothing(0.0)
        with pytest.raises(ValueError, match="smoothing"):
            p.set_smoothing(1.0)
        p.set_max_faces(1)
        with pytest.raises(ValueError, match="max faces"):
            p.set_max_faces(0)
        p.set_max_faces(6)  # above the landmarker's limit: it is rebuilt, ids keep counting
        wait_for(lambda: any(e.message == "tracking up to 6 faces" for e in events), 30, "tracker rebuilt")
        n3 = p.stats().faces
        wait_for(lambda: p.stats().faces >= n3 + 5, 60, "faces after the rebuild")
        st = p.stats()
        assert st.state == "running" and st.fps > 0 and st.backend.startswith("onnxruntime")
        assert st.model == tiny_onnx_model.name
    assert p.finished and p.stats().state == "finished"
    kinds = [e.message for e in events if e.kind == "status"]
    assert "paused" in kinds and "resumed" in kinds


@pytest.mark.slow
def test_long_looped_run_keeps_memory_flat(soak_clip, tiny_onnx_model, face_model, tmp_path):
    """3000 frames (75 passes over a 40-frame real clip, a new track id each pass), all sinks on."""
    rec, rows = tmp_path / "soak.mp4", tmp_path / "soak.csv"
    marks: dict[int, float] = {}
    seen = [0]

    def on_result(_r) -> None:
        seen[0] += 1
        if seen[0] in (600, 3000):
            marks[seen[0]] = rss_mb()

    s = settings(soak_clip, tiny_onnx_model, face_model, max_frames=3000, capture={"loop": True}, csv=rows,
                 record={"path": rec, "segment_seconds": 30.0})
    events = []
    failures = CallbackFailures()  # the runner swallows a callback's exception: asserted after the run
    with Pipeline(s, on_result=failures.wrap(on_result), on_event=events.append) as p:
        p.start()
        assert p.wait(300)
    failures.check()
    st = p.stats()
    assert st.frames_processed == 3000 and not [e for e in events if e.kind == "error"]
    growth = marks[3000] - marks[600]
    assert growth < 25, f"RSS grew {growth:.1f} MB between frame 600 and 3000"
    # 3000 frames at 24 fps = 125 s of video in 30 s segments: 5 files, each playable
    files = sorted(tmp_path.glob("soak_*.mp4"))
    assert [f.name for f in files] == [f"soak_{i:03d}.mp4" for i in range(5)]
    assert sum(count_frames(f) for f in files) == 3000
    table = read_csv(rows)
    assert len(table) == st.faces >= 75 * 7
    assert len({r["face_id"] for r in table}) >= 70  # a new id each pass; smoothing state is dropped


def test_start_errors_are_clear_and_leave_nothing_running(face_clip, tiny_onnx_model, face_model, tmp_path):
    from edgefer.pipeline.runner import PipelineError

    cases = [
        (settings(tmp_path / "nope.mp4", tiny_onnx_model, face_model), "source file not found"),
        (settings(face_clip, tmp_path / "nope.onnx", face_model), "cannot load the expression model"),
        (settings(face_clip, tiny_onnx_model, tmp_path / "nope.task"), "cannot start the face tracker"),
        (settings("ftp://x/y", tiny_onnx_model, face_model), "unknown scheme"),
        (settings(face_clip, tiny_onnx_model, face_model, csv=tmp_path / "a.csv", jsonl=tmp_path / "a.jsonl"), "either a CSV or a JSONL"),
    ]
    for s, needle in cases:
        p = Pipeline(s)
        with pytest.raises(PipelineError, match=needle):
            p.start()
        t0 = time.monotonic()
        p.stop()  # nothing to stop: returns at once
        assert time.monotonic() - t0 < 0.5
        assert not [t for t in threading.enumerate() if t.name.startswith("edgefer-")]


def test_realtime_paces_a_file_at_its_frame_rate(face_clip, tiny_onnx_model, face_model):
    # 48 frames of a 24 fps clip (looped): reading alone must take 47/24 s of wall time,
    # however fast the machine; without --realtime they take a fraction of that.
    s = settings(face_clip, tiny_onnx_model, face_model, realtime=True, max_frames=48, capture={"loop": True})
    with Pipeline(s) as p:
        p.start()
        t0 = time.monotonic()
        assert p.wait(60)
        wall = time.monotonic() - t0
    st = p.stats()
    assert st.frames_read == 48 and st.frames_processed + st.frames_dropped == 48
    assert wall >= 47 / 24, wall

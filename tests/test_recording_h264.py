"""Recordings that play in browsers (issue 11, item 4): H.264 in MP4 by default, written by PyAV's
libx264, read back by a second decoder (OpenCV's FFmpeg) and probed for codec, profile and pixel
format; segment rotation; the fallback to mp4v on a machine without PyAV, with its message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.recording import Recording
from edgefer.pipeline.settings import RecordSettings
from edgefer.pipeline.sinks import SinkError, VideoRecorder, h264_encoder
from edgefer.pipeline.stats import StatsCollector
from edgefer.types import Frame, FrameResult


def real_frames(video: Path, n: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < n:
        ok, img = cap.read()
        assert ok, f"{video}: cannot read frame {len(frames)}"
        frames.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA) if size else img)
    cap.release()
    return frames


def probe(path: Path) -> dict:
    """What ffprobe would say about the video stream (through PyAV's libavformat), and how many
    frames decode."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        info = {"format": container.format.name, "codec": ctx.name, "profile": ctx.profile,
                "pix_fmt": ctx.pix_fmt, "size": (ctx.width, ctx.height), "rate": float(stream.average_rate)}
        info["decoded"] = sum(1 for _ in container.decode(stream))
    # The MP4 sample entry browsers look for: 'avc1' inside stsd.
    data = path.read_bytes()
    stsd = data.find(b"stsd")
    info["sample_entry"] = data[stsd + 12 + 4: stsd + 12 + 8].decode("latin-1") if stsd >= 0 else None
    return info


def opencv_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def test_this_machine_records_h264() -> None:
    name, why = h264_encoder()
    assert name == "libx264", why  # PyAV's wheels carry libx264: the default must not silently degrade


def test_default_recording_is_h264_and_keeps_the_picture(tmp_path: Path, one_face_video: Path) -> None:
    frames = real_frames(one_face_video, 48)
    rec = VideoRecorder(tmp_path / "rec.mp4", fps=24.0)
    for i, img in enumerate(frames):
        rec.write(img, i / 24.0)
    rec.close()
    assert rec.encoder == "pyav" and rec.format == "H.264 (libx264 via PyAV)" and rec.fallback_reason is None
    info = probe(tmp_path / "rec.mp4")
    assert info["format"].startswith("mov,mp4") and info["codec"] == "h264" and info["sample_entry"] == "avc1"
    assert info["pix_fmt"] == "yuv420p" and info["profile"] in ("High", "Main", "Constrained Baseline")
    assert info["size"] == (640, 360) and info["rate"] == pytest.approx(24.0) and info["decoded"] == 48
    back = opencv_frames(tmp_path / "rec.mp4")
    assert len(back) == 48 and int(cv2.VideoCapture(str(tmp_path / "rec.mp4")).get(cv2.CAP_PROP_FOURCC)) != 0
    # the picture survives the lossy round trip (a real face, not a grey field)
    err = np.mean([np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() for a, b in zip(frames, back, strict=True)])
    assert err < 4.0, err


def test_h264_segments_rotate_and_each_plays(tmp_path: Path, one_face_video: Path) -> None:
    frames = real_frames(one_face_video, 35, (320, 180))
    rec = VideoRecorder(tmp_path / "seg.mp4", fps=10.0, segment_seconds=1.0)
    for i, img in enumerate(frames):
        rec.write(img, i / 10.0)
        if i == 12:  # a finished segment is closed, complete and playable while recording goes on
            assert probe(tmp_path / "seg_000.mp4")["decoded"] == 10
    rec.close()
    assert [p.name for p in rec.files] == ["seg_000.mp4", "seg_001.mp4", "seg_002.mp4", "seg_003.mp4"]
    infos = [probe(p) for p in rec.files]
    assert [i["decoded"] for i in infos] == [10, 10, 10, 5]
    assert {i["codec"] for i in infos} == {"h264"} and [len(opencv_frames(p)) for p in rec.files] == [10, 10, 10, 5]


def test_odd_sizes_are_cropped_not_scaled(tmp_path: Path) -> None:
    img = np.zeros((181, 321, 3), np.uint8)
    img[:, 160:] = 255  # a sharp edge: scaling would blur it, cropping keeps it
    rec = VideoRecorder(tmp_path / "odd.mp4", fps=10.0)
    for i in range(5):
        rec.write(img, i / 10)
    rec.close()
    info = probe(tmp_path / "odd.mp4")
    assert info["size"] == (320, 180) and info["decoded"] == 5
    back = opencv_frames(tmp_path / "odd.mp4")[0]
    assert back[90, 150].max() < 40 and back[90, 170].min() > 215


def test_a_disk_that_fills_up_is_a_named_error_not_silence(small_disk: Path) -> None:
    """OpenCV's writer drops frames silently on a full disk; the H.264 writer says so, naming the file."""
    rng = np.random.default_rng(0)
    rec = VideoRecorder(small_disk / "rec.mp4", fps=10.0, min_free_mb=0)  # no free-space guard
    with pytest.raises(SinkError, match=r"rec\.mp4: write failed \(No space left on device\)"):
        for i in range(1000):
            rec.write(rng.integers(0, 255, (180, 320, 3), dtype=np.uint8), i / 10)
    rec.close()  # the failure was reported once; closing a broken writer only closes its file
    assert rec.current_file is None


def _fill(disk: Path, name: str = "filler.bin") -> None:
    """Another writer takes every byte left on `disk`."""
    with open(disk / name, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_recording_cut_by_a_full_disk_plays_up_to_the_cut_and_says_so(small_disk: Path, one_face_video: Path) -> None:
    """Issue 11, item 6: a real 2 MB tmpfs filled by another writer mid-recording, with the
    free-space guard off. The file is fragmented MP4, so what was written before the cut plays,
    and the error says how much (about N frames); before, the file had no index and did not play."""
    frames = real_frames(one_face_video, 40, (320, 180))
    rec = VideoRecorder(small_disk / "rec.mp4", fps=10.0, min_free_mb=0)
    with pytest.raises(SinkError) as info:
        for i in range(100_000):
            if i == 60:
                _fill(small_disk)
            rec.write(frames[i % len(frames)], i / 10)
    message = str(info.value)
    assert "rec.mp4: write failed (No space left on device)" in message, message
    assert "is kept and plays (about " in message, message
    claimed = int(message.split("(about ")[1].split(" frame")[0])
    played = len(opencv_frames(small_disk / "rec.mp4"))
    assert 20 <= played <= claimed <= played + 5, (played, claimed)  # at least one whole 2 s fragment
    assert rec.files == [small_disk / "rec.mp4"] and rec.current_file is None
    rec.close()


def test_a_recording_of_which_nothing_plays_is_removed_not_listed(small_disk: Path, one_face_video: Path) -> None:
    _fill(small_disk)
    rec = VideoRecorder(small_disk / "rec.mp4", fps=10.0, min_free_mb=0)
    frames = real_frames(one_face_video, 5, (320, 180))
    with pytest.raises(SinkError, match="nothing of it played, so it was removed"):
        for i in range(1000):
            rec.write(frames[i % 5], i / 10)
    assert rec.files == [] and rec.dropped == [small_disk / "rec.mp4"]
    assert not (small_disk / "rec.mp4").exists()


def _recording(path: Path, seen: list) -> Recording:
    rec = Recording(RecordSettings(path=path, min_free_mb=0), EventLog(StatsCollector(), seen.append), lambda: 10.0)
    rec.begin()
    rec.serve()
    return rec


def _frame_result(i: int, img: np.ndarray) -> FrameResult:
    return FrameResult(Frame(i, i / 10, img), [], img)


def test_the_pipeline_lists_no_recording_that_failed_before_anything_played(small_disk: Path) -> None:
    """`Pipeline.recording_files()` and the summary's outputs come from `Recording.files()`: a
    recording of which nothing plays is an error event, never an output."""
    _fill(small_disk)
    seen: list = []
    rec = _recording(small_disk / "rec.mp4", seen)
    img = np.full((180, 320, 3), 90, np.uint8)
    for i in range(200):
        rec.write(_frame_result(i, img))
    rec.close()
    errors = [e.message for e in seen if e.kind == "error"]
    assert len(errors) == 1 and "nothing of it played, so it was removed; recording stopped" in errors[0], errors
    assert rec.files() == [] and rec.path is None


def test_a_killed_recorder_leaves_a_playable_file(tmp_path: Path, one_face_video: Path) -> None:
    """Issue 11, item 7, at its root: the process dies (SIGKILL, no close, no index) in the middle
    of a recording; the fragmented MP4 plays up to its last fragment."""
    script = (
        "import sys, cv2, os, signal\n"
        "from edgefer.pipeline.sinks import VideoRecorder\n"
        "cap = cv2.VideoCapture(sys.argv[1]); rec = VideoRecorder(sys.argv[2], fps=10.0)\n"
        "for i in range(75):\n"
        "    ok, img = cap.read(); rec.write(cv2.resize(img, (320, 180)), i / 10)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = tmp_path / "killed.mp4"
    res = subprocess.run([sys.executable, "-c", script, str(one_face_video), str(out)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == -9, res.stderr[-2000:]
    played = len(opencv_frames(out))
    assert 40 <= played <= 75, played  # whole fragments (a keyframe every 2 s = 20 frames), never 0


def test_explicit_opencv_h264_explains_the_pip_wheel(tmp_path: Path) -> None:
    if cv2.VideoWriter(str(tmp_path / "probe.mp4"), cv2.VideoWriter_fourcc(*"avc1"), 10, (96, 64)).isOpened():
        pytest.skip("this OpenCV encodes avc1 itself")
    rec = VideoRecorder(tmp_path / "r.mp4", fps=10, encoder="opencv", codec="avc1")
    with pytest.raises(SinkError, match="use record.encoder auto"):
        rec.write(np.zeros((64, 96, 3), np.uint8), 0.0)


_WITHOUT_PYAV = """
import sys
sys.modules["av"] = None  # this interpreter has no PyAV: `import av` raises ImportError
import logging
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
import numpy as np
from edgefer.pipeline.sinks import SinkError, VideoRecorder
out = sys.argv[1]
rec = VideoRecorder(out + "/auto.mp4", fps=10.0)
for i in range(10):
    rec.write(np.full((64, 96, 3), 20 * i, np.uint8), i / 10)
rec.close()
print("ENCODER", rec.encoder, rec.format)
try:
    VideoRecorder(out + "/strict.mp4", fps=10.0, encoder="pyav")
except SinkError as exc:
    print("STRICT", exc)
from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.recording import Recording
from edgefer.pipeline.settings import RecordSettings
from edgefer.pipeline.stats import StatsCollector
from edgefer.types import Frame, FrameResult
events = []
recording = Recording(RecordSettings(path=out + "/pipe.mp4"), EventLog(StatsCollector(), events.append), lambda: 10.0)
recording.begin(); recording.serve()
img = np.zeros((64, 96, 3), np.uint8)
recording.write(FrameResult(Frame(0, 0.0, img), [], img))
recording.close()
for e in events:
    print("EVENT", e.kind, e.message)
"""


def test_without_pyav_auto_falls_back_to_mp4v_and_says_why(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", _WITHOUT_PYAV, str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "ENCODER opencv OpenCV FourCC mp4v" in res.stdout
    assert "WARNING recording" in res.stderr and "H.264 is unavailable (PyAV is not installed" in res.stderr
    assert "not in web browsers" in res.stderr
    assert "STRICT recording" in res.stdout and "H.264 through PyAV is unavailable" in res.stdout
    # In a pipeline the reason is a warning event (the window shows it), and the status says the format.
    assert "EVENT warning recording " in res.stdout and "pipe.mp4: H.264 is unavailable (PyAV is not installed" in res.stdout
    assert "EVENT status recording to " in res.stdout and "pipe.mp4 as OpenCV FourCC mp4v" in res.stdout
    info = probe(tmp_path / "auto.mp4")
    assert info["codec"] == "mpeg4" and info["decoded"] == 10


@pytest.mark.slow
def test_edgefer_run_records_h264_by_default(tmp_path: Path, one_face_video: Path, tiny_onnx_model: Path) -> None:
    out = tmp_path / "rec.mp4"
    res = subprocess.run(
        [sys.executable, "-m", "edgefer.cli", "run", "--source", str(one_face_video), "--model", str(tiny_onnx_model),
         "--headless", "--no-progress", "--max-frames", "30", "--record", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    info = probe(out)
    assert info["codec"] == "h264" and info["sample_entry"] == "avc1" and info["decoded"] == 30


_PAGE = """<html><body><pre id=out>running</pre><script>
const res = {};
function play(name) { return new Promise(done => {
  const v = document.createElement('video'); v.muted = true;
  v.onloadeddata = () => { res[name] = 'ok ' + v.videoWidth + 'x' + v.videoHeight; done(); };
  v.onerror = () => { res[name] = 'error ' + (v.error ? v.error.message : '?'); done(); };
  setTimeout(() => { if (!res[name]) { res[name] = 'timeout'; done(); } }, 8000);
  v.src = name; document.body.appendChild(v); }); }
(async () => { for (const n of NAMES) await play(n);
  document.getElementById('out').textContent = 'RESULT' + JSON.stringify(res) + 'END'; })();
</script></body></html>"""


@pytest.mark.slow
def test_a_browser_plays_the_recording(tmp_path: Path, one_face_video: Path) -> None:
    """The point of H.264: Chromium (Debian's, when installed; CI does not install it) plays the
    default recording and refuses OpenCV's mp4v."""
    import json
    import shutil
    import threading
    from functools import partial
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    frames = real_frames(one_face_video, 24)
    for name, encoder in (("h264.mp4", "auto"), ("mp4v.mp4", "opencv")):
        rec = VideoRecorder(tmp_path / name, fps=24.0, encoder=encoder)
        for i, img in enumerate(frames):
            rec.write(img, i / 24)
        rec.close()
    (tmp_path / "page.html").write_text(_PAGE.replace("NAMES", json.dumps(["h264.mp4", "mp4v.mp4"])))
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        res = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
             "--dump-dom", f"http://127.0.0.1:{server.server_address[1]}/page.html"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    dom = res.stdout
    assert "RESULT" in dom, res.stderr[-2000:]
    result = json.loads(dom[dom.index("RESULT") + 6: dom.index("END", dom.index("RESULT"))])
    assert result["h264.mp4"] == "ok 640x360"
    assert result["mp4v.mp4"].startswith("error")  # what issue 11 reported: mp4v does not play

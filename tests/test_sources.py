"""SourceSpec parsing (pure) and FrameReader on the real test videos (plain, truncated, looped)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from edgefer.pipeline.sources import (
    FrameReader,
    SourceError,
    SourceSpec,
    backoff_delays,
    csi_pipeline,
    open_capture,
)


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, kind, uri, live, api, index",
    [
        ("0", "camera", "0", True, "v4l2", 0),
        (" 2 ", "camera", "2", True, "v4l2", 2),
        ("/dev/video1", "v4l2", "/dev/video1", True, "v4l2", None),
        ("v4l2:///dev/video0", "v4l2", "/dev/video0", True, "v4l2", None),
        ("v4l2://0", "camera", "0", True, "v4l2", 0),
        ("rtsp://user:pw@10.0.0.5:554/stream1", "stream", "rtsp://user:pw@10.0.0.5:554/stream1", True, "ffmpeg", None),
        ("RTSP://cam/x", "stream", "RTSP://cam/x", True, "ffmpeg", None),
        ("rtmp://host/live", "stream", "rtmp://host/live", True, "ffmpeg", None),
        ("udp://@:5000", "stream", "udp://@:5000", True, "ffmpeg", None),
        ("http://host/mjpeg", "stream", "http://host/mjpeg", True, "ffmpeg", None),
        ("https://host/clip.MP4", "stream", "https://host/clip.MP4", False, "ffmpeg", None),
        ("file:///data/clip.mp4", "file", "/data/clip.mp4", False, "any", None),
        ("file://clip.mp4", "file", "clip.mp4", False, "any", None),
        ("file://dir/clip.mp4", "file", "dir/clip.mp4", False, "any", None),
        ("clip.gif", "file", "clip.gif", False, "any", None),
        ("/abs/path with space/x.mov", "file", "/abs/path with space/x.mov", False, "any", None),
        ("frames/img_%04d.png", "file", "frames/img_%04d.png", False, "any", None),
        ("videotestsrc ! videoconvert ! appsink", "gstreamer", "videotestsrc ! videoconvert ! appsink", True, "gstreamer", None),
        ("filesrc location=a.mp4 ! decodebin ! videoconvert ! appsink", "gstreamer",
         "filesrc location=a.mp4 ! decodebin ! videoconvert ! appsink", False, "gstreamer", None),
    ],
)
def test_parse_source_forms(text, kind, uri, live, api, index):
    spec = SourceSpec.parse(text)
    assert (spec.kind, spec.uri, spec.is_live, spec.api, spec.index) == (kind, uri, live, api, index)
    assert spec.original == text.strip()


def test_parse_camera_from_int():
    spec = SourceSpec.parse(1)
    assert spec.kind == "camera" and spec.index == 1 and spec.is_live


def test_csi_uri_becomes_nvargus_pipeline():
    spec = SourceSpec.parse("csi://1?width=1920&height=1080&fps=29.97&flip=2")
    assert spec.kind == "csi" and spec.is_live and spec.api == "gstreamer" and spec.index == 1
    assert spec.uri.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM)")
    assert "width=(int)1920, height=(int)1080" in spec.uri
    assert "framerate=(fraction)29970/1000" in spec.uri
    assert "nvvidconv flip-method=2" in spec.uri
    assert spec.uri.rstrip().endswith("appsink drop=true max-buffers=1 sync=false")
    assert spec.label == "csi://1?width=1920&height=1080&fps=29.97&flip=2"


def test_csi_defaults_and_capture_settings():
    assert SourceSpec.parse("csi://0").uri == csi_pipeline(0, 1280, 720, 30, 0)
    # width/height/fps from the settings fill what the URI leaves out
    assert "width=(int)640, height=(int)480" in SourceSpec.parse("csi://0", width=640, height=480).uri
    assert "framerate=(fraction)60/1" in SourceSpec.parse("csi://0", fps=60).uri


def test_live_override():
    assert SourceSpec.parse("clip.mp4", live=True).is_live
    assert not SourceSpec.parse("rtsp://x/y", live=False).is_live
    assert SourceSpec.parse("0", live=None).is_live


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://host/x.mp4", "unknown scheme 'ftp'"),
        ("csi://front", "sensor number"),
        ("csi://0?exposure=3", "unknown csi option"),
        ("csi://0?width=wide", "must be numbers"),
        ("v4l2://", "without a device"),
        ("file://", "without a path"),
    ],
)
def test_parse_errors_name_the_source(text, needle):
    with pytest.raises(ValueError, match=needle):
        SourceSpec.parse(text)


def test_csi_pipeline_validates():
    with pytest.raises(ValueError):
        csi_pipeline(0, 0, 720, 30)
    with pytest.raises(ValueError):
        csi_pipeline(0, 1280, 720, 30, flip=9)


def test_backoff_is_exponential_and_capped():
    delays = list(itertools.islice(backoff_delays(0.5, 8.0), 8))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


# ---------------------------------------------------------------------------------------------
# opening and reading real files
# ---------------------------------------------------------------------------------------------
def test_missing_file_and_non_video_are_clear(tmp_path: Path):
    with pytest.raises(SourceError, match="not found: .*nope.mp4"):
        open_capture(SourceSpec.parse(str(tmp_path / "nope.mp4")))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match="junk.mp4"):
        open_capture(SourceSpec.parse(str(junk)))
    with pytest.raises(SourceError, match="is a folder"):
        open_capture(SourceSpec.parse(str(tmp_path)))


def test_gstreamer_source_without_gstreamer_build_is_explained():
    import cv2

    if "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer: the missing-GStreamer message cannot occur")
    with pytest.raises(SourceError, match="without GStreamer"):
        open_capture(SourceSpec.parse("csi://0"))


def test_reader_mp4_indices_and_timestamps(one_face_video: Path):
    with FrameReader(SourceSpec.parse(str(one_face_video))) as reader:
        frames = [reader.read() for _ in range(30)]
        assert reader.fps == pytest.approx(23.976, abs=0.01)
        assert reader.frame_count == 472
        assert reader.size == (640, 360)
    assert [f.index for f in frames] == list(range(30))
    ts = np.array([f.timestamp_s for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert np.allclose(np.diff(ts), 1 / 23.976, atol=2e-3)
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8


def test_reader_gif_reads_every_frame(two_face_gif: Path):
    with FrameReader(SourceSpec.parse(str(two_face_gif))) as reader:
        frames = []
        while (f := reader.read()) is not None:
            frames.append(f)
    assert len(frames) == 56
    assert reader.counters.read_errors == 0 and not reader.counters.damaged
    assert np.all(np.diff([f.timestamp_s for f in frames]) > 0)


def test_reader_truncated_mp4_reads_the_decodable_part(one_face_video: Path, tmp_path: Path):
    data = one_face_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with FrameReader(SourceSpec.parse(str(cut)), max_read_failures=3) as reader:
        n = 0
        while reader.read() is not None:
            n += 1
    assert 100 < n < 472, n
    assert reader.counters.frames == n
    assert reader.counters.damaged
    assert reader.counters.read_errors >= 1


def test_reader_goes_on_past_a_damaged_stretch(one_face_video: Path, tmp_path: Path):
    """64 KB of random bytes in the middle of the file: the frames after the damage are read too
    (the first reader stopped at the damage: 226 of 472 frames)."""
    data = bytearray(one_face_video.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 65536] = np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with FrameReader(SourceSpec.parse(str(damaged))) as reader:
        frames = []
        while (f := reader.read()) is not None:
            frames.append(f.timestamp_s)
    assert 300 < len(frames) < 472, len(frames)
    assert reader.counters.damaged and reader.counters.read_errors >= 1
    assert frames[-1] > 0.95 * 471 / reader.fps  # the last frames of the file were reached
    assert np.all(np.diff(frames) > 0)


def test_reader_loop_keeps_time_running(two_face_gif: Path):
    with FrameReader(SourceSpec.parse(str(two_face_gif)), loop=True) as reader:
        frames = [reader.read() for _ in range(130)]
    assert all(f is not None for f in frames)
    assert reader.counters.loops == 2
    ts = np.array([f.timestamp_s for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert [f.index for f in frames] == list(range(130))
    # the second pass shows the same pictures as the first
    assert np.array_equal(frames[0].image, frames[56].image)

"""Pure parts of the pipeline: smoothing, statistics, settings/profiles, events, the classify stage."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edgefer.config import ConfigError
from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.settings import PipelineSettings, load_pipeline_settings
from edgefer.pipeline.smoothing import ProbabilitySmoother
from edgefer.pipeline.stages import classify_frame, keep_largest
from edgefer.pipeline.stats import LatencyWindow, StatsCollector
from edgefer.types import Box, Face, Frame, TrackedFrame

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# smoothing
# ---------------------------------------------------------------------------------------------
def onehot(k: int) -> np.ndarray:
    p = np.zeros(7, np.float32)
    p[k] = 1.0
    return p


def test_ema_follows_the_formula_at_the_reference_rate():
    s = ProbabilitySmoother(strength=0.6, reference_fps=30)
    assert np.array_equal(s.update(1, onehot(0), 0.0), onehot(0))  # first observation as is
    out = s.update(1, onehot(1), 1 / 30)
    assert out == pytest.approx(0.6 * onehot(0) + 0.4 * onehot(1), abs=1e-6)
    assert out.sum() == pytest.approx(1.0)


def test_ema_weight_adapts_to_the_time_step():
    s = ProbabilitySmoother(strength=0.6, reference_fps=30)
    assert s.weight(1 / 30) == pytest.approx(0.6)
    assert s.weight(2 / 30) == pytest.approx(0.36)  # a dropped frame: as if two steps passed
    assert s.weight(0.0) == pytest.approx(0.6)  # same timestamp: one step
    assert s.weight(10.0) < 1e-6  # a long gap starts fresh
    # a 12.5 fps source converges as fast in seconds as a 30 fps one
    a = ProbabilitySmoother(0.8)
    b = ProbabilitySmoother(0.8)
    a.update(1, onehot(0), 0.0)
    b.update(1, onehot(0), 0.0)
    for i in range(1, 31):
        pa = a.update(1, onehot(2), i / 30)
    for i in range(1, 13):
        pb = b.update(1, onehot(2), i / 12)  # ~12 frames span the same second
    assert pa[2] == pytest.approx(pb[2], abs=0.02)


def test_no_flicker_with_smoothing():
    """A face that alternates between two labels every frame keeps one label when smoothed."""
    rng = np.random.default_rng(0)
    s = ProbabilitySmoother(strength=0.8)
    labels_raw, labels_smooth = [], []
    for i in range(60):
        p = np.full(7, 0.02, np.float32)
        p[1] = 0.55 if i % 3 else 0.2  # mostly happiness
        p[2] = 0.2 if i % 3 else 0.55  # a surprise spike every third frame
        p += rng.random(7).astype(np.float32) * 0.01
        p /= p.sum()
        labels_raw.append(int(np.argmax(p)))
        labels_smooth.append(int(np.argmax(s.update(4, p, i / 30))))
    flips = lambda labels: sum(a != b for a, b in zip(labels, labels[1:]))  # noqa: E731
    assert flips(labels_raw) == 39  # the raw label flickers twice every three frames
    assert set(labels_smooth[15:]) == {1}  # smoothed: one stable label once settled
    assert flips(labels_smooth) <= 3


def test_zero_strength_is_raw_and_strength_is_validated():
    s = ProbabilitySmoother(0.0)
    s.update(1, onehot(0), 0.0)
    assert np.array_equal(s.update(1, onehot(3), 0.03), onehot(3))
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match="smoothing strength"):
            ProbabilitySmoother(bad)
    s.strength = 0.5
    assert s.strength == 0.5


def test_state_per_track_and_dropped_when_tracks_end():
    s = ProbabilitySmoother(0.9, forget_after_s=1.0)
    probs = np.stack([onehot(0), onehot(5)])
    out = s.update_frame([1, 2], probs, 0.0)
    assert np.array_equal(out, probs) and s.tracks() == (1, 2)
    out = s.update_frame([1, 2], np.stack([onehot(5), onehot(0)]), 1 / 30)
    assert out[0, 0] > 0.85 and out[1, 5] > 0.85  # each track smooths its own history
    s.update_frame([2], onehot(0)[None], 0.5)
    assert s.tracks() == (1, 2)  # a short absence keeps the state
    s.update_frame([2], onehot(0)[None], 1.2)
    assert s.tracks() == (2,)  # track 1 ended
    s.forget(5.0)
    assert len(s) == 0
    with pytest.raises(ValueError, match="expected"):
        s.update_frame([1, 2], onehot(0)[None], 6.0)


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------
def test_latency_window_percentiles_and_bound():
    w = LatencyWindow(size=100)
    assert math.isnan(w.snapshot("x").p50_ms)
    for v in range(1, 1001):
        w.add(float(v))
    st = w.snapshot("x")
    assert st.count == 1000 and w._buf.size == 100  # memory bounded by the window
    assert st.p50_ms == pytest.approx(950.5) and st.p95_ms == pytest.approx(995.05)
    assert st.mean_ms == pytest.approx(500.5)  # over the whole run
    with pytest.raises(ValueError):
        LatencyWindow(0)


def test_stats_collector_snapshot():
    c = StatsCollector(source="cam", model="m.onnx", backend="onnxruntime-cpu")
    c.started()
    c.count("frames_read", 5)
    c.count("frames_dropped", 2)
    for _ in range(3):
        c.stage_time("track", 0.010)
        c.frame_out(faces=2, latency_s=0.05)
    st = c.snapshot(outputs=("a.mp4",))
    assert (st.frames_read, st.frames_dropped, st.frames_processed, st.faces) == (5, 2, 3, 6)
    assert st.stage("track").p50_ms == pytest.approx(10.0)
    assert st.end_to_end is not None and st.end_to_end.p95_ms == pytest.approx(50.0)
    assert st.outputs == ("a.mp4",) and st.state == "running"
    assert st.fps > 0 and c.recent_fps() > 0
    with pytest.raises(KeyError, match="stages are"):
        st.stage("nope")
    text = st.format()
    assert "cam" in text and "track" in text and "2 dropped" in text


# ---------------------------------------------------------------------------------------------
# settings and shipped profiles
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["desktop", "jetson_orin", "jetson_nano"])
def test_shipped_profiles_load(name):
    s = load_pipeline_settings(REPO / "configs" / "pipeline" / f"{name}.yaml")
    assert isinstance(s, PipelineSettings)
    if name.startswith("jetson"):
        assert s.source.startswith("csi://0") and s.record.encoder == "gstreamer"
        assert s.record.gst_encoder == "nvv4l2h264enc" and s.record.segment_seconds
    if name == "jetson_orin":
        assert s.backend == "tensorrt"


def test_settings_errors_name_the_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("heatmap:\n  mode: gradcam\nmax_face: 3\n")
    with pytest.raises(ConfigError) as err:
        load_pipeline_settings(bad)
    msg = str(err.value)
    assert "bad.yaml" in msg and "heatmap.mode" in msg and "'max_face'" in msg
    with pytest.raises(ConfigError, match="smoothing"):
        load_pipeline_settings(None, ["smoothing=1.0"])
    with pytest.raises(ConfigError, match="codec"):
        load_pipeline_settings(None, ["record.codec=h264x"])
    with pytest.raises(ConfigError, match="source"):
        load_pipeline_settings(None, ["source=''"])
    s = load_pipeline_settings(None, ["source=0", "record.container=.MKV"])
    assert s.source == "0" and s.record.container == "mkv"


def test_event_kinds():
    e = PipelineEvent("warning", "capture", "lost camera 0; reconnecting")
    assert str(e) == "[warning] capture: lost camera 0; reconnecting"
    with pytest.raises(ValueError, match="event kind"):
        PipelineEvent("oops", "x", "y")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the classify stage with the real aligner, tracker and tiny ONNX model
# ---------------------------------------------------------------------------------------------
def _face(tid: int, w: float) -> Face:
    return Face(track_id=tid, box=Box(0, 0, w, w), landmarks=np.zeros((478, 2), np.float32))


def test_keep_largest():
    faces = [_face(1, 10), _face(2, 50), _face(3, 30)]
    assert [f.track_id for f in keep_largest(faces, 2)] == [2, 3]
    assert keep_largest(faces, 5) is faces


def test_classify_frame_batches_all_faces(two_face_gif, tiny_onnx_model, face_model):
    import cv2

    from edgefer.align import Aligner
    from edgefer.runtime import load_classifier
    from edgefer.tracking import FaceTracker

    cap = cv2.VideoCapture(str(two_face_gif))
    ok, img = cap.read()
    assert ok
    with FaceTracker(face_model=face_model, max_faces=4, blendshapes=False) as tracker:
        faces = tracker.process(img, 0)
    assert len(faces) == 2
    clf = load_classifier(tiny_onnx_model, "onnxruntime-cpu")
    calls = []
    real_predict = clf.predict

    def counting_predict(crops):
        calls.append(crops.shape)
        return real_predict(crops)

    clf.predict = counting_predict  # count calls on the real classifier
    aligner = Aligner(clf.contract.framing, clf.contract.input_size)
    smoother = ProbabilitySmoother(0.5)
    result = classify_frame(TrackedFrame(Frame(0, 0.0, img), faces), aligner, clf, smoother)
    assert calls == [(2, *clf.contract.input_size, 3)]  # one batched call for both faces
    assert [p.face.track_id for p in result.predictions] == [f.track_id for f in faces]
    for p in result.predictions:
        assert p.probs.shape == (7,) and p.probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.attention is not None and p.attention.ndim == 2
        assert p.cam is not None and p.crop_to_frame.shape == (2, 3)
        # the crop maps back onto the face: the crop centre lands inside the face box
        hc, wc = clf.contract.input_size
        cx, cy = p.crop_to_frame @ np.array([wc / 2, hc / 2, 1.0])
        b = p.face.box
        assert b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h
    assert smoother.tracks() == tuple(f.track_id for f in faces)
    empty = classify_frame(TrackedFrame(Frame(1, 0.1, img), []), aligner, clf, smoother)
    assert empty.predictions == [] and len(calls) == 1  # no faces: no model call

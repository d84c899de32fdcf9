"""End to end on the real test videos: MediaPipe, the tiny ONNX model, real files written and read back."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.classes import EXPRESSIONS
from edgefer.pipeline.sinks import row_columns
from tests.support.pipeline import count_frames, read_csv, read_jsonl, run_to_end, settings


@pytest.mark.slow
def test_one_face_video_every_frame(one_face_video, tiny_onnx_model, face_model, tmp_path):
    rec, rows = tmp_path / "out" / "annotated.mp4", tmp_path / "out" / "faces.csv"
    run = run_to_end(settings(one_face_video, tiny_onnx_model, face_model, record={"path": rec}, csv=rows))
    st = run.stats
    assert st.frames_read == st.frames_processed == 472 == run.results
    assert st.frames_dropped == 0 and st.read_errors == 0
    assert not run.messages("error"), run.messages("error")
    # the annotated video plays back with every frame, at the source's frame rate
    import cv2

    assert count_frames(rec) == 472
    cap = cv2.VideoCapture(str(rec))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(23.976, abs=0.05)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)
    cap.release()
    # one row per face per frame; one face in every frame; one stable id
    table = read_csv(rows)
    assert list(table[0].keys()) == row_columns()
    assert len(table) == sum(run.faces_per_frame) == st.faces
    assert sum(run.faces_per_frame) >= 0.99 * 472
    assert len({r["face_id"] for r in table}) == 1
    frames = [int(r["frame"]) for r in table]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    ts = np.array([float(r["timestamp_s"]) for r in table])
    assert np.all(np.diff(ts) > 0) and ts[-1] == pytest.approx(471 / 23.976, abs=0.05)
    probs = np.array([[float(r[f"p_{c}"]) for c in EXPRESSIONS] for r in table])
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert all(r["expression"] == EXPRESSIONS[int(np.argmax(p))] for r, p in zip(table, probs))
    assert np.allclose([float(r["confidence"]) for r in table], probs.max(axis=1), atol=1e-6)
    boxes = np.array([[float(r[k]) for k in ("x", "y", "w", "h")] for r in table])
    assert (boxes[:, 2] > 80).all() and (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 641).all()
    # stats for the UI / the CLI
    for name in ("capture", "track", "classify", "render", "sink"):
        s = st.stage(name)
        assert s.count == 472 and 0 < s.p50_ms <= s.p95_ms
    assert st.mean_fps > 0 and st.state == "finished"
    assert str(rec) in st.outputs and str(rows) in st.outputs
    assert run.events[-1].kind == "finished"


def test_two_face_gif_two_stable_ids(two_face_gif, tiny_onnx_model, face_model, tmp_path):
    rows = tmp_path / "faces.jsonl"
    run = run_to_end(
        settings(two_face_gif, tiny_onnx_model, face_model, jsonl=rows, blendshapes=True, record={"path": tmp_path / "g.mp4"})
    )
    assert run.stats.frames_processed == 56
    assert count_frames(tmp_path / "g.mp4") == 56
    table = read_jsonl(rows)
    from edgefer.tracking import BLENDSHAPE_NAMES

    assert list(table[0].keys()) == row_columns(BLENDSHAPE_NAMES)
    assert all(0.0 <= r["jawOpen"] <= 1.0 for r in table)
    ids = sorted({r["face_id"] for r in table})
    assert len(ids) == 2
    by_frame: dict[int, list[dict]] = {}
    for r in table:
        by_frame.setdefault(r["frame"], []).append(r)
    two = [f for f, rs in by_frame.items() if len(rs) == 2]
    assert len(two) >= 54
    # the ids never swap: the same id is always the left person
    left_ids = {min(by_frame[f], key=lambda r: r["x"])["face_id"] for f in two}
    assert len(left_ids) == 1


def test_mov_without_faces_then_a_face(noface_mov, tiny_onnx_model, face_model, tmp_path):
    rec, rows = tmp_path / "m.mp4", tmp_path / "m.csv"
    run = run_to_end(settings(noface_mov, tiny_onnx_model, face_model, record={"path": rec}, csv=rows, max_frames=130))
    assert run.stats.frames_processed == 130
    assert count_frames(rec) == 130  # faceless frames pass through unharmed
    faces = np.array(run.faces_per_frame)
    assert faces[:90].sum() == 0 and faces[91:96].sum() == 0  # the cartoon opening (one false positive at 90)
    assert (faces[100:] == 1).all()
    table = read_csv(rows)
    assert len(table) == faces.sum()
    assert min(int(r["frame"]) for r in table) >= 90
    assert not run.messages("error")

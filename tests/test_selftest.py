"""`edgefer selftest`: every part that runs without a GPU, on the shipped model and the real videos.

The GPU half (TensorRT engines, ONNX Runtime's CUDA/TensorRT providers) cannot run here; what is
tested of it is what a machine without one does: `--gpu` exits 2 naming what is missing, and the
TensorRT candidate fails at the builder's TensorRT import and is recorded, not crashed on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgefer.paths import DEFAULT_MODEL
from edgefer.runtime.onnx_backend import OnnxRuntimeClassifier, read_onnx_contract
from edgefer.selftest.checks import (
    Candidate,
    CropSet,
    Deadline,
    PipelineRun,
    SelftestReport,
    batch_of,
    check_candidates,
    collect_crops,
    compare,
    find_videos,
    format_table,
    qdq_tensorrt_issues,
    row_cosines,
    run_pipeline,
    time_classifier,
)
from edgefer.selftest.gpu import missing_for_gpu, tensorrt_candidate

INT8_MODEL = DEFAULT_MODEL.with_name("edgefer_fer2013.int8.onnx")
REF = "onnxruntime-cpu fp32"


@pytest.fixture(scope="module")
def crops(one_face_video: Path) -> CropSet:
    """16 aligned crops spread over the one-face clip (MediaPipe runs once for the module)."""
    return collect_crops([one_face_video], read_onnx_contract(DEFAULT_MODEL), 16)


@pytest.fixture(scope="module")
def fp32() -> OnnxRuntimeClassifier:
    return OnnxRuntimeClassifier(DEFAULT_MODEL, "onnxruntime-cpu", threads=1)


def test_crops_come_from_the_whole_clip_in_the_models_framing(crops: CropSet, one_face_video: Path) -> None:
    contract = read_onnx_contract(DEFAULT_MODEL)
    h, w = contract.input_size
    assert crops.crops.shape == (16, h, w, 3) and crops.crops.dtype == np.uint8
    assert crops.per_video == {one_face_video.name: 16}
    frames = [int(o.split("#")[1]) for o in crops.origins]
    assert frames[0] == 0 and frames[-1] > 400  # 472 frames: the share spans the clip, not its first second
    assert len(set(frames)) == 16
    assert crops.crops.std() > 20  # faces, not a replicated border


def test_a_clip_with_few_faces_leaves_its_share_to_the_next(noface_mov: Path, one_face_video: Path) -> None:
    """noface_face.mov shows a face in its second half only: 8 spaced frames find fewer than 8 faces,
    and the one-face clip makes up the difference."""
    got = collect_crops([noface_mov, one_face_video], read_onnx_contract(DEFAULT_MODEL), 16)
    assert len(got) == 16
    assert 0 < got.per_video[noface_mov.name] < 8
    assert got.per_video[one_face_video.name] == 16 - got.per_video[noface_mov.name]


def test_find_videos_takes_folders_and_names_what_is_missing(videos_dir: Path, tmp_path: Path) -> None:
    found = find_videos([videos_dir])
    assert {p.name for p in found} == {"WolfgangLanger_Pexels.mp4", "head-pose-face-detection-female-and-male.gif",
                                       "noface_face.mov"}
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        find_videos([tmp_path / "nope.mp4"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        find_videos([tmp_path])


def test_compare_on_real_outputs(crops: CropSet, fp32: OnnxRuntimeClassifier) -> None:
    ref = fp32.predict(crops.crops)
    same = compare("again", REF, ref, fp32.predict(crops.crops), "fp32")
    assert (same.top1, same.max_prob_diff, same.passed) == (1.0, 0.0, True)
    assert same.att_cos_min == pytest.approx(1.0)

    # One face's attention inverted and another face's top class moved: exactly what is measured.
    probs, att = ref.probs.copy(), ref.attention.copy()
    att[0] *= -1
    probs[1] = np.roll(probs[1], 1)
    bent = compare("bent", REF, ref, replace(ref, probs=probs, attention=att), "fp16")
    assert bent.top1 == pytest.approx(15 / 16)
    assert bent.att_cos_min == pytest.approx(-1.0)
    assert bent.max_prob_diff == pytest.approx(float(np.abs(probs[1] - ref.probs[1]).max()))
    assert bent.passed is False


def test_int8_file_against_fp32_is_reported_not_judged(crops: CropSet, fp32: OnnxRuntimeClassifier) -> None:
    with OnnxRuntimeClassifier(INT8_MODEL, "onnxruntime-cpu", threads=1) as q8:
        a = compare("int8", REF, fp32.predict(crops.crops), q8.predict(crops.crops), "info")
    assert a.passed is None
    assert 0 < a.max_prob_diff < 1 and 0.5 <= a.top1 <= 1.0 and a.att_cos_mean > 0.9


def test_row_cosines_zero_maps() -> None:
    z, one = np.zeros((1, 2, 2)), np.ones((1, 2, 2))
    assert row_cosines(z, z).tolist() == [1.0]
    assert row_cosines(z, one).tolist() == [0.0]
    with pytest.raises(ValueError, match="shape"):
        row_cosines(one, np.ones((1, 3, 3)))


def test_time_classifier_and_batches(crops: CropSet, fp32: OnnxRuntimeClassifier) -> None:
    assert batch_of(crops.crops[:3], 8).shape[0] == 8  # fewer crops than the batch: repeated
    for b in (1, 8):
        t = time_classifier(fp32, crops.crops, b, iters=3, budget_s=5)
        assert t.batch == b and t.calls == 3 and t.model == DEFAULT_MODEL.name
        assert t.ms_per_face == pytest.approx(t.ms_per_call / b) and t.ms_per_call > 0 and t.first_call_s > 0


def test_run_pipeline_on_the_real_clip(one_face_video: Path, tmp_path: Path) -> None:
    run = run_pipeline(one_face_video, DEFAULT_MODEL, "onnxruntime-cpu", tmp_path, max_frames=12)
    assert run.error == ""
    assert (run.frames, run.faces, run.backend) == (12, 12, "onnxruntime-cpu")
    assert run.mean_fps > 0 and run.classify_p50_ms > 0
    assert (tmp_path / "WolfgangLanger_Pexels.onnxruntime-cpu.csv").is_file()
    assert (tmp_path / "WolfgangLanger_Pexels.onnxruntime-cpu.mp4").stat().st_size > 0


def test_run_pipeline_without_tensorrt_is_a_row_with_the_reason(one_face_video: Path, tmp_path: Path) -> None:
    run = run_pipeline(one_face_video, DEFAULT_MODEL, "tensorrt", tmp_path, max_frames=5)
    assert run.frames == 0 and "TensorRT" in run.error and str(one_face_video) in run.error


def test_shipped_int8_file_is_not_tensorrt_qdq() -> None:
    """ONNX Runtime's CPU pairing (U8 activations, asymmetric) is not what TensorRT parses."""
    issues = qdq_tensorrt_issues(INT8_MODEL)
    assert issues is not None and len(issues) == 2
    assert "uint8" in issues[0] and "non-zero" in issues[1]
    assert qdq_tensorrt_issues(DEFAULT_MODEL) == []


def test_tensorrt_candidate_without_tensorrt_is_recorded(crops: CropSet, fp32: OnnxRuntimeClassifier, tmp_path: Path) -> None:
    if not missing_for_gpu():
        pytest.skip("this machine has TensorRT and a GPU: `edgefer selftest --gpu` runs the real build")
    report = SelftestReport("gpu", 600)
    cand = tensorrt_candidate(report, "tensorrt fp16", DEFAULT_MODEL, "fp16", tmp_path / "m.engine", 8, ((REF, "fp16"),))
    refs = {REF: fp32.predict(crops.crops)}
    check_candidates(report, [cand], crops.crops, refs, Deadline(60), batches=(1,), iters=2, min_left_s=0)
    assert report.builds[0].error and "TensorRT" in report.builds[0].error
    assert report.errors and report.errors[0].startswith("tensorrt fp16:")
    assert report.status == "fail" and not report.latency


def test_a_backend_that_fails_while_running_is_a_finding(crops: CropSet) -> None:
    """A backend that loads but fails at its first run (e.g. an ONNX Runtime wheel built for another
    GPU) is recorded for its row; the self-test goes on. Here: crops the model refuses."""
    report = SelftestReport("cpu", 60)
    cand = Candidate("onnxruntime-cpu fp32", lambda: OnnxRuntimeClassifier(DEFAULT_MODEL, "onnxruntime-cpu"), ())
    sources = check_candidates(report, [cand], crops.crops[:, :40, :40], {}, Deadline(60), min_left_s=0)
    assert sources == {} and not report.latency
    assert len(report.errors) == 1 and report.errors[0].startswith("onnxruntime-cpu fp32: ")
    assert str(DEFAULT_MODEL) in report.errors[0] and report.status == "fail"


def test_time_limit_skips_stages(crops: CropSet, fp32: OnnxRuntimeClassifier) -> None:
    report = SelftestReport("cpu", 30)
    cand = Candidate("onnxruntime-cpu fp32", lambda: OnnxRuntimeClassifier(DEFAULT_MODEL, "onnxruntime-cpu"), ())
    check_candidates(report, [cand], crops.crops, {}, Deadline(0), min_left_s=1)
    assert [s.what for s in report.skipped] == ["onnxruntime-cpu fp32"] and "time limit" in report.skipped[0].why
    assert report.status == "pass"  # skipped is listed, not failed


def test_report_json_has_no_nan_and_table_shows_dashes() -> None:
    report = SelftestReport("gpu", 600)
    report.pipeline.append(PipelineRun("v.mp4", "tensorrt", "m.engine", 0, 0, 0.0, float("nan"), float("nan"),
                                       float("nan"), [], "v.mp4: no engine"))
    data = json.loads(report.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON report"))
    assert data["status"] == "fail" and data["pipeline"][0]["track_p50_ms"] is None
    assert set(data["tolerances"]) == {"fp32", "fp16", "int8", "info"}
    table = format_table(report)
    assert "FAIL" in table and "v.mp4: no engine" in table


def _selftest(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgefer.cli", "selftest", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_cpu_selftest_end_to_end(one_face_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "R.json"
    res = _selftest("--videos", str(one_face_video), "--crops", "8", "--iters", "2", "--pipeline-frames", "8",
                    "--report", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    for word in ("edgefer selftest (cpu)", "PASS", "agreement", "latency ms/face", "pipeline", "batch 8"):
        assert word in res.stdout
    data = json.loads(out.read_text())
    assert data["status"] == "pass" and data["mode"] == "cpu" and data["crops"]["count"] == 8
    assert {(t["backend"], t["batch"]) for t in data["latency"]} == {
        ("onnxruntime-cpu fp32", 1), ("onnxruntime-cpu fp32", 8), ("onnxruntime-cpu int8", 1), ("onnxruntime-cpu int8", 8)}
    assert [(a["name"], a["tolerance"]) for a in data["agreement"]] == [("onnxruntime-cpu int8", "info")]
    assert data["pipeline"][0]["frames"] == 8 and data["pipeline"][0]["error"] == ""


def test_cli_gpu_without_a_gpu_exits_2_naming_what_is_missing(tmp_path: Path) -> None:
    missing = missing_for_gpu()
    if not missing:
        pytest.skip("this machine has TensorRT and a GPU: the GPU self-test runs instead")
    out = tmp_path / "R.json"
    res = _selftest("--gpu", "--report", str(out), timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "cannot run the GPU self-test" in res.stderr and "TensorRT" in res.stderr
    assert all(m in res.stderr for m in missing)
    data = json.loads(out.read_text())
    assert data["status"] == "unavailable" and data["missing"] == missing


def test_cli_rejects_a_missing_video(tmp_path: Path) -> None:
    res = _selftest("--videos", str(tmp_path / "none.mp4"), timeout=120)
    assert res.returncode == 2 and "none.mp4" in res.stderr

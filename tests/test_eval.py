"""`edgefer eval` on real FER2013 test images: report keys and counts, AU-aligned vs baseline,
figures, CAM methods, the ONNX path agreeing with the torch checkpoint, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.classes import EXPRESSIONS
from tests.support.training import TEST_LIMIT, landmark_cache, session_root, train_run

#: Every test here evaluates tiny trained models (about 90 s to train them on 2 busy cores) or
#: measures a ceiling over thousands of maps.
pytestmark = pytest.mark.slow

KEYS = ("accuracy", "macro_f1", "per_class_recall", "confusion", "att_cos", "cam_cos", "ekman_iou", "n", "n_with_map")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return session_root(tmp_path_factory)


@pytest.fixture(scope="module")
def runs(fer_dir, face_model, root):
    au = train_run("au", fer_dir, face_model, root, loss={"au_lambda": 10.0}, optim={"batch_size": 16})
    base = train_run("baseline", fer_dir, face_model, root, loss={"au_lambda": 0.0}, optim={"batch_size": 16})
    return au, base


@pytest.fixture(scope="module")
def compared(runs, fer_dir, face_model, root, tmp_path_factory):
    from edgefer.cli import main

    au, base = runs
    out = tmp_path_factory.mktemp("eval")
    cache = landmark_cache(fer_dir, face_model, root)
    argv = ["eval", "--checkpoint", str(au.run_dir / "last.pt"), "--compare", str(base.run_dir / "last.pt"),
            "--data", str(fer_dir), "--split", "test", "--limit", str(TEST_LIMIT), "--landmarks", str(cache),
            "--report", str(out / "report.json"), "--figures", str(out / "fig")]
    assert main(argv) == 0
    return json.loads((out / "report.json").read_text()), out


def test_report_has_every_figure_with_counts(compared):
    report, _ = compared
    for key in KEYS:
        assert key in report, key
    assert report["n"] == pytest.approx(TEST_LIMIT, abs=3)
    assert 0 < report["n_with_map"] < report["n"]  # neutral and no-face images have no map
    assert report["split"] == "test" and report["iou_threshold"] == 0.5
    assert report["classes"] == list(EXPRESSIONS)
    assert np.array(report["confusion"]).sum() == report["n"]
    assert sum(report["n_with_map_per_class"].values()) == report["n_with_map"]
    assert "neutral" not in report["att_cos_per_class"]
    for key in ("att_cos", "cam_cos", "ekman_iou", "att_cos_ceiling"):
        assert 0.0 <= report[key] <= 1.0, key
    # A perfect map of the model's attention size beats what these small test models learn.
    assert report["att_cos_ceiling"] > report["att_cos"]
    counts = report["landmark_counts"]
    assert counts["found"] + counts["no_face"] == report["n"] and counts["missing"] == 0


def test_au_alignment_beats_baseline_on_att_cos(compared):
    report, _ = compared
    base = report["compare"]
    assert base["n"] == report["n"] and not base["au_aligned"] and report["au_aligned"]
    assert report["delta"]["att_cos"] == pytest.approx(report["att_cos"] - base["att_cos"])
    assert report["att_cos"] > base["att_cos"]


def test_figures_are_written(compared):
    report, out = compared
    files = [Path(f) for f in report["figures"]]
    assert {f.name for f in files} == {"confusion_0.png", "confusion_1.png", "class_maps.png"}
    for f in files:
        img = cv2.imread(str(f))
        assert img is not None and img.shape[0] > 200 and img.std() > 5


def test_cam_methods_differ_but_stay_in_range(runs, fer_dir, face_model, root):
    import torch

    from train.cams import class_maps
    from train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(runs[0].run_dir / "last.pt")
    x = torch.rand(4, 1, 48, 48)
    y = torch.tensor([1, 2, 3, 4])
    maps = {m: class_maps(ckpt.model, x, y, m)[2] for m in ("cam", "gradcam", "gradcam++", "layercam")}
    for name, m in maps.items():
        assert m.shape == (4, 6, 6), name
        assert torch.isfinite(m).all(), name
    for name in ("gradcam", "gradcam++", "layercam"):
        assert (maps[name] >= 0).all(), name
    # GradCAM with a GAP + linear head is ReLU(CAM) up to a positive scale (see train/cams.py).
    relu_cam = torch.relu(maps["cam"])
    scale = (maps["gradcam"].flatten(1).sum(1) / relu_cam.flatten(1).sum(1).clamp_min(1e-12)).view(-1, 1, 1)
    torch.testing.assert_close(maps["gradcam"], relu_cam * scale, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="unknown CAM method"):
        class_maps(ckpt.model, x, y, "scorecam")


def test_onnx_model_gives_the_same_metrics_as_the_checkpoint(runs, fer_dir, face_model, root, tmp_path):
    from export.onnx_export import export_onnx
    from train.checkpoint import load_checkpoint
    from train.evaluate import RuntimeScorer, TorchScorer, evaluate, load_eval_split

    ckpt_path = runs[0].run_dir / "last.pt"
    ckpt = load_checkpoint(ckpt_path)
    onnx_path = export_onnx(ckpt.model, ckpt.contract, tmp_path / "m.onnx", cam=True)
    cache = landmark_cache(fer_dir, face_model, root)
    split = load_eval_split(fer_dir, "test", 48, "gray", cache, limit=TEST_LIMIT, progress=False)
    torch_res = evaluate(TorchScorer(ckpt_path), split, progress=False).report
    onnx_res = evaluate(RuntimeScorer(onnx_path, backend="auto"), split, progress=False).report
    assert onnx_res["n"] == torch_res["n"] and onnx_res["n_with_map"] == torch_res["n_with_map"]
    assert onnx_res["accuracy"] == pytest.approx(torch_res["accuracy"], abs=1.5 / torch_res["n"])
    assert onnx_res["att_cos"] == pytest.approx(torch_res["att_cos"], abs=2e-3)
    assert onnx_res["cam_cos"] == pytest.approx(torch_res["cam_cos"], abs=2e-3)
    assert onnx_res["ekman_iou"] == pytest.approx(torch_res["ekman_iou"], abs=2e-2)


def test_eval_errors_are_clear(tmp_path, capsys, fer_dir, runs):
    from edgefer.cli import main

    assert main(["eval", "--checkpoint", str(tmp_path / "nope.pt"), "--report", str(tmp_path / "r.json")]) == 2
    assert "nope.pt" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["eval", "--checkpoint", str(junk), "--report", str(tmp_path / "r.json")]) == 2
    assert "junk.pt" in capsys.readouterr().err
    ckpt = str(runs[0].run_dir / "last.pt")
    assert main(["eval", "--checkpoint", ckpt, "--data", str(tmp_path / "missing"),
                 "--report", str(tmp_path / "r.json")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", ckpt, "--data", str(fer_dir), "--split", "validation",
                 "--report", str(tmp_path / "r.json")]) == 2
    assert "validation" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_att_cos_ceiling_grows_with_the_attention_grid():
    """Exact coarse maps score 1; blob-like AU maps lose more on coarser grids (the 7x7 limit)."""
    from train.evaluate import att_cos_ceiling, upsample_attention

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 7), 4)
    coarse = rng.random((len(labels), 7, 7)).astype(np.float32)
    exact = upsample_attention(coarse, 56)
    assert att_cos_ceiling(exact, labels, (7, 7), 56) == pytest.approx(1.0, abs=1e-5)
    yy, xx = np.mgrid[0:56, 0:56]
    centres = rng.uniform(10, 46, (len(labels), 2))
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / (2 * 3.0 ** 2))
    ceilings = [att_cos_ceiling(blobs, labels, (k, k), 56) for k in (7, 14, 28)]
    assert ceilings[0] < ceilings[1] < ceilings[2] <= 1.0 + 1e-9
    assert ceilings[0] < 0.95 and ceilings[2] > 0.98

"""`edgefer explain`, `edgefer study` and `edgefer eval --faithfulness` on real FER2013 test images with
the shipped model (and the tiny trained checkpoint of tests/support/training.py for the gradient methods):
LIME is seeded, attended pixels matter more than random ones, warped maps land on the standard
layout, the clustering and IoU are right on known cases, and the CLIs write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.classes import EXPRESSIONS, NEUTRAL
from tests.support.training import session_root, train_run

SHIPPED = Path(__file__).resolve().parents[1] / "edgefer" / "models" / "edgefer_fer2013.onnx"


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    """A landmark cache for this module's images (computed by MediaPipe on first use)."""
    return tmp_path_factory.mktemp("explain_landmarks")


@pytest.fixture(scope="module")
def shipped():
    from train.explain import ExplainModel

    return ExplainModel.load(SHIPPED, backend="onnxruntime-cpu")


@pytest.fixture(scope="module")
def split(fer_dir, face_model, lm_dir):
    """28 class-stratified FER2013 test images (48 px gray) with their landmarks."""
    from train.evaluate import load_eval_split

    return load_eval_split(fer_dir, "test", 48, "gray", lm_dir, limit=28, progress=False)


@pytest.fixture(scope="module")
def crops(split, shipped):
    from train.evaluate import to_crops

    return to_crops(split.images, shipped.input_size)


@pytest.fixture(scope="module")
def checkpoint(fer_dir, face_model, tmp_path_factory) -> Path:
    run = train_run("au", fer_dir, face_model, session_root(tmp_path_factory), loss={"au_lambda": 10.0},
                    optim={"batch_size": 16})
    return run.run_dir / "last.pt"


# --- LIME -------------------------------------------------------------------------------------------
def test_lime_is_deterministic_for_a_seed_and_changes_with_it(shipped, crops):
    from train.explain import class_maps

    a = class_maps(shipped, crops[:2], "lime", lime_samples=40, seed=3)
    b = class_maps(shipped, crops[:2], "lime", lime_samples=40, seed=3)
    c = class_maps(shipped, crops[:2], "lime", lime_samples=40, seed=4)
    assert a.shape == (2, len(EXPRESSIONS), 56, 56) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0
    # A map depends on the crop and the seed, not on what else is in the call.
    one = class_maps(shipped, crops[1:2], "lime", lime_samples=40, seed=3)
    assert np.array_equal(one[0], a[1])


def test_weighted_ridge_recovers_known_coefficients():
    from train.lime import weighted_ridge

    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, size=(400, 12)).astype(float)
    beta = rng.normal(size=(12, 3))
    y = z @ beta + 0.7
    coef = weighted_ridge(z, y, rng.random(400) + 0.1, alpha=1e-8)
    np.testing.assert_allclose(coef, beta, atol=1e-6)


def test_superpixels_cover_the_crop_with_about_one_region_per_attention_cell(crops):
    from train.lime import superpixels

    labels = superpixels(crops[0], region_size=8)
    assert labels.shape == (56, 56) and labels.min() == 0
    assert 25 <= labels.max() + 1 <= 80
    assert set(np.unique(labels)) == set(range(labels.max() + 1))


# --- faithfulness ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_attended_pixels_matter_more_than_random_ones(shipped, crops):
    """Deleting the most-attended pixels first lowers the predicted class's probability faster than a
    random smooth order, and revealing them first raises it faster (28 real faces, shipped model)."""
    from train.explain import class_maps
    from train.faithfulness import curves, random_maps

    pred = shipped.probs(crops).argmax(1)
    att = class_maps(shipped, crops, "attention")[:, 0]
    rnd = random_maps(len(crops), 56, 7, seed=0)
    c_att = curves(shipped, crops, att, pred, steps=8)
    c_rnd = curves(shipped, crops, rnd, pred, steps=8)
    assert c_att.deletion.shape == (len(crops), 9)
    np.testing.assert_allclose(c_att.deletion[:, 0], c_rnd.deletion[:, 0])  # both start from the intact crop
    np.testing.assert_allclose(c_att.deletion[:, -1], c_rnd.deletion[:, -1], atol=1e-6)  # and end all grey
    assert c_att.deletion_auc.mean() < c_rnd.deletion_auc.mean() - 0.03
    assert c_att.insertion_auc.mean() > c_rnd.insertion_auc.mean() + 0.05


def test_occluding_the_top_occlusion_patch_hurts_more_than_the_bottom_one(shipped, crops):
    from train.explain import occlusion_maps

    pred = shipped.probs(crops[:4]).argmax(1)
    occ = occlusion_maps(shipped, crops[:4], patch=8, stride=8)
    assert occ.shape == (4, 7, 56, 56)
    base = shipped.probs(crops[:4])
    for i in range(4):
        m = occ[i, pred[i]]
        cells = m.reshape(7, 8, 7, 8).mean(axis=(1, 3))
        top, low = np.unravel_index(cells.argmax(), cells.shape), np.unravel_index(cells.argmin(), cells.shape)
        drops = []
        for y, x in (top, low):
            img = crops[i].copy()
            img[8 * y:8 * y + 8, 8 * x:8 * x + 8] = shipped.baseline()
            drops.append(base[i, pred[i]] - shipped.probs(img[None])[0, pred[i]])
        assert drops[0] == pytest.approx(cells.max(), abs=1e-5)
        assert drops[0] > drops[1]


# --- warp, IoU, clustering ------------------------------------------------------------------------
def test_warp_is_the_identity_for_the_standard_face(split):
    from train.face_warp import FaceWarp

    warp = FaceWarp.from_landmarks(split.landmarks, split.stored_size, size=64)
    yy, xx = np.mgrid[0:64, 0:64]
    image = (np.sin(xx / 7.0) + np.cos(yy / 5.0)).astype(np.float32)
    out, cov = warp.warp(image, warp.standard_landmarks())
    inner = (slice(2, 62), slice(2, 62))
    assert cov[inner].min() > 0.99
    np.testing.assert_allclose(out[inner], image[inner], atol=1e-3)


def test_warped_ekman_masks_land_on_the_standard_layout(split):
    """Each face's Ekman mask, drawn with its own landmarks and warped, overlaps the mask drawn on the
    mean layout far better than the same mask merely resized."""
    from edgefer.au import ekman_mask
    from train.face_warp import FaceWarp
    from train.metrics import iou

    warp = FaceWarp.from_landmarks(split.landmarks, split.stored_size, size=64)
    std = warp.standard_landmarks()
    warped, resized = [], []
    for i in np.flatnonzero(split.has_landmarks & (split.labels != NEUTRAL)):
        lab = int(split.labels[i])
        mask = ekman_mask(split.landmarks[i], lab, (48, 48))
        target = ekman_mask(std, lab, (64, 64))
        if mask is None or target is None:
            continue
        w, _ = warp.warp(mask.astype(np.float32), split.landmarks[i])
        r = cv2.resize(mask.astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR)
        warped.append(iou((w >= 0.5)[None], target[None])[0])
        resized.append(iou((r >= 0.5)[None], target[None])[0])
    assert len(warped) >= 15
    assert np.mean(warped) > 0.65
    assert np.mean(warped) > np.mean(resized) + 0.1


def test_ekman_iou_of_a_mask_with_itself_is_one(split):
    from edgefer.au import ekman_mask
    from train.metrics import iou

    i = int(np.flatnonzero(split.has_landmarks & (split.labels != NEUTRAL))[0])
    m = ekman_mask(split.landmarks[i], int(split.labels[i]), (48, 48))
    assert iou(m[None], m[None])[0] == 1.0
    assert iou(m[None], ~m[None])[0] == 0.0


def test_average_linkage_on_a_known_tree():
    from train.study import average_linkage, correlation_matrix, leaf_order

    d = np.array([[0, 1, 5, 6], [1, 0, 5, 6], [5, 5, 0, 2], [6, 6, 2, 0]], float)
    merges = average_linkage(d)
    assert merges[0] == (0, 1, 1.0, 2)
    assert merges[1] == (2, 3, 2.0, 2)
    assert merges[2] == (4, 5, 5.5, 4)  # mean of 5, 6, 5, 6
    assert leaf_order(merges, 4) == [0, 1, 2, 3]
    v = np.random.default_rng(0).normal(size=(3, 50))
    r = correlation_matrix(np.stack([v[0], 2 * v[0] + 1, v[2]]))
    assert r[0, 1] == pytest.approx(1.0) and np.allclose(np.diag(r), 1.0) and np.allclose(r, r.T)


# --- the same model through both fronts ----------------------------------------------------------
@pytest.mark.slow
def test_checkpoint_and_its_onnx_export_give_the_same_maps(checkpoint, fer_dir, lm_dir, tmp_path):
    from export.onnx_export import export_onnx
    from train.checkpoint import load_checkpoint
    from train.evaluate import load_eval_split, to_crops
    from train.explain import ExplainModel, class_maps

    ckpt = load_checkpoint(checkpoint)
    onnx_path = export_onnx(ckpt.model, ckpt.contract, tmp_path / "m.onnx", cam=True)
    torch_m = ExplainModel.load(checkpoint)
    onnx_m = ExplainModel.load(onnx_path, backend="onnxruntime-cpu")
    assert set(torch_m.methods()) == {"attention", "cam", "gradcam", "gradcam++", "layercam", "lime", "occlusion"}
    assert set(onnx_m.methods()) == {"attention", "cam", "lime", "occlusion"}
    split = load_eval_split(fer_dir, "test", torch_m.stored_size, "gray", lm_dir, limit=8, progress=False)
    crops = to_crops(split.images, torch_m.input_size)
    for method in ("attention", "cam", "lime"):
        a = class_maps(torch_m, crops[:3], method, lime_samples=30, seed=1)
        b = class_maps(onnx_m, crops[:3], method, lime_samples=30, seed=1)
        np.testing.assert_allclose(a, b, atol=2e-3, err_msg=method)
    grads = {m: class_maps(torch_m, crops[:3], m) for m in ("gradcam", "gradcam++", "layercam")}
    for m, g in grads.items():
        assert g.shape == (3, 7, 48, 48) and np.isfinite(g).all(), m
    with pytest.raises(ValueError, match="cannot give 'gradcam'"):
        class_maps(onnx_m, crops[:1], "gradcam")


# --- the CLIs --------------------------------------------------------------------------------------
def test_explain_cli_writes_pngs_and_arrays(fer_dir, tmp_path, capsys):
    from edgefer.cli import main

    src = tmp_path / "in" / "happy"
    src.mkdir(parents=True)
    for f in sorted((fer_dir / "test" / "happy").iterdir())[:2]:
        (src / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "in"), "--model", str(SHIPPED), "--out", str(out), "--target", "label",
            "--methods", "attention,cam,lime,occlusion", "--lime-samples", "30", "--occlusion-stride", "8"]
    assert main(argv) == 0
    summary = json.loads((out / "explain.json").read_text())
    assert len(summary["images"]) == 2 and all(im["explained"] == "happiness" for im in summary["images"])
    for im in summary["images"]:
        assert abs(sum(im["probs"].values()) - 1.0) < 1e-3
        for method in ("attention", "cam", "lime", "occlusion"):
            arr = np.load(out / f"{im['stem']}_{method}.npy")
            assert arr.shape == (56, 56) and arr.min() >= 0 and arr.max() == pytest.approx(1.0)
            png = cv2.imread(str(out / f"{im['stem']}_{method}.png"))
            assert png.shape == (224, 224, 3) and png.std() > 5
    capsys.readouterr()
    assert main(["explain", str(src), "--model", str(SHIPPED), "--out", str(out), "--methods", "gradcam"]) == 2
    assert "cannot give gradcam" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "nope.png"), "--model", str(SHIPPED), "--out", str(out)]) == 2
    assert "nope.png does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_study_cli_compares_two_models(checkpoint, fer_dir, lm_dir, tmp_path):
    from edgefer.cli import main

    out = tmp_path / "study"
    argv = ["study", "--models", str(SHIPPED), str(checkpoint), "--data", str(fer_dir), "--per-class", "2",
            "--landmarks", str(lm_dir), "--methods", "attention,cam,gradcam,lime", "--lime-samples", "20",
            "--steps", "4", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "study.json").read_text())
    assert report["n"] == 14 and list(report["models"]) == ["edgefer_fer2013.onnx", "last.pt"]
    onnx_rep, ckpt_rep = report["models"].values()
    assert set(onnx_rep["methods"]) == {"attention", "cam", "lime"}  # no gradients through ONNX
    assert set(ckpt_rep["methods"]) == {"attention", "cam", "gradcam", "lime"}
    for rep in (onnx_rep, ckpt_rep):
        assert 0.0 <= rep["accuracy"] <= 1.0 and rep["n"] == 14
        for m in rep["methods"].values():
            assert 0.0 <= m["ekman_iou_images"] <= 1.0 and 0.0 <= m["ekman_iou_mean_map"] <= 1.0
            assert "neutral" not in m["ekman_iou_mean_map_per_class"]
        f = rep["faithfulness"]
        assert f["steps"] == 4 and "random" in f
        assert all(0.0 <= f[m]["deletion_auc"] <= 1.0 and 0.0 <= f[m]["insertion_auc"] <= 1.0 for m in rep["methods"])
    corr = report["correlation"]["attention"]
    r = np.array(corr["matrix"])
    assert r.shape == (2, 2) and np.allclose(np.diag(r), 1.0) and np.allclose(r, r.T) and -1 <= r[0, 1] <= 1
    assert "gradcam" not in report["correlation"]  # only one model has it
    mean = np.load(out / "mean_0_attention.npy")
    assert mean.shape == (7, 64, 64) and np.isfinite(mean).all()
    for f in report["figures"]:
        img = cv2.imread(f)
        assert img is not None and img.std() > 5, f
    assert {Path(f).name for f in report["figures"]} >= {"grid_attention.png", "correlation_attention.png", "faithfulness.png"}


def test_eval_faithfulness_flag_adds_one_key_and_changes_nothing_else(fer_dir, lm_dir, tmp_path):
    from edgefer.cli import main

    base = ["eval", "--model", str(SHIPPED), "--data", str(fer_dir), "--limit", "21", "--landmarks", str(lm_dir)]
    assert main([*base, "--report", str(tmp_path / "plain.json")]) == 0
    assert main([*base, "--report", str(tmp_path / "faith.json"), "--faithfulness", "--faithfulness-steps", "4"]) == 0
    plain = json.loads((tmp_path / "plain.json").read_text())
    faith = json.loads((tmp_path / "faith.json").read_text())
    assert set(faith) - set(plain) == {"faithfulness"}
    for key in ("accuracy", "att_cos", "ekman_iou", "n"):
        assert faith[key] == plain[key]
    f = faith["faithfulness"]
    assert set(k for k, v in f.items() if isinstance(v, dict)) == {"attention", "cam", "random"}
    assert len(f["attention"]["deletion_curve"]) == 5


def test_explain_align_cuts_the_face_out_of_a_video_frame(one_face_video, tmp_path, capsys):
    """--align: MediaPipe finds the face in a 640x360 frame and the model sees the aligned crop (the
    one-face clip's frame 260 is a smiling face); an image without a face is skipped, naming it."""
    from edgefer.cli import main

    cap = cv2.VideoCapture(str(one_face_video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 260)
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "frame.png"), str(tmp_path / "blank.png"), "--align", "--model", str(SHIPPED),
            "--methods", "attention", "--out", str(out)]
    assert main(argv) == 0
    assert "blank.png: no face found" in capsys.readouterr().err
    summary = json.loads((out / "explain.json").read_text())
    assert [im["predicted"] for im in summary["images"]] == ["happiness"]
    heat = np.load(out / f"{summary['images'][0]['stem']}_attention.npy")
    assert heat.shape == (56, 56)
    # The smile's evidence sits in the lower half of the aligned face.
    assert heat[28:].sum() > heat[:28].sum()

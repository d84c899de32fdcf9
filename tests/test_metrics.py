"""Metrics give known answers on constructed inputs, and the paper's map processing behaves as defined."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgefer.classes import EXPRESSIONS, NEUTRAL
from train.metrics import (
    accuracy,
    class_average,
    classification_report,
    confusion_matrix,
    cosine,
    iou,
    macro_f1,
    minmax,
    per_class_recall,
)


def test_cosine_identical_orthogonal_scaled():
    rng = np.random.default_rng(0)
    a = rng.random((4, 8, 8))
    assert cosine(a, a) == pytest.approx(np.ones(4))
    assert cosine(a, 3.0 * a) == pytest.approx(np.ones(4))
    left = np.zeros((1, 4, 4))
    left[0, :, :2] = 1
    right = np.zeros((1, 4, 4))
    right[0, :, 2:] = 1
    assert cosine(left, right)[0] == pytest.approx(0.0)
    # Zero map: no NaN, cosine 0 (the reference code's NaN -> 0).
    assert cosine(np.zeros((1, 4, 4)), left)[0] == 0.0


def test_perfect_and_known_predictions():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 1, 1])
    rep = classification_report(labels, labels)
    assert rep["accuracy"] == 1.0 and rep["macro_f1"] == 1.0
    assert all(v == 1.0 for v in rep["per_class_recall"].values())
    assert np.array_equal(np.array(rep["confusion"]), np.diag(np.bincount(labels, minlength=7)))
    # One of three happiness predicted as surprise.
    preds = labels.copy()
    preds[-1] = 2
    cm = confusion_matrix(labels, preds)
    assert cm[1, 2] == 1 and cm.sum() == len(labels)
    assert accuracy(labels, preds) == pytest.approx(8 / 9)
    rec = per_class_recall(cm)
    assert rec[1] == pytest.approx(2 / 3) and rec[2] == 1.0
    # F1: happiness 2*2/(3+2) = 0.8, surprise 2*1/(1+2) = 2/3, others 1.
    assert macro_f1(cm) == pytest.approx((5 + 0.8 + 2 / 3) / 7)


def test_absent_class_is_nan_recall_and_left_out_of_f1():
    labels = np.array([1, 1, 2])
    cm = confusion_matrix(labels, labels)
    assert np.isnan(per_class_recall(cm)[0])
    assert macro_f1(cm) == 1.0
    assert classification_report(labels, labels)["per_class_recall"]["neutral"] is None


def test_class_average_is_macro_over_non_neutral_classes():
    labels = np.array([1, 1, 1, 2, NEUTRAL])
    scores = np.array([1.0, 1.0, 1.0, 0.0, 0.5])
    avg = class_average(scores, labels)
    # Per class first (happiness 1, surprise 0), then over classes: 0.5, not the per-sample 0.75.
    assert avg.macro == pytest.approx(0.5)
    assert "neutral" not in avg.per_class and avg.counts["happiness"] == 3 and avg.n == 4


def test_minmax_and_iou():
    m = np.array([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = minmax(m)
    assert out[0].min() == 0.0 and out[0].max() == 1.0 and out[0][0, 1] == pytest.approx(0.25)
    assert np.all(out[1] == 0.0)  # constant map -> 0
    a = np.zeros((2, 4, 4), bool)
    a[0, :2] = True
    b = np.zeros((2, 4, 4), bool)
    b[0, :, :2] = True
    assert iou(a, b)[0] == pytest.approx(4 / 12)
    assert iou(a, a)[0] == 1.0 and iou(a, b)[1] == 0.0


def test_attention_processing_follows_the_paper():
    from train.evaluate import upsample_attention, upsample_cam

    att = np.array([[[-1.0, 0.0], [0.0, 3.0]]], np.float32)
    up = upsample_attention(att, 8)
    # align_corners=True keeps the corner values; shifted by -min (min < 0) -> [0, 4].
    assert up.shape == (1, 8, 8)
    assert up[0, 0, 0] == pytest.approx(0.0) and up[0, -1, -1] == pytest.approx(4.0)
    assert up.min() >= 0.0 and up.max() <= 4.0 + 1e-6
    cam = np.array([[[5.0, 5.0], [5.0, 9.0]], [[1.0, 1.0], [1.0, 1.0]]], np.float32)
    upc = upsample_cam(cam, 8)
    assert upc.min() >= 0.0 and upc.max() <= 1.0
    assert np.all(upc[1] == 0.0)  # constant CAM -> 0


def test_alignment_loss_known_values():
    from train.losses import AUGuidedLoss, alignment_loss, cosine_per_sample, resize_maps

    att = torch.rand(3, 6, 6)
    maps = torch.nn.functional.interpolate(att[:, None], size=(48, 48), mode="nearest")[:, 0]
    # Area-resizing an 8x nearest-upsampled map gives the map back: cosine 1, loss 0.
    torch.testing.assert_close(resize_maps(maps, (6, 6)), att.clamp(0, 1))
    loss, cos = alignment_loss(att, maps, torch.tensor([True, True, False]))
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(cos) == pytest.approx(1.0, abs=1e-6)
    # No valid sample: zero loss that still has a graph.
    a = torch.rand(2, 6, 6, requires_grad=True)
    zero, _ = alignment_loss(a, torch.rand(2, 48, 48), torch.tensor([False, False]))
    zero.backward()
    assert float(zero.detach()) == 0.0 and a.grad is not None
    left = torch.zeros(1, 4, 4)
    left[0, :, :2] = 1
    assert float(cosine_per_sample(left, 1 - left)) == 0.0
    # lambda scales the alignment term; lambda 0 is plain CE.
    logits = torch.randn(3, 7)
    labels = torch.tensor([1, 2, 3])
    far = torch.zeros(3, 48, 48)
    far[:, :8, :8] = 1
    att2 = torch.zeros(3, 6, 6)
    att2[:, 5, 5] = 1
    valid = torch.ones(3, dtype=torch.bool)
    t0 = AUGuidedLoss(0.0)(logits, att2, labels, far, valid)
    t4 = AUGuidedLoss(4.0)(logits, att2, labels, far, valid)
    assert float(t0.total) == pytest.approx(float(t0.ce))
    assert float(t4.total) == pytest.approx(float(t4.ce) + 4.0, abs=1e-5)  # cos 0 -> 1 - cos = 1
    assert t4.n_valid == 3 and len(EXPRESSIONS) == 7


def test_alignment_at_input_is_one_minus_att_cos():
    """`loss.align_at: input` optimises exactly the metric `edgefer eval` reports, sample by sample."""
    from train.evaluate import upsample_attention
    from train.losses import alignment_loss, map_cosine

    gen = torch.Generator().manual_seed(0)
    att = torch.rand(4, 7, 7, generator=gen, requires_grad=True)
    maps = torch.rand(4, 56, 56, generator=gen)
    metric = cosine(upsample_attention(att.detach().numpy(), 56), maps.numpy())
    np.testing.assert_allclose(map_cosine(att, maps, "input").detach().numpy(), metric, atol=1e-6)
    loss, cos = alignment_loss(att, maps, torch.ones(4, dtype=torch.bool), "input")
    assert float(loss.detach()) == pytest.approx(1.0 - metric.mean(), abs=1e-6)
    assert float(cos) == pytest.approx(metric.mean(), abs=1e-6)
    loss.backward()
    assert att.grad is not None and float(att.grad.abs().sum()) > 0

    # A map that is the metric's own upsampling of a 7x7 map: perfect at input resolution, while
    # the reference's area-shrunk target sits on a shifted grid and cannot match it.
    small = 0.8 * torch.rand(2, 7, 7, generator=gen) + 0.1  # inside [0, 1]: AU maps are clamped
    up = torch.from_numpy(upsample_attention(small.numpy(), 56))
    assert float(map_cosine(small, up, "input").min()) == pytest.approx(1.0, abs=1e-6)
    assert float(map_cosine(small, up, "attention").min()) < 0.999
    with pytest.raises(ValueError, match="align_at"):
        map_cosine(small, up, "nowhere")  # type: ignore[arg-type]


def test_align_at_setting_is_checked():
    from pydantic import ValidationError

    from train.config import LossSettings

    assert LossSettings(align_at="input").align_at == "input"
    assert LossSettings().align_at == "attention"  # the reference code's choice stays the default
    with pytest.raises(ValidationError, match="align_at"):
        LossSettings(align_at="pixels")

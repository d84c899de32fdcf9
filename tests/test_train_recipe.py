"""The second-generation recipe's parts: batch mixing with AU maps, camera degradations, the weight
average, bf16 on the CPU. Unit level, on small tensors and a real FER2013 face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from train.augment import camera_degrade
from train.ema import WeightEMA
from train.losses import AUGuidedLoss
from train.mixing import mix_batch
from train.trainer import amp_dtype, cpu_has_native_bf16


def _batch(n: int = 6, size: int = 16):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, size, size, generator=g)
    labels = torch.arange(n) % 7
    maps = torch.zeros(n, size, size)
    for i in range(n):  # each sample's evidence in its own row band, so pasted regions are traceable
        maps[i, i * 2 : i * 2 + 2, :] = 1.0
    valid = torch.ones(n, dtype=torch.bool)
    valid[1] = False  # e.g. neutral: no map
    maps[1] = 0.0
    return images, labels, maps, valid


def test_mixup_mixes_images_labels_and_maps_alike():
    images, labels, maps, valid = _batch()
    rng = np.random.default_rng(3)
    m = mix_batch(images, labels, maps, valid, "mixup", alpha=0.4, prob=1.0, rng=rng)
    assert m.labels_b is not None and 0.0 < m.lam < 1.0
    perm = [int(torch.nonzero(labels == lb)[0]) for lb in m.labels_b]  # labels are unique here
    for i, j in enumerate(perm):
        torch.testing.assert_close(m.images[i], m.lam * images[i] + (1 - m.lam) * images[j])
        torch.testing.assert_close(m.maps[i], m.lam * maps[i] * valid[i] + (1 - m.lam) * maps[j] * valid[j])
        assert bool(m.valid[i]) == bool(valid[i] or valid[j])


def test_cutmix_pastes_the_map_with_the_box_and_corrects_lambda():
    images, labels, maps, valid = _batch(size=24)
    m = mix_batch(images, labels, maps, valid, "cutmix", alpha=1.0, prob=1.0, rng=np.random.default_rng(5))
    pasted = (m.images != images).any(1)  # (N, H, W) pixels that came from the partner
    box = pasted.any(0)
    area = int(box.sum())
    assert 0 < area < 24 * 24
    assert m.lam == pytest.approx(1 - area / (24 * 24))
    perm = [int(torch.nonzero(labels == lb)[0]) for lb in m.labels_b]
    for i, j in enumerate(perm):
        torch.testing.assert_close(m.maps[i][box], (maps[j] * valid[j])[box])
        torch.testing.assert_close(m.maps[i][~box], (maps[i] * valid[i])[~box])
        assert bool(m.valid[i]) == bool(m.maps[i].max() > 0)


def test_unmixed_batches_pass_through_and_loss_weights_both_labels():
    images, labels, maps, valid = _batch()
    same = mix_batch(images, labels, maps, valid, "mixup", alpha=0.4, prob=0.0, rng=np.random.default_rng(0))
    assert same.images is images and same.labels_b is None and same.lam == 1.0
    with pytest.raises(ValueError, match="augment.mix"):
        mix_batch(images, labels, maps, valid, "mosaic", alpha=0.4, prob=1.0, rng=np.random.default_rng(0))
    logits = torch.randn(6, 7)
    loss = AUGuidedLoss(0.0)
    a = loss(logits, maps, labels, maps, valid).ce
    b = loss(logits, maps, labels.roll(1), maps, valid).ce
    mixed = loss(logits, maps, labels, maps, valid, labels.roll(1), 0.3).ce
    assert float(mixed) == pytest.approx(0.3 * float(a) + 0.7 * float(b), rel=1e-5)


def test_camera_degradations_are_seeded_bounded_and_change_a_real_face(fer_dir):
    path = next((fer_dir / "train" / "happy").glob("*.jpg"))
    face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    a = camera_degrade(face, np.random.default_rng(1), 1.0)
    b = camera_degrade(face, np.random.default_rng(1), 1.0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == face.shape and a.min() >= 0 and a.max() <= 255
    assert np.abs(a - face).mean() > 1.0  # every step ran
    np.testing.assert_array_equal(camera_degrade(face, np.random.default_rng(1), 0.0), face)
    # the face is still the face: strongly correlated with the original
    assert np.corrcoef(a.ravel(), face.ravel())[0, 1] > 0.6


def test_weight_average_follows_the_model_with_warm_up():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = WeightEMA(model, 0.99)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()
    model(torch.randn(8, 3))  # moves BatchNorm's statistics and step counter
    ema.update(model)
    d = min(0.99, 2 / 11)  # the warm-up decay after one update
    torch.testing.assert_close(ema.module[0].weight, d * start + (1 - d) * model[0].weight.detach())
    assert int(ema.module[1].num_batches_tracked) == int(model[1].num_batches_tracked) == 1
    assert not ema.module[0].weight.requires_grad
    with pytest.raises(ValueError, match="ema_decay"):
        WeightEMA(model, 1.0)


def test_bf16_is_chosen_from_the_cpu_flags():
    assert cpu_has_native_bf16("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_native_bf16("Features\t: fp asimd bf16 i8mm\n")
    assert not cpu_has_native_bf16("flags\t\t: fpu sse avx2 avx512f\n")
    cpu = torch.device("cpu")
    assert amp_dtype("off", cpu) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16
    assert amp_dtype("auto", cpu) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        amp_dtype("fp16", cpu)

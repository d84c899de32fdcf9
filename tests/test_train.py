"""Training on real FER2013 images: loss falls, AU alignment raises ATT-COS, checkpoints round-trip,
resume continues exactly, the CLI trains and refuses mistakes, augmentation keeps the map on the face.

Tiny backbone, 200 images, 48 px, 2-3 epochs: the point is the mechanics, not the accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgefer.classes import EXPRESSIONS
from edgefer.config import ConfigError
from tests.support.training import base_config, landmark_cache, session_root, train_run


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return session_root(tmp_path_factory)


@pytest.fixture(scope="module")
def au_run(fer_dir, face_model, root):
    return train_run("au", fer_dir, face_model, root, loss={"au_lambda": 10.0}, optim={"batch_size": 16})


@pytest.fixture(scope="module")
def baseline_run(fer_dir, face_model, root):
    return train_run("baseline", fer_dir, face_model, root, loss={"au_lambda": 0.0}, optim={"batch_size": 16})


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_run_folder_and_loss_falls(au_run):
    hist = _history(au_run.run_dir)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["train_align"] < hist[0]["train_align"]
    for name in ("best.pt", "last.pt", "config.yaml", "train.log"):
        assert (au_run.run_dir / name).is_file(), name
    assert list((au_run.run_dir / "tb").glob("events.out.tfevents.*"))
    # Validation is carved from train (15% of 200), never the test split.
    assert au_run.summary["val"]["n"] == pytest.approx(30, abs=3)
    assert au_run.summary["val"]["n_with_map"] > 0


@pytest.mark.slow
def test_alignment_raises_att_cos_over_baseline(au_run, baseline_run):
    au = _history(au_run.run_dir)[-1]
    base = _history(baseline_run.run_dir)[-1]
    assert au["train_att_cos"] > base["train_att_cos"] + 0.05
    assert au["val_att_cos"] > base["val_att_cos"] + 0.05


@pytest.mark.slow
def test_checkpoint_round_trip_gives_same_logits(au_run):
    from train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(au_run.run_dir / "last.pt")
    assert ckpt.epoch == 3 and not ckpt.model.training
    live = au_run.trainer.model.eval()
    x = torch.rand(5, 1, 48, 48)
    with torch.no_grad():
        l1, a1 = live(x)
        l2, a2, cams = ckpt.model.forward_with_cam(x)
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(a1, a2)
    assert cams.shape == (5, 7, 6, 6)
    c = ckpt.contract
    assert c.classes == EXPRESSIONS and c.input_size == (48, 48) and c.color == "gray"
    assert c.attention_size == (6, 6) and c.attention_layer == "layer4" and c.au_aligned
    assert c.trained_on == "fer2013" and c.backbone == "resnet18"
    # Framing measured from the training landmarks: eyes above the mouth, left eye left of right eye.
    tpl = dict(zip(c.framing.landmark_indices, c.framing.template))
    assert tpl[33][0] < tpl[263][0] and tpl[33][1] < tpl[61][1]
    assert 0.0 < c.mean[0] < 1.0 and c.std[0] > 0.05
    assert ckpt.config["loss"]["au_lambda"] == 10.0 and ckpt.metrics["val"]["n"] > 0
    # best.pt: same format, weights only.
    best = load_checkpoint(au_run.run_dir / "best.pt")
    assert 1 <= best.epoch <= 3


@pytest.mark.slow
def test_checkpoint_is_safe_to_load(au_run):
    payload = torch.load(au_run.run_dir / "last.pt", map_location="cpu", weights_only=True)
    assert payload["format"] == "edgefer.train.checkpoint"
    assert {"optimizer", "scheduler", "scaler", "model", "contract"} <= set(payload)


#: The options of the second-generation recipe that carry state or randomness across steps: batch
#: mixing (seeded per step), the weight average (saved beside the raw weights), camera degradations.
RECIPE_OPTIONS = dict(augment={"mix": "both", "mix_prob": 0.8, "camera": 0.5}, loss={"au_lambda": 4.0, "label_smoothing": 0.1})


@pytest.mark.slow
@pytest.mark.parametrize("options", ["plain", "recipe"])
def test_resume_mid_epoch_matches_uninterrupted_run(fer_dir, face_model, root, options):
    from edgefer.config import validate_settings
    from train.checkpoint import read_payload
    from train.config import TrainConfig
    from train.trainer import Trainer

    common = dict(optim={"epochs": 2, "schedule": "cosine"})
    if options == "recipe":
        common = dict(RECIPE_OPTIONS, optim={"epochs": 2, "schedule": "cosine", "ema_decay": 0.9})
    full = train_run(f"resume_ref_{options}", fer_dir, face_model, root, **common)
    cache = landmark_cache(fer_dir, face_model, root)
    cfg = validate_settings(TrainConfig, base_config(fer_dir, cache, root, run={"stop_after_steps": 3}, **common), "t")
    run_dir = root / "runs" / f"resume_cut_{options}"
    summary = Trainer(cfg, run_dir).fit()
    assert summary["stopped"] and summary["step"] == 3 and summary["epoch"] == 0
    cut = read_payload(run_dir / "last.pt")
    assert cut["step"] == 3 and cut["step_in_epoch"] == 3 and cut["epoch"] == 0
    cfg2 = validate_settings(TrainConfig, base_config(fer_dir, cache, root, **common), "t")
    Trainer(cfg2, run_dir, resume=True).fit()
    a = read_payload(full.run_dir / "last.pt")
    b = read_payload(run_dir / "last.pt")
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (2, 10)
    for part in ("model", "train_model") if options == "recipe" else ("model",):
        for key, value in a[part].items():
            torch.testing.assert_close(value, b[part][key], rtol=1e-4, atol=1e-5, msg=f"{part}.{key}")
    if options == "recipe":  # the saved average is not the raw weights, and counts every step
        assert a["ema_updates"] == b["ema_updates"] == 10
        conv = next(k for k in a["model"] if k.endswith("conv1.weight"))
        assert not torch.allclose(a["model"][conv], a["train_model"][conv])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"], rtol=1e-4, atol=1e-5)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    ha = [h["val_accuracy"] for h in json.loads(a["history"])]
    hb = [h["val_accuracy"] for h in json.loads(b["history"])]
    assert ha == pytest.approx(hb)


@pytest.mark.slow
def test_cli_trains_and_refuses_mistakes(fer_dir, face_model, root, tmp_path, capsys):
    import yaml

    from edgefer.cli import main

    cache = landmark_cache(fer_dir, face_model, root)
    cfg = base_config(fer_dir, cache, root, optim={"epochs": 1}, loss={"au_lambda": 1.0})
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(recipe), "--out", str(out)]) == 0
    assert (out / "best.pt").is_file()
    printed = capsys.readouterr().out
    assert "val accuracy" in printed
    # Same folder again without --resume: refused, nothing overwritten.
    before = (out / "last.pt").stat().st_mtime_ns
    assert main(["train", "--config", str(recipe), "--out", str(out)]) == 2
    assert (out / "last.pt").stat().st_mtime_ns == before
    assert "--resume" in capsys.readouterr().err
    # Resume a finished run with more epochs: continues from epoch 1 to 2.
    assert main(["train", "--out", str(out), "--resume", "optim.epochs=2"]) == 0
    hist = _history(out)
    assert [h["epoch"] for h in hist] == [1, 2]
    # A key that does not exist: the error names the file and the key.
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**cfg, "optim": {**cfg["optim"], "learning_rate": 0.1}}))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "optim.learning_rate" in err
    assert not (tmp_path / "bad").exists()
    # A problem found while preparing (no landmarks at all): one clear line, exit code 2.
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "nolm"),
                 f"data.landmarks={tmp_path / 'empty_cache'}"]) == 2
    assert "no training image has landmarks" in capsys.readouterr().err


def test_config_errors_name_file_and_key(tmp_path):
    from train.config import load_train_config

    path = tmp_path / "r.yaml"
    path.write_text("model:\n  backbone: resnet18\n  attention_stag: 2\n")
    with pytest.raises(ConfigError, match=r"r\.yaml.*model\.attention_stag"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="data.color"):
        load_train_config(None, ["data.color=purple"])
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")


def test_bad_backbone_and_stage_are_clear():
    from train.model import ModelSpec, build_model

    with pytest.raises(ValueError, match="not a timm model"):
        build_model(ModelSpec("no_such_net"))
    with pytest.raises(ValueError, match="attention_stage 9"):
        build_model(ModelSpec("resnet18", attention_stage=9, backbone_kwargs={"channels": [8, 16, 32, 64]}))


def test_augmentation_moves_image_and_map_together():
    """A bright dot in the stored image and the same dot in the map land on the same output pixel."""
    from train.augment import AugmentParams
    from train.torch_data import FERDataset

    stored, size = 48, 64
    rng = np.random.default_rng(1)
    n = 40
    images = np.zeros((n, stored, stored), np.uint8)
    maps = np.zeros((n, size, size), np.uint8)
    dots = rng.uniform(14, 34, size=(n, 2))
    yy, xx = np.mgrid[0:stored, 0:stored]
    my, mx = np.mgrid[0:size, 0:size]
    s = size / stored
    for i, (x, y) in enumerate(dots):
        images[i] = (255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0)).astype(np.uint8)
        # The same dot in the map's (input-size) frame: continuous coords scale by s.
        cx, cy = (x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5
        maps[i] = (255 * np.exp(-((mx - cx) ** 2 + (my - cy) ** 2) / (4.0 * s * s))).astype(np.uint8)
    params = AugmentParams(hflip=0.5, rotate_deg=15, scale=(0.85, 1.15), translate=0.1, brightness=0.0,
                           contrast=0.0, erase=0.0)
    ds = FERDataset(images, np.ones(n, np.int64), maps, np.ones(n, bool), size, params, seed=3)
    moved = 0
    for i in range(n):
        img, amap, valid, _ = ds[(i, 2)]
        img, amap = img[0].numpy().astype(float), amap.numpy().astype(float)
        pi = np.array(np.unravel_index(img.argmax(), img.shape))
        pm = np.array(np.unravel_index(amap.argmax(), amap.shape))
        assert np.abs(pi - pm).max() <= 1, (i, pi, pm)
        base = np.array([(dots[i][1] + 0.5) * s - 0.5, (dots[i][0] + 0.5) * s - 0.5])
        moved += np.abs(pi - base).max() > 2
        assert bool(valid)
    assert moved > n // 2  # the augmentation really moved most dots
    # Same (index, epoch): same draw; another epoch: another draw.
    a, b, c = ds[(5, 1)][0], ds[(5, 1)][0], ds[(5, 2)][0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_pretrained_weights_from_a_local_file(tmp_path):
    """Offline machines: `model.pretrained_path` loads a local timm file (3-channel stem summed to gray)."""
    import timm
    from safetensors.torch import save_file

    from train.model import ModelSpec, build_model

    kwargs = {"channels": [8, 16, 32, 64], "stem_width": 8}
    src = timm.create_model("resnet18", pretrained=False, **kwargs)
    path = tmp_path / "tiny.safetensors"
    save_file(src.state_dict(), str(path))
    net = build_model(ModelSpec("resnet18", in_chans=1, backbone_kwargs=kwargs), pretrained_path=str(path))
    sd = src.state_dict()
    assert torch.equal(net.features.layer3[1].conv2.weight, sd["layer3.1.conv2.weight"])
    torch.testing.assert_close(net.features.conv1.weight[:, 0], sd["conv1.weight"].sum(1))
    # Without pretrained weights nothing is fetched (no network here) and the model still builds.
    assert build_model(ModelSpec("resnet18", in_chans=1, backbone_kwargs=kwargs)).attention_size(48) == (6, 6)

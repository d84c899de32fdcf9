"""ONNX Runtime CPU classifier on a real exported model: shapes, errors, preprocessing, class order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.classes import EXPRESSIONS
from edgefer.contract import METADATA_KEY
from edgefer.runtime import (
    BACKENDS,
    ClassifierOutput,
    MissingContractError,
    ModelLoadError,
    load_classifier,
)
from edgefer.runtime.base import class_permutation
from edgefer.runtime.contract_io import parse_contract_option
from edgefer.runtime.onnx_backend import read_onnx_contract
from edgefer.runtime.preprocess import Preprocessor


@pytest.fixture(scope="module")
def classifier(tiny_onnx_model: Path):
    return load_classifier(tiny_onnx_model, backend="onnxruntime-cpu")


@pytest.fixture(scope="module")
def crops(fer_dir: Path) -> np.ndarray:
    from edgefer.runtime.crops import list_labelled_images, load_crops

    images = list_labelled_images(fer_dir / "test", per_class=2)
    return load_crops(images.paths[:8], (48, 48))


def test_cpu_backend_and_contract(classifier, tiny_onnx_model: Path) -> None:
    assert classifier.backend_name == "onnxruntime-cpu"
    assert classifier.contract.classes == EXPRESSIONS
    assert classifier.contract == read_onnx_contract(tiny_onnx_model)
    assert classifier.has_cam


def test_batch_of_8_equals_8_single_calls(classifier, crops: np.ndarray) -> None:
    batch = classifier.predict(crops)
    assert isinstance(batch, ClassifierOutput)
    assert batch.probs.shape == (8, 7) and batch.probs.dtype == np.float32
    assert batch.logits.shape == (8, 7)
    assert batch.attention.shape == (8, 12, 12) and batch.attention.dtype == np.float32
    assert batch.cam is not None and batch.cam.shape[0] == 8
    assert batch.cams is not None and batch.cams.shape[:2] == (8, 7)
    np.testing.assert_allclose(batch.probs.sum(axis=1), 1.0, atol=1e-5)
    for i in range(8):
        one = classifier.predict(crops[i])  # a single (H, W, 3) crop
        assert one.probs.shape == (1, 7)
        np.testing.assert_allclose(one.probs[0], batch.probs[i], atol=1e-5)
        np.testing.assert_allclose(one.attention[0], batch.attention[i], atol=1e-5)
    # The CAM returned is the predicted class's map.
    pred = batch.probs.argmax(axis=1)
    np.testing.assert_array_equal(batch.cam, batch.cams[np.arange(8), pred])


def test_different_faces_give_different_outputs(classifier, crops: np.ndarray) -> None:
    out = classifier.predict(crops)
    assert np.abs(out.attention[0] - out.attention[1]).max() > 1e-4


def test_empty_batch(classifier) -> None:
    out = classifier.predict(np.zeros((0, 48, 48, 3), np.uint8))
    assert out.probs.shape == (0, 7) and out.logits.shape == (0, 7)
    assert out.attention.shape == (0, 12, 12)
    assert out.cam is not None and out.cam.shape[0] == 0
    assert len(out) == 0


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((2, 64, 64, 3), np.uint8), ["(N, 48, 48, 3)", "(2, 64, 64, 3)"]),
        (np.zeros((2, 48, 48), np.uint8), ["(N, 48, 48, 3)", "(2, 48, 48)"]),
        (np.zeros((2, 48, 48, 3), np.float32), ["uint8", "float32"]),
        (np.zeros((48, 48, 4), np.uint8), ["(48, 48, 3)", "(48, 48, 4)"]),
    ],
)
def test_wrong_shape_or_dtype(classifier, bad: np.ndarray, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        classifier.predict(bad)
    for w in words:
        assert w in str(err.value)


def test_preprocessing_matches_opencv_reference() -> None:
    from export.tiny import tiny_contract

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    gray = tiny_contract("gray")
    x = Preprocessor(gray)(crops).copy()
    ref = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]).astype(np.float32)
    np.testing.assert_allclose(x[:, 0], (ref / 255 - 0.5) / 0.25, atol=2.5 / 255 / 0.25)
    rgb = replace(tiny_contract("rgb"), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    y = Preprocessor(rgb)(crops)
    want = (crops[..., ::-1].astype(np.float32) / 255 - np.array(rgb.mean, np.float32)) / np.array(rgb.std, np.float32)
    np.testing.assert_allclose(y, want.transpose(0, 3, 1, 2), atol=1e-5)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        load_classifier(tmp_path / "nope.onnx")


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelLoadError, match="corrupt.onnx"):
        load_classifier(bad, backend="onnxruntime-cpu")


def test_onnx_without_metadata(tiny_onnx_model: Path, tmp_path: Path, crops: np.ndarray) -> None:
    # Stripping the metadata needs the `onnx` package (the export extra); loading does not.
    onnx = pytest.importorskip("onnx", reason="the onnx package (edgefer[export]) strips the metadata")

    model = onnx.load(str(tiny_onnx_model))
    contract_json = next(p.value for p in model.metadata_props if p.key == METADATA_KEY)
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(MissingContractError) as err:
        load_classifier(bare)
    msg = str(err.value)
    assert "bare.onnx" in msg and "contract_override" in msg and "--contract" in msg
    # The documented way out works, from inline JSON and from a file.
    (tmp_path / "c.json").write_text(contract_json)
    for option in (contract_json, str(tmp_path / "c.json")):
        clf = load_classifier(bare, contract_override=parse_contract_option(option))
        ref = load_classifier(tiny_onnx_model).predict(crops)
        np.testing.assert_allclose(clf.predict(crops).probs, ref.probs, atol=1e-6)


def test_contract_that_does_not_fit_the_model(tiny_onnx_model: Path) -> None:
    from export.tiny import tiny_contract

    with pytest.raises(ModelLoadError, match="contract says"):
        load_classifier(tiny_onnx_model, contract_override=tiny_contract("rgb"))


def test_unknown_backend(tiny_onnx_model: Path) -> None:
    with pytest.raises(ValueError) as err:
        load_classifier(tiny_onnx_model, backend="cuda-magic")
    for name in BACKENDS:
        assert name in str(err.value)


def test_unavailable_backend_is_a_clear_error(tiny_onnx_model: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: nothing unavailable to ask for")
    with pytest.raises(RuntimeError, match="onnxruntime-cuda is not available"):
        load_classifier(tiny_onnx_model, backend="onnxruntime-cuda")


def test_other_class_order_is_reordered(tiny_onnx_model: Path, tmp_path: Path, crops: np.ndarray) -> None:
    ref_clf = load_classifier(tiny_onnx_model)
    ref = ref_clf.predict(crops)
    # Pretend the same network was trained with FER2013's CSV order and spellings.
    fer_order = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    project_of = [EXPRESSIONS.index(n) for n in ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")]
    contract = replace(ref_clf.contract, classes=fer_order)
    clf = load_classifier(tiny_onnx_model, contract_override=contract)
    assert clf.contract.classes == EXPRESSIONS and clf.model_contract.classes == fer_order
    out = clf.predict(crops)
    # Model column k (named fer_order[k]) must land in project column project_of[k].
    for k, j in enumerate(project_of):
        np.testing.assert_allclose(out.logits[:, j], ref.logits[:, k], atol=1e-6)
        np.testing.assert_allclose(out.cams[:, j], ref.cams[:, k], atol=1e-6)


def test_class_order_that_cannot_be_mapped_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="contempt"):
        class_permutation(("neutral", "happiness", "surprise", "fear", "anger", "disgust", "contempt"), "m.onnx")
    with pytest.raises(ModelLoadError, match="exactly once"):
        class_permutation(("neutral", "happy", "happiness", "fear", "anger", "disgust", "sadness"), "m.onnx")
    assert class_permutation(EXPRESSIONS, "m.onnx") is None


def test_default_model_path_when_none(monkeypatch: pytest.MonkeyPatch, tiny_onnx_model: Path) -> None:
    import edgefer.paths

    monkeypatch.setattr(edgefer.paths, "DEFAULT_MODEL", tiny_onnx_model)
    clf = load_classifier(None)
    assert clf.source == tiny_onnx_model


def test_these_tests_need_no_torch(tmp_path: Path) -> None:
    """These tests guard the torch-free (Jetson) install, so they must run on one: the rest of this
    module passes in a child interpreter where torch, timm and onnx cannot be imported (the model is
    committed, tests/data/; the one test that edits an ONNX file skips without the onnx package)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for name in ('torch', 'torchvision', 'timm', 'onnx'):\n"
        "    sys.modules[name] = None  # import fails, as on a base install\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-k', 'not these_tests_need_no_torch', sys.argv[1]]))\n"
    )
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTEST_ADDOPTS": f"--basetemp={tmp_path / 'child'}"}
    res = subprocess.run([sys.executable, "-c", code, __file__], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]

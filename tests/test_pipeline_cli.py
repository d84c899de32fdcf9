"""`edgefer run` in-process: settings precedence, exit codes, clear errors, the printed summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.cli import build_parser, main
from edgefer.pipeline.cli import build_settings
from tests.support.pipeline import count_frames, read_jsonl

REPO = Path(__file__).resolve().parents[1]


def _args(*argv: str):
    return build_parser().parse_args(["run", *argv])


def test_flags_override_config_and_set_overrides_flags(tmp_path: Path):
    s = build_settings(
        _args(
            "--config", str(REPO / "configs/pipeline/jetson_orin.yaml"), "--source", "clip.mp4",
            "--record", "out/r.mp4", "--segment-seconds", "60", "--jsonl", "rows.jsonl", "--heatmap", "cam",
            "--opacity", "0.3", "--smoothing", "0.2", "--max-faces", "2", "--blendshapes", "--realtime",
            "--max-frames", "50", "--set", "record.bitrate_kbps=4000", "--set", "max_faces=3",
        )
    )
    assert s.source == "clip.mp4" and s.backend == "tensorrt"  # flag over profile; profile kept
    assert s.record.path == Path("out/r.mp4") and s.record.segment_seconds == 60.0
    assert s.record.encoder == "gstreamer" and s.record.bitrate_kbps == 4000
    assert s.jsonl == Path("rows.jsonl") and s.csv is None
    assert (s.heatmap.mode, s.heatmap.opacity, s.smoothing) == ("cam", 0.3, 0.2)
    assert s.max_faces == 3 and s.blendshapes and s.realtime and s.max_frames == 50
    # without flags the profile's values stand
    d = build_settings(_args("--config", str(REPO / "configs/pipeline/desktop.yaml")))
    assert d.source == "0" and d.headless is False and d.capture.width == 1280


def test_usage_errors_exit_2(capsys, tmp_path: Path, tiny_onnx_model):
    assert main(["run", "--headless"]) == 2
    assert "give --source" in capsys.readouterr().err
    assert main(["run", "--source", "x.mp4", "--set", "max_facez=2"]) == 2
    assert "unknown key 'max_facez'" in capsys.readouterr().err
    assert main(["run", "--source", "x.mp4", "--smoothing", "1.5"]) == 2
    assert "smoothing" in capsys.readouterr().err
    missing = tmp_path / "missing.mp4"
    assert main(["run", "--source", str(missing), "--model", str(tiny_onnx_model), "--headless", "--no-progress"]) == 2
    assert f"source file not found: {missing}" in capsys.readouterr().err
    bad_model = tmp_path / "model.onnx"
    bad_model.write_bytes(b"not a model")
    assert main(["run", "--source", str(REPO / "README.md"), "--model", str(bad_model), "--headless", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot load the expression model" in err and "model.onnx" in err


def test_unreadable_file_exits_1(capsys, tmp_path: Path, tiny_onnx_model, face_model):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    rc = main(["run", "--source", str(junk), "--model", str(tiny_onnx_model), "--face-model", str(face_model),
               "--headless", "--no-progress", "--csv", str(tmp_path / "rows.csv")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "ERROR: capture: cannot open source" in out and "junk.mp4" in out


def test_run_writes_outputs_and_prints_summary(capsys, tmp_path: Path, two_face_gif, tiny_onnx_model, face_model):
    rec, rows = tmp_path / "o" / "gif.mp4", tmp_path / "o" / "gif.jsonl"
    rc = main(["run", "--source", f"file://{two_face_gif}", "--model", str(tiny_onnx_model), "--face-model", str(face_model),
               "--headless", "--record", str(rec), "--jsonl", str(rows), "--max-frames", "20", "--heatmap", "cam"])
    out = capsys.readouterr().out
    assert rc == 0
    assert count_frames(rec) == 20
    assert len(read_jsonl(rows)) == 40
    assert "outputs:" in out and str(rec) in out and str(rows) in out
    assert "20 processed / 20 read" in out and "p50 ms" in out and "end-to-end" in out

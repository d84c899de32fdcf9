"""The machine-independent half of `edgefer selftest`: crops, agreement metrics, timing, pipeline
runs, the report and its table.

Everything here runs on a CPU with ONNX Runtime, so it is tested where no GPU exists; the GPU half
(`edgefer.selftest.gpu`) only adds candidates (TensorRT engines, ONNX Runtime's CUDA and TensorRT
execution providers) to the same loop.

Why real crops from the project's videos and not random tensors: reduced precision (FP16, INT8)
fails on real value ranges (saturated activations, near-tied classes), which random inputs do not
exercise; and the crops are cut exactly as `edgefer run` cuts them (MediaPipe landmarks, the
contract's framing, `Aligner`), so what is compared is what the pipeline will feed the model.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.align import Aligner
from edgefer.contract import ModelContract
from edgefer.paths import PACKAGE_DIR, data_root
from edgefer.runtime.base import Classifier, ClassifierOutput

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".gif", ".mov", ".avi", ".mkv", ".webm")


class Deadline:
    """The whole self-test's time budget: every stage asks how much is left before it starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.start = time.monotonic()
        self.end = self.start + self.seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


# ---- the videos and the crops cut from them -------------------------------------------------


def default_video_dir() -> Path | None:
    """Where the project's videos are: $EDGEFER_DATA/videos, else ../shared/data/videos beside a
    source checkout (the layout the Makefile and the tests use); None when neither exists."""
    candidates = []
    root = data_root()
    if root is not None:
        candidates.append(root / "videos")
    candidates.append(PACKAGE_DIR.parent.parent / "shared" / "data" / "videos")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def find_videos(paths: Sequence[Path] | None = None) -> list[Path]:
    """Video files named (files, or folders whose videos are taken in name order), or the project's.

    FileNotFoundError names what was looked at when nothing is found: the self-test needs real faces.
    """
    if not paths:
        folder = default_video_dir()
        if folder is None:
            raise FileNotFoundError(
                "no videos to take face crops from: set EDGEFER_DATA (its videos/ folder) or pass --videos FILE_OR_DIR"
            )
        paths = [folder]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such video file or folder")
    if not out:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(str(p) for p in paths)}")
    return out


@dataclass
class CropSet:
    """Aligned face crops (N, h, w, 3) uint8 BGR and where each came from ("video.mp4#frame")."""

    crops: np.ndarray
    origins: list[str]
    per_video: dict[str, int]

    def __len__(self) -> int:
        return int(self.crops.shape[0])


def _frame_count(cap: Any) -> int:
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return n if n > 0 else 0


def collect_crops(
    videos: Sequence[Path],
    contract: ModelContract,
    max_crops: int = 64,
    *,
    face_model: Path | None = None,
    max_faces: int = 4,
) -> CropSet:
    """Up to `max_crops` real face crops, spread evenly over each video's frames.

    Each video gets an equal share of what is still missing, in frames spaced across its whole
    length (so a clip that runs through several expressions contributes all of them; a clip with
    few faces leaves its unused share to the next one); every face found in a chosen frame is
    cut with the contract's framing, as the pipeline cuts it. Frames are decoded in order (seeking
    is unreliable in GIF and HEVC files) and MediaPipe runs in IMAGE mode on the chosen ones only.
    ValueError naming the videos when no face is found at all.
    """
    from edgefer.tracking import FaceTracker

    if max_crops < 1:
        raise ValueError(f"need at least one crop, asked for {max_crops}")
    aligner = Aligner(contract.framing, contract.input_size)
    parts: list[np.ndarray] = []
    origins: list[str] = []
    per_video: dict[str, int] = {}
    with FaceTracker(face_model, max_faces=max_faces, mode="image", blendshapes=False) as tracker:
        for k, video in enumerate(videos):
            share = math.ceil((max_crops - sum(per_video.values())) / (len(videos) - k))
            cap = cv2.VideoCapture(str(video))
            if not cap.isOpened():
                raise ValueError(f"{video}: OpenCV cannot open this video")
            n = _frame_count(cap)
            wanted = set(np.linspace(0, n - 1, share).round().astype(int).tolist()) if n else None
            got = 0
            index = 0
            try:
                while got < share:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    if wanted is None or index in wanted:
                        faces = tracker.process(frame)
                        if faces:
                            batch, _ = aligner.crop_batch(frame, [f.landmarks for f in faces])
                            batch = batch[: share - got]
                            parts.append(batch)
                            origins += [f"{video.name}#{index}"] * len(batch)
                            got += len(batch)
                    index += 1
            finally:
                cap.release()
            per_video[video.name] = got
            log.info("%s: %d face crop(s) from %d frame(s) read", video, got, index)
    if not parts:
        raise ValueError(f"no face found in {', '.join(str(v) for v in videos)}: the self-test needs real faces")
    crops = np.concatenate(parts)[:max_crops]
    return CropSet(np.ascontiguousarray(crops), origins[:max_crops], per_video)


# ---- agreement with the reference -----------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """What counts as agreeing with the reference (ONNX Runtime CPU), per kind of arithmetic.

    A tolerance without bounds (`info`) is reported, never judged: it describes the model files,
    not the machine (the INT8 file against the FP32 one differs by its quantisation error wherever
    it runs; `edgefer export onnx --quantize int8` reports and judges that).
    """

    name: str
    min_top1: float | None  # fraction of faces with the same top-1 class
    max_prob_diff: float | None  # largest |p - p_ref| over all faces and classes
    min_att_cos: float | None  # worst face's cosine between attention maps
    meaning: str

    @property
    def judged(self) -> bool:
        return self.min_top1 is not None


#: Stated before any GPU run (none was available when they were set): FP32 on another device
#: differs only by summation order; FP16 keeps about 3 significant digits; INT8 on the same Q/DQ
#: file differs by rounding and fusion. INT8 against the FP32 model carries the quantisation error
#: itself (on the CPU, on 51 video crops: top-1 0.88, max |dp| 0.36; docs/jetson.md): reported only.
TOLERANCES: dict[str, Tolerance] = {
    t.name: t
    for t in (
        Tolerance("fp32", 0.99, 1e-3, 0.9999, "FP32 on another device vs FP32 on the CPU"),
        Tolerance("fp16", 0.97, 0.03, 0.999, "FP16 vs FP32 on the CPU"),
        Tolerance("int8", 0.95, 0.10, 0.99, "INT8 vs the same Q/DQ file on the CPU"),
        Tolerance("info", None, None, None, "reported, not judged (e.g. the INT8 file vs the FP32 file: quantisation error)"),
    )
}


@dataclass
class Agreement:
    name: str
    reference: str
    faces: int
    top1: float
    max_prob_diff: float
    att_cos_min: float
    att_cos_mean: float
    tolerance: str
    passed: bool | None  # None: an `info` row, reported only


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between each face's maps (any trailing shape). Two all-zero maps agree (1.0); one
    all-zero map against a non-zero one does not (0.0)."""
    a2 = np.asarray(a, np.float64).reshape(len(a), -1)
    b2 = np.asarray(b, np.float64).reshape(len(b), -1)
    if a2.shape != b2.shape:
        raise ValueError(f"attention maps differ in shape: {np.shape(a)} vs {np.shape(b)}")
    na, nb = np.linalg.norm(a2, axis=1), np.linalg.norm(b2, axis=1)
    dot = (a2 * b2).sum(axis=1)
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(na * nb > 0, dot / (na * nb), 0.0)
    return np.where(both_zero, 1.0, cos)


def compare(name: str, reference: str, ref: ClassifierOutput, out: ClassifierOutput, tolerance: str) -> Agreement:
    """How far `out` is from `ref` on the same crops, and whether that is within `tolerance`."""
    tol = TOLERANCES[tolerance]
    if ref.probs.shape != out.probs.shape:
        raise ValueError(f"{name} vs {reference}: probabilities differ in shape {out.probs.shape} vs {ref.probs.shape}")
    n = len(ref)
    if n == 0:
        raise ValueError(f"{name} vs {reference}: no faces to compare")
    top1 = float(np.mean(ref.probs.argmax(1) == out.probs.argmax(1)))
    diff = float(np.max(np.abs(ref.probs.astype(np.float64) - out.probs)))
    cos = row_cosines(ref.attention, out.attention)
    passed: bool | None = None
    if tol.min_top1 is not None and tol.max_prob_diff is not None and tol.min_att_cos is not None:
        passed = top1 >= tol.min_top1 and diff <= tol.max_prob_diff and float(cos.min()) >= tol.min_att_cos
    return Agreement(name, reference, n, top1, diff, float(cos.min()), float(cos.mean()), tolerance, passed)


# ---- latency ----------------------------------------------------------------------------------


@dataclass
class Latency:
    backend: str
    model: str
    batch: int
    calls: int
    ms_per_call: float  # median
    ms_per_face: float
    first_call_s: float  # the first call at this batch (engine/kernel setup shows up here)


def batch_of(crops: np.ndarray, batch: int) -> np.ndarray:
    """`batch` crops: the first ones, repeated when there are fewer."""
    if len(crops) == 0:
        raise ValueError("no crops to time with")
    reps = math.ceil(batch / len(crops))
    return np.ascontiguousarray(np.concatenate([crops] * reps)[:batch]) if reps > 1 else np.ascontiguousarray(crops[:batch])


def time_classifier(
    clf: Classifier, crops: np.ndarray, batch: int, *, iters: int = 100, budget_s: float = 20.0, name: str | None = None
) -> Latency:
    """Median time of `predict` (preprocessing, inference, softmax: what the pipeline pays per
    frame) at `batch` faces. Two warm-up calls after the first; then up to `iters` timed calls, fewer
    when `budget_s` runs out (at least three)."""
    x = batch_of(crops, batch)
    t0 = time.perf_counter()
    clf.predict(x)
    first = time.perf_counter() - t0
    for _ in range(2):
        clf.predict(x)
    times: list[float] = []
    stop = time.perf_counter() + budget_s
    while len(times) < max(3, iters) and (len(times) < 3 or time.perf_counter() < stop):
        t = time.perf_counter()
        clf.predict(x)
        times.append(time.perf_counter() - t)
        if len(times) >= iters:
            break
    med = statistics.median(times) * 1000.0
    return Latency(name or clf.backend_name, clf.source.name, batch, len(times), med, med / batch, first)


# ---- the pipeline -----------------------------------------------------------------------------


@dataclass
class PipelineRun:
    video: str
    backend: str
    model: str
    frames: int
    faces: int
    mean_fps: float
    track_p50_ms: float
    classify_p50_ms: float
    end_to_end_p50_ms: float
    outputs: list[str]
    error: str = ""


def _p50(stats: Any, name: str) -> float:
    try:
        s = stats.stage(name)
    except KeyError:
        return float("nan")
    return float(s.p50_ms) if s.count else float("nan")


def run_pipeline(
    video: Path,
    model: Path,
    backend: str,
    out_dir: Path,
    *,
    max_frames: int = 150,
    face_model: Path | None = None,
    max_faces: int = 4,
) -> PipelineRun:
    """`edgefer run --headless --record --csv` on `video` with `model` on `backend`, as a library
    call; faults come back in `error` (the self-test goes on with the next video)."""
    from edgefer.pipeline.runner import Pipeline, PipelineError
    from edgefer.pipeline.settings import PipelineSettings

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{video.stem}.{backend}"
    settings = PipelineSettings(
        source=str(video),
        model=model,
        backend=backend,
        face_model=face_model,
        max_faces=max_faces,
        headless=True,
        max_frames=max_frames,
        record={"path": out_dir / f"{stem}.mp4"},
        csv=out_dir / f"{stem}.csv",
    )
    errors: list[str] = []
    try:
        with Pipeline(settings, on_event=lambda e: errors.append(e.message) if e.kind == "error" else None) as p:
            p.start()
            p.wait()
        st = p.stats()
    except (PipelineError, OSError, ValueError, RuntimeError) as exc:
        return PipelineRun(video.name, backend, model.name, 0, 0, 0.0, math.nan, math.nan, math.nan, [], f"{video}: {exc}")
    e2e = float(st.end_to_end.p50_ms) if st.end_to_end and st.end_to_end.count else math.nan
    return PipelineRun(
        video.name, st.backend or backend, model.name, st.frames_processed, st.faces, float(st.mean_fps),
        _p50(st, "track"), _p50(st, "classify"), e2e, list(st.outputs), "; ".join(errors),
    )


# ---- TensorRT's view of a Q/DQ file -------------------------------------------------------------


def qdq_tensorrt_issues(onnx_path: Path) -> list[str] | None:
    """Why TensorRT would refuse this file's Q/DQ nodes, read from the file ([] = nothing found).

    TensorRT quantises symmetrically to signed INT8 only (its "Working with Quantized Types"
    guide): a QuantizeLinear/DequantizeLinear with a uint8 zero point, or any non-zero zero point,
    is rejected by its ONNX parser. ONNX Runtime's recommended CPU pairing (U8 activations, S8
    weights) produces exactly those, so an INT8 file made for the CPU may not build on a GPU.
    Needs the `onnx` package (the export extra); None when it is not installed (the TensorRT build
    itself will then say).
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    model = onnx.load(str(onnx_path), load_external_data=False)
    init = {t.name: t for t in model.graph.initializer}
    uint8 = nonzero = 0
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3 or node.input[2] not in init:
            continue
        zp = numpy_helper.to_array(init[node.input[2]])
        if zp.dtype == np.uint8:
            uint8 += 1
        if np.any(zp != 0):
            nonzero += 1
    issues = []
    if uint8:
        issues.append(f"{uint8} Q/DQ node(s) with uint8 zero points (TensorRT takes signed INT8 only)")
    if nonzero:
        issues.append(f"{nonzero} Q/DQ node(s) with non-zero zero points (TensorRT quantises symmetrically: zero point 0)")
    return issues


# ---- the report ---------------------------------------------------------------------------------


@dataclass
class EngineBuild:
    name: str
    onnx: str
    precision: str
    engine: str = ""
    seconds: float = 0.0
    size_mb: float = 0.0
    qdq_issues: list[str] | None = None
    error: str = ""


@dataclass
class Skipped:
    what: str
    why: str


@dataclass
class SelftestReport:
    """Everything one self-test run found; `to_json` is the `--report` file."""

    mode: str  # "gpu" | "cpu"
    time_limit_s: float
    environment: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    crops: dict[str, Any] = field(default_factory=dict)
    builds: list[EngineBuild] = field(default_factory=list)
    agreement: list[Agreement] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    pipeline: list[PipelineRun] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    started_utc: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def status(self) -> str:
        """"unavailable" (what --gpu needs is missing), "fail" (a check failed or a stage broke),
        else "pass". Skipped stages (an optional backend absent, the time limit) do not fail."""
        if self.missing:
            return "unavailable"
        if (
            self.errors
            or any(a.passed is False for a in self.agreement)
            or any(b.error for b in self.builds)
            or any(p.error for p in self.pipeline)
        ):
            return "fail"
        return "pass"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status
        d["tolerances"] = {k: asdict(v) for k, v in TOLERANCES.items()}
        return d

    def to_json(self) -> str:
        def clean(v: Any) -> Any:  # NaN is not JSON: an absent figure is null
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return json.dumps(clean(self.to_dict()), indent=2) + "\n"

    def write(self, path: Path) -> Path:
        from edgefer.atomic_write import write_text_atomically

        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomically(path, self.to_json())


def environment() -> dict[str, Any]:
    """What the figures were measured on (no GPU library is required for this)."""
    from edgefer import __version__
    from edgefer.runtime.onnx_backend import available_ort_backends
    from edgefer.runtime.trt_env import cuda_device, cuda_runtime_version, tensorrt_version

    env: dict[str, Any] = {
        "edgefer": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "opencv": cv2.__version__,
    }
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["onnxruntime_providers"] = list(ort.get_available_providers())
    except ImportError:
        env["onnxruntime"] = None
    env["ort_backends"] = available_ort_backends()
    env["tensorrt"] = tensorrt_version()
    env["cuda_runtime"] = cuda_runtime_version()
    dev = cuda_device()
    env["cuda_device"] = asdict(dev) if dev is not None else None
    model = Path("/proc/device-tree/model")
    env["jetson"] = model.read_text(errors="replace").strip("\x00\n ") if model.is_file() else None
    env["nvidia_smi"] = shutil.which("nvidia-smi") is not None
    return env


def _f(v: float, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _verdict(passed: bool | None) -> str:
    return "(reported only)" if passed is None else "PASS" if passed else "FAIL"


def format_table(report: SelftestReport) -> str:
    """The human-readable summary `edgefer selftest` prints (the JSON report has everything)."""
    env = report.environment
    dev = env.get("cuda_device") or {}
    where = dev.get("name") or env.get("jetson") or f"{env.get('machine', '?')} CPU"
    lines = [
        f"edgefer selftest ({report.mode}) on {where}: {report.status.upper()} in {report.elapsed_s:.0f} s "
        f"(limit {report.time_limit_s:.0f} s)",
        f"  ONNX Runtime {env.get('onnxruntime')} [{', '.join(env.get('ort_backends') or []) or 'none'}], "
        f"TensorRT {env.get('tensorrt') or 'absent'}, CUDA runtime {env.get('cuda_runtime') or 'absent'}",
    ]
    if report.missing:
        lines.append("missing for --gpu:")
        lines += [f"  - {m}" for m in report.missing]
    if report.crops:
        per = ", ".join(f"{k} {v}" for k, v in report.crops.get("per_video", {}).items())
        lines.append(f"crops: {report.crops.get('count', 0)} real face crops ({per})")
    if report.builds:
        lines.append(f"{'engine build':<22}{'precision':>10}{'seconds':>9}{'MB':>7}  result")
        for b in report.builds:
            result = "ok" if not b.error else f"FAILED: {b.error}"
            lines.append(f"{b.name:<22}{b.precision:>10}{_f(b.seconds, '.1f'):>9}{_f(b.size_mb, '.1f'):>7}  {result}")
            for issue in b.qdq_issues or []:
                lines.append(f"{'':<22}  Q/DQ: {issue}")
    if report.agreement:
        lines.append(f"{'agreement':<22}{'reference':<22}{'faces':>6}{'top-1':>7}{'max|dp|':>9}{'att-cos min':>12}"
                     f"{'mean':>8}  tolerance")
        for a in report.agreement:
            lines.append(
                f"{a.name:<22}{a.reference:<22}{a.faces:>6}{a.top1:>7.3f}{a.max_prob_diff:>9.2e}{a.att_cos_min:>12.5f}"
                f"{a.att_cos_mean:>8.5f}  {a.tolerance} {_verdict(a.passed)}"
            )
    if report.latency:
        batches = sorted({t.batch for t in report.latency})
        lines.append(f"{'latency ms/face':<22}{'model':<28}" + "".join(f"{'batch ' + str(b):>10}" for b in batches)
                     + f"{'first call s':>14}")
        keys: list[tuple[str, str]] = []
        for t in report.latency:
            if (t.backend, t.model) not in keys:
                keys.append((t.backend, t.model))
        for backend, model in keys:
            rows = {t.batch: t for t in report.latency if (t.backend, t.model) == (backend, model)}
            cells = "".join(f"{_f(rows[b].ms_per_face, '.3f') if b in rows else '-':>10}" for b in batches)
            first = max(t.first_call_s for t in rows.values())
            lines.append(f"{backend:<22}{model:<28}{cells}{first:>14.2f}")
    if report.pipeline:
        w = max(len("pipeline"), *(len(p.video) for p in report.pipeline)) + 2
        lines.append(f"{'pipeline':<{w}}{'backend':<16}{'frames':>7}{'faces':>6}{'fps':>7}{'track p50':>10}"
                     f"{'classify p50':>13}  result")
        for p in report.pipeline:
            lines.append(
                f"{p.video:<{w}}{p.backend:<16}{p.frames:>7}{p.faces:>6}{_f(p.mean_fps, '.1f'):>7}"
                f"{_f(p.track_p50_ms, '.2f'):>10}{_f(p.classify_p50_ms, '.2f'):>13}  {'ok' if not p.error else p.error}"
            )
    for s in report.skipped:
        lines.append(f"skipped: {s.what}: {s.why}")
    for e in report.errors:
        lines.append(f"error: {e}")
    return "\n".join(lines)


# ---- the loop every mode shares -----------------------------------------------------------------


@dataclass
class Candidate:
    """One backend to check: how to load it, what to compare it with, how strictly.

    `load` may build an engine first (and record the build in the report); an exception from it
    is recorded as this candidate's error and the self-test goes on with the next one.
    `references`: (reference name, tolerance name) pairs; reference names key `references` in
    `check_candidates`.
    """

    name: str
    load: Callable[[], Classifier]
    references: tuple[tuple[str, str], ...]
    timed: bool = True


def check_candidates(
    report: SelftestReport,
    candidates: Sequence[Candidate],
    crops: np.ndarray,
    references: dict[str, ClassifierOutput],
    deadline: Deadline,
    *,
    batches: Sequence[int] = (1, 8),
    iters: int = 100,
    min_left_s: float = 30.0,
) -> dict[str, Path]:
    """Load, compare and time each candidate in turn; returns the model file each loaded from
    (the pipeline stage runs the one it needs). Stages that would start with less than
    `min_left_s` of the time limit left are skipped and say so."""
    sources: dict[str, Path] = {}
    for cand in candidates:
        if deadline.left() < min_left_s:
            report.skipped.append(Skipped(cand.name, f"time limit: {deadline.left():.0f} s left"))
            continue
        try:
            clf = cand.load()
        except Exception as exc:  # noqa: BLE001 - one backend's failure is a finding, not the end of the test
            log.warning("%s could not be loaded: %s", cand.name, exc)
            report.errors.append(f"{cand.name}: {exc}")
            continue
        with clf:
            try:
                out = clf.predict(crops)
                for ref_name, tol in cand.references:
                    report.agreement.append(compare(cand.name, ref_name, references[ref_name], out, tol))
                sources[cand.name] = clf.source
                if not cand.timed:
                    continue
                for b in batches:
                    budget = min(20.0, max(1.0, (deadline.left() - min_left_s) / 4))
                    report.latency.append(time_classifier(clf, crops, b, iters=iters, budget_s=budget, name=cand.name))
            except Exception as exc:  # noqa: BLE001 - e.g. a provider listed at build time with no kernel for this GPU
                # ONNX Runtime lists the providers it was compiled with; a wheel built for another GPU
                # architecture loads fine and fails at the first run. That is a finding for this row.
                log.warning("%s failed while running: %s", cand.name, exc)
                report.errors.append(f"{cand.name}: {clf.source}: {exc}")
    return sources

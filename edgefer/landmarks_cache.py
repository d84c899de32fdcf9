"""The landmark cache of an image dataset (FER2013): MediaPipe's 478 points for every image, once.

Training draws AU maps from landmarks of the exact stored images (method.md §3), for ~36k images at
every epoch, so they are computed once, offline, and read back in well under a second.

Layout of a cache folder:
- `shard-<UTC time><ns>-<pid>-<n>.npz`: up to `SHARD_SIZE` entries each, arrays `relpaths` (unicode),
  `landmarks` (N, 478, 2) float16 and `status` (N,) int8. A shard is written to a temp name and
  renamed, so a killed run keeps every finished shard and never leaves a half-written one; a re-run
  computes only what no shard holds yet (resumable). Shard names are unique per process, so two
  runs on the same folder do not overwrite each other (a duplicate entry just wins by name order).
  Format 2 adds `sizes` (N, 2) int32, each image's (height, width).
- `cache.json`: what produced it (face model sha256, fallback variants), for the record.

Landmarks are pixel coordinates of the stored image (MediaPipe's convention, x * width). float16
keeps 48x48 coordinates to 1/32 px (spacing of float16 between 32 and 64), far below MediaPipe's own
noise (~0.5 px between variants), at half the size of float32. They are returned as float32.

`status` per entry: >= 0 the index of the variant whose landmarks were kept (see
`edgefer.tracking.still.DEFAULT_VARIANTS` and the plausibility check in `StillLandmarker`),
`NO_FACE` (-1: no plausible face) or `UNREADABLE` (-2). Unreadable files
(not an image, truncated) are recorded too, so a re-run does not retry them forever.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefer.atomic_write import atomic_path, write_text_atomically
from edgefer.tracking.blendshapes import NUM_LANDMARKS

log = logging.getLogger(__name__)

SHARD_SIZE = 500
NO_FACE = -1
UNREADABLE = -2
SHARD_GLOB = "shard-*.npz"
MANIFEST = "cache.json"

#: What a damaged .npz shard raises from np.load or a lazy member read: a truncated or overwritten
#: zip (BadZipFile: "File is not a zip file", "Bad CRC-32 ..."), a cut deflate stream (zlib.error,
#: EOFError), an unreadable file (OSError), a bad .npy header (ValueError), a missing array (KeyError).
_SHARD_DAMAGE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


class LandmarkCacheError(ValueError):
    """A landmark cache that cannot be read; the message names the shard and what to do."""


@dataclass
class LandmarkSummary:
    """Counts over the requested images (cached ones included), and this run's time."""

    images: int
    faces_found: int
    failures: int  # readable images where no variant found a face
    unreadable: int
    seconds: float
    computed: int = 0  # images actually run through MediaPipe in this call (the rest were cached)

    @property
    def found_pct(self) -> float:
        readable = self.images
        return 100.0 * self.faces_found / readable if readable else 0.0

    def __str__(self) -> str:
        return (
            f"images: {self.images}, faces found: {self.faces_found} ({self.found_pct:.2f}%), "
            f"failures: {self.failures}, unreadable: {self.unreadable}, seconds: {self.seconds:.1f} "
            f"(computed now: {self.computed})"
        )


def _posix(relpath: str) -> str:
    return Path(relpath).as_posix()


class LandmarkCache:
    """Read access to a cache folder: relpath -> (478, 2) float32 landmarks or None.

    `open` loads every shard into memory (about 70 MB of float16 for FER2013); lookups are dict
    lookups. A relpath never computed is not `in` the cache and `get` raises KeyError for it, so
    "no face" (None) and "not computed yet" are never confused.
    """

    def __init__(
        self, root: Path, relpaths: list[str], landmarks: np.ndarray, status: np.ndarray, sizes: np.ndarray
    ):
        self.root = root
        self._landmarks = landmarks
        self._status = status
        self._sizes = sizes
        # Later shards win for duplicates (sorted names: later time stamp).
        self._index: dict[str, int] = {p: i for i, p in enumerate(relpaths)}

    @classmethod
    def open(cls, cache_dir: str | Path) -> LandmarkCache:
        root = Path(cache_dir)
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"landmark cache {root} is a file, not a folder")
        root.mkdir(parents=True, exist_ok=True)
        paths: list[str] = []
        marks: list[np.ndarray] = []
        status: list[np.ndarray] = []
        sizes: list[np.ndarray] = []
        for shard in sorted(root.glob(SHARD_GLOB)):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    rel = [str(p) for p in data["relpaths"]]
                    lm = data["landmarks"]
                    st = data["status"]
                    # `sizes` (h, w) arrived with format 2; older shards: unknown (0, 0).
                    sz = data["sizes"] if "sizes" in data.files else np.zeros((len(rel), 2), np.int32)
            except _SHARD_DAMAGE as exc:
                raise LandmarkCacheError(
                    f"landmark cache shard {shard} is unreadable ({type(exc).__name__}: {exc}); delete it and re-run "
                    "`edgefer landmarks` to recompute its images"
                ) from exc
            if lm.shape != (len(rel), NUM_LANDMARKS, 2) or st.shape != (len(rel),):
                raise LandmarkCacheError(
                    f"landmark cache shard {shard} has inconsistent shapes {lm.shape}, {st.shape}; delete it and "
                    "re-run `edgefer landmarks` to recompute its images"
                )
            paths.extend(rel)
            marks.append(lm)
            status.append(st)
            sizes.append(sz.astype(np.int32))
        landmarks = np.concatenate(marks) if marks else np.zeros((0, NUM_LANDMARKS, 2), np.float16)
        stat = np.concatenate(status) if status else np.zeros((0,), np.int8)
        size = np.concatenate(sizes) if sizes else np.zeros((0, 2), np.int32)
        return cls(root, paths, landmarks, stat, size)

    def __contains__(self, relpath: object) -> bool:
        return isinstance(relpath, str) and _posix(relpath) in self._index

    def __len__(self) -> int:
        return len(self._index)

    def get(self, relpath: str) -> np.ndarray | None:
        """(478, 2) float32 pixel coordinates, or None for no face / unreadable; KeyError if never computed."""
        i = self._row(relpath)
        if self._status[i] < 0:
            return None
        return self._landmarks[i].astype(np.float32)

    def status(self, relpath: str) -> int:
        """The variant index that found the face, NO_FACE (-1) or UNREADABLE (-2)."""
        return int(self._status[self._row(relpath)])

    def items(self) -> Iterator[tuple[str, np.ndarray | None]]:
        """(relpath, landmarks or None) in sorted relpath order."""
        for relpath in sorted(self._index):
            yield relpath, self.get(relpath)

    def image_size(self, relpath: str) -> tuple[int, int] | None:
        """(height, width) of the image as computed, or None (unreadable, or an older shard)."""
        i = self._row(relpath)
        h, w = (int(v) for v in self._sizes[i])
        return (h, w) if h > 0 and w > 0 else None

    def uncertain(self, relpath: str, long_side: float, confirm_below: float | None = None) -> bool:
        """True when an entry did not come from the trusted path (first variant, large face):
        no face, unreadable, a fallback variant, or a face smaller than `confirm_below` x the
        image's `long_side`. These are what `compute_landmarks(redo_uncertain=True)` recomputes
        after the fallback policy changes; trusted entries would come out identical."""
        from edgefer.tracking.still import CONFIRM_BELOW

        i = self._row(relpath)
        if self._status[i] != 0:
            return True
        size = float(np.ptp(self._landmarks[i].astype(np.float32), axis=0).min())
        return size < (CONFIRM_BELOW if confirm_below is None else confirm_below) * long_side

    def _row(self, relpath: str) -> int:
        i = self._index.get(_posix(relpath))
        if i is None:
            raise KeyError(f"{relpath!r} is not in the landmark cache {self.root} (run `edgefer landmarks`)")
        return i

    def summarize(self, relpaths: Sequence[str] | None = None, seconds: float = 0.0, computed: int = 0) -> LandmarkSummary:
        """Counts over `relpaths` (default: everything cached); relpaths not cached count as nothing."""
        keys = list(self._index) if relpaths is None else [_posix(p) for p in relpaths]
        idx = np.array([self._index[k] for k in keys if k in self._index], dtype=np.int64)
        st = self._status[idx] if len(idx) else np.zeros((0,), np.int8)
        return LandmarkSummary(
            images=len(keys),
            faces_found=int((st >= 0).sum()),
            failures=int((st == NO_FACE).sum()),
            unreadable=int((st == UNREADABLE).sum()),
            seconds=seconds,
            computed=computed,
        )


def list_images(data_dir: str | Path) -> list[str]:
    """Sorted POSIX relpaths `<split>/<class>/<file>` of every file three levels under `data_dir`.

    Every regular file counts (not only known image suffixes), so a stray non-image is reported as
    unreadable instead of silently ignored; hidden files (`.DS_Store`, editor swap files) are skipped.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"dataset folder {root} does not exist (expected <split>/<class>/<image>)")
    out = [
        p.relative_to(root).as_posix()
        for p in root.glob("*/*/*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(out)


class _ShardWriter:
    """Buffers results and writes them as shards (temp file, fsync, rename)."""

    def __init__(self, root: Path, shard_size: int | None = None):
        self.root = root
        self.shard_size = shard_size or SHARD_SIZE
        self._paths: list[str] = []
        self._marks: list[np.ndarray] = []
        self._status: list[int] = []
        self._sizes: list[tuple[int, int]] = []
        self._count = 0
        # UTC date-time, then nanoseconds, then pid: unique per run even for two runs in one process
        # and second, and name order is time order (later duplicates win when the cache is opened).
        now = time.time_ns()
        self._stamp = f"{time.strftime('%Y%m%d%H%M%S', time.gmtime(now // 10**9))}{now % 10**9:09d}-{os.getpid()}"

    def add(self, relpath: str, landmarks: np.ndarray | None, status: int, size: tuple[int, int] = (0, 0)) -> None:
        self._paths.append(relpath)
        self._sizes.append(size)
        self._marks.append(
            np.full((NUM_LANDMARKS, 2), np.nan, np.float16) if landmarks is None else landmarks.astype(np.float16)
        )
        self._status.append(status)
        if len(self._paths) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._paths:
            return
        name = self.root / f"shard-{self._stamp}-{self._count:05d}.npz"
        while name.exists():  # never overwrite a finished shard
            self._count += 1
            name = self.root / f"shard-{self._stamp}-{self._count:05d}.npz"
        with atomic_path(name) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                relpaths=np.array(self._paths, dtype=str),
                landmarks=np.stack(self._marks),
                status=np.array(self._status, dtype=np.int8),
                sizes=np.array(self._sizes, dtype=np.int32).reshape(-1, 2),
            )
            fh.flush()
            os.fsync(fh.fileno())
        log.debug("wrote %s (%d entries)", name, len(self._paths))
        self._count += 1
        self._paths, self._marks, self._status, self._sizes = [], [], [], []


def _read_rgb(path: Path) -> np.ndarray | None:
    data = np.fromfile(path, dtype=np.uint8) if path.stat().st_size else np.zeros(0, np.uint8)
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _write_manifest(root: Path, face_model_path: Path) -> None:
    from edgefer.face_model import sha256_of
    from edgefer.tracking.still import AGREE_TOL, CONFIRM_BELOW, DEFAULT_VARIANTS, MIN_FACE

    manifest = {
        "format": 2,
        "face_model_sha256": sha256_of(face_model_path),
        "landmarks": "MediaPipe FaceLandmarker 478 points, pixels of the stored image (x*width, y*height), float16",
        "status": "variant index >= 0, -1 no plausible face, -2 unreadable",
        "variants": [asdict(v) for v in DEFAULT_VARIANTS],
        "policy": {"confirm_below": CONFIRM_BELOW, "min_face": MIN_FACE, "agree_tol": AGREE_TOL},
    }
    write_text_atomically(root / MANIFEST, json.dumps(manifest, indent=2))


def _uncertain(cache: LandmarkCache, data_root: Path, relpath: str) -> bool:
    size = cache.image_size(relpath)
    if size is None and cache.status(relpath) == 0:  # older shard: look at the image itself
        image = cv2.imread(str(data_root / relpath), cv2.IMREAD_UNCHANGED)
        size = image.shape[:2] if image is not None else None
    return size is None or cache.uncertain(relpath, float(max(size)))


def compute_landmarks(
    data_dir: str | Path,
    cache_dir: str | Path,
    relpaths: Sequence[str] | None = None,
    face_model: str | Path | None = None,
    progress: bool = True,
    redo_uncertain: bool = False,
) -> LandmarkSummary:
    """Compute what the cache lacks for `relpaths` (default: every image under `data_dir`).

    Resumable: entries already in a shard are skipped; an interruption (Ctrl-C, kill) loses at most
    the current unfinished shard (a KeyboardInterrupt still writes it). Unreadable files are recorded
    and counted, not fatal. Returns counts over all requested images, cached ones included.
    `redo_uncertain` also recomputes entries `LandmarkCache.uncertain` flags (after a change of the
    fallback policy); the new results go to newer shards, which win over the old entries.
    """
    from tqdm import tqdm

    from edgefer.face_model import resolve_face_model
    from edgefer.tracking.still import StillLandmarker

    start = time.perf_counter()
    data_root = Path(data_dir)
    if not data_root.is_dir():
        raise NotADirectoryError(f"dataset folder {data_root} does not exist")
    wanted = list_images(data_root) if relpaths is None else [_posix(p) for p in relpaths]
    cache = LandmarkCache.open(cache_dir)
    todo = [p for p in dict.fromkeys(wanted) if p not in cache or (redo_uncertain and _uncertain(cache, data_root, p))]
    log.info("%d images requested, %d to compute (the rest are cached)", len(wanted), len(todo))
    if todo:
        model_path = resolve_face_model(face_model)
        _write_manifest(cache.root, model_path)
        writer = _ShardWriter(cache.root)
        bar = tqdm(total=len(todo), desc="landmarks", unit="img", disable=not progress, smoothing=0.05)
        found = 0
        try:
            with StillLandmarker(model_path) as landmarker:
                for done, relpath in enumerate(todo, 1):
                    file = data_root / relpath
                    try:
                        image = _read_rgb(file)
                    except OSError as exc:
                        log.warning("%s: cannot read (%s)", file, exc)
                        image = None
                    if image is None:
                        log.warning("%s: not a readable image; skipped and recorded as unreadable", file)
                        writer.add(relpath, None, UNREADABLE)
                    else:
                        marks, variant = landmarker.detect(image)
                        writer.add(relpath, marks, variant if marks is not None else NO_FACE, image.shape[:2])
                        found += marks is not None
                    bar.update(1)
                    if done % 100 == 0:
                        bar.set_postfix(found=f"{100.0 * found / done:.1f}%")
        finally:
            writer.flush()
            bar.close()
        cache = LandmarkCache.open(cache.root)
    return cache.summarize(wanted, seconds=time.perf_counter() - start, computed=len(todo))


@dataclass
class VariantStat:
    """How one presentation variant fares on a sample (see `measure_variants`)."""

    name: str
    found_pct: float  # this variant alone
    chain_pct: float | None  # the default chain up to and including this variant (None: not in it)
    ms_per_image: float
    median_shift_px: float | None  # median mean |landmark - first variant's landmark| where both found


def measure_variants(
    data_dir: str | Path,
    sample: int = 500,
    seed: int = 1,
    relpaths: Sequence[str] | None = None,
    face_model: str | Path | None = None,
    progress: bool = True,
) -> tuple[int, list[VariantStat]]:
    """Run every candidate variant on a fixed random sample: the figures behind the default chain.

    Returns (images measured, one VariantStat per variant: the default chain first, in order, then
    the alternatives, then one named "policy": `StillLandmarker.detect`, i.e. the chain with its
    plausibility check, as the cache uses it). Unreadable files are left out of the sample.
    """
    import random

    from tqdm import tqdm

    from edgefer.tracking.still import ALTERNATIVE_VARIANTS, DEFAULT_VARIANTS, StillLandmarker

    pool = list_images(data_dir) if relpaths is None else [_posix(p) for p in relpaths]
    random.Random(seed).shuffle(pool)
    chosen = pool[: max(1, sample)]
    variants = DEFAULT_VARIANTS + ALTERNATIVE_VARIANTS
    found = np.zeros((len(chosen), len(variants)), bool)
    policy_found = np.zeros(len(chosen), bool)
    policy_seconds = 0.0
    marks: list[list[np.ndarray | None]] = []
    seconds = np.zeros(len(variants))
    images = 0
    with StillLandmarker(face_model, variants=variants) as landmarker:
        for relpath in tqdm(chosen, desc="variants", unit="img", disable=not progress):
            image = _read_rgb(Path(data_dir) / relpath)
            if image is None:
                continue
            row: list[np.ndarray | None] = []
            for k, variant in enumerate(variants):
                t0 = time.perf_counter()
                m = landmarker.detect_variant(image, variant)
                seconds[k] += time.perf_counter() - t0
                found[images, k] = m is not None
                row.append(m)
            t0 = time.perf_counter()
            policy_found[images] = landmarker.detect(image)[0] is not None
            policy_seconds += time.perf_counter() - t0
            marks.append(row)
            images += 1
    found = found[:images]
    stats: list[VariantStat] = []
    for k, variant in enumerate(variants):
        in_chain = k < len(DEFAULT_VARIANTS)
        shifts = [
            float(np.abs(row[k] - row[0]).mean()) for row in marks if row[k] is not None and row[0] is not None
        ]
        stats.append(
            VariantStat(
                name=variant.name,
                found_pct=100.0 * found[:, k].mean() if images else 0.0,
                chain_pct=100.0 * found[:, : k + 1].any(axis=1).mean() if in_chain and images else None,
                ms_per_image=1000.0 * seconds[k] / max(images, 1),
                median_shift_px=float(np.median(shifts)) if shifts and k > 0 else None,
            )
        )
    stats.append(
        VariantStat(
            name="policy",
            found_pct=100.0 * policy_found[:images].mean() if images else 0.0,
            chain_pct=None,
            ms_per_image=1000.0 * policy_seconds / max(images, 1),
            median_shift_px=None,
        )
    )
    return images, stats

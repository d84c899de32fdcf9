"""The Numba AU-map rasteriser: landmarks + expression -> soft AU map (and Ekman mask), fast.

Blob profile (the decision method.md leaves open): a *softened ellipse* with compact support. For a
pixel at signed distance d from an ellipse's boundary (negative inside), the blob value is the
smoothstep S(x) = x^2 (3 - 2x) of x = clamp((w - d) / (2w), 0, 1): exactly 1 for d <= -w, exactly 0
for d >= w, exactly 0.5 on the boundary, smooth (C1) in between. The edge half-width is
w = min(`EDGE` * IOD, min(semi-axes)): a ramp that scales with the face, 0.3 IOD wide (about 24 px at
224x224 with IOD ~ 78 px, like the reference's filled ellipses blurred at 1/8 resolution, method.md
§2.1), narrowed for thin shapes so that every blob still reaches exactly 1 at its centre (the
reference's small eye ellipses lost their peak in the blur; an artefact not worth keeping).

d is the first-order distance (q - 1) / |grad q| of the normalised elliptic radius q (exact on the
axes and for circles). Outside the ellipse it is raised to at least (q - 1) * min(a, b): both are
lower bounds of the true distance (q is a convex norm), the second much closer far from a thin
ellipse, and together they confine a blob to the ellipse scaled by 1 + w / min(a, b), which bounds the
work per shape. The AU blobs are combined by pixel-wise max and min-max normalised to [0, 1]
(method.md §2.2-2.3). Because every blob is 0.5 on its boundary, the Ekman mask (the union of the
ellipse interiors) is exactly the set of pixels where the unnormalised map is >= 0.5.

"No map" (the functions return False / valid=False): neutral, non-finite landmarks, a degenerate face
(eye centres coincide), no pixel centre inside any ellipse (all shapes outside the image), or a map
with no contrast (max - min below 1e-6, e.g. a crop that lies entirely inside one region).

The kernels compile lazily on first call (`cache=True` keeps the machine code on disk, so later
processes load it in well under a second); importing this module compiles nothing. They are
single-threaded on purpose: training calls them inside DataLoader workers, which already use the
cores.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from edgefer.au.codebook import CODEBOOK
from edgefer.au.mesh import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS
from edgefer.au.regions import AU_BY_NUMBER, Group, Shape
from edgefer.classes import NUM_CLASSES

#: Half-width of a blob's soft edge, in IOD units (about 12 px at 224x224, 2.5 px on a 48x48 crop).
EDGE = 0.15
#: Maps whose max - min is below this carry no spatial cue and are reported as "no map".
MIN_CONTRAST = 1e-6

_GROUP_WIDTH = 4  # mesh points per averaged group (the table uses at most 4)
_EL, _EL2 = LEFT_EYE_CORNERS
_ER, _ER2 = RIGHT_EYE_CORNERS


class PackedTable:
    """The AU table as flat arrays a Numba kernel can read (built once from `regions.AU_REGIONS`).

    groups: `g_idx` (G, 4) mesh indices and `g_w` (G, 4) weights (a group's mean = sum w * p).
    shapes: `s_int` (S, 5) group ids [centre, span_x a, span_x b, span_y a, span_y b] (-1 = none) and
    `s_flt` (S, 6) [base ax, base ay, span scale, span scale, pad x, pad y] in IOD units.
    expressions: `e_shapes` (7, K) shape ids (-1 padded) and `e_count` (7,).
    """

    def __init__(self) -> None:
        groups: dict[Group, int] = {}
        shapes: dict[Shape, int] = {}

        def gid(g: Group | None) -> int:
            if g is None:
                return -1
            if len(g) > _GROUP_WIDTH:
                raise ValueError(f"AU table group {g} has more than {_GROUP_WIDTH} points")
            return groups.setdefault(g, len(groups))

        s_int: list[list[int]] = []
        s_flt: list[list[float]] = []

        def sid(s: Shape) -> int:
            if s not in shapes:
                sx = s.span_x or (None, None)
                sy = s.span_y or (None, None)
                s_int.append([gid(s.centre), gid(sx[0]), gid(sx[1]), gid(sy[0]), gid(sy[1])])
                s_flt.append([*s.semi_axes, s.span_scale, s.span_scale, *s.pad])
                shapes[s] = len(shapes)
            return shapes[s]

        per_expr = [[sid(s) for n in CODEBOOK[e] for s in AU_BY_NUMBER[n].shapes] for e in range(NUM_CLASSES)]
        k = max(1, max(len(p) for p in per_expr))
        self.e_shapes = np.full((NUM_CLASSES, k), -1, dtype=np.int64)
        self.e_count = np.zeros(NUM_CLASSES, dtype=np.int64)
        for e, ids in enumerate(per_expr):
            self.e_shapes[e, : len(ids)] = ids
            self.e_count[e] = len(ids)
        self.g_idx = np.zeros((len(groups), _GROUP_WIDTH), dtype=np.int64)
        self.g_w = np.zeros((len(groups), _GROUP_WIDTH), dtype=np.float64)
        for g, i in groups.items():
            self.g_idx[i, : len(g)] = g
            self.g_w[i, : len(g)] = 1.0 / len(g)
        self.s_int = np.array(s_int, dtype=np.int64).reshape(-1, 5)
        self.s_flt = np.array(s_flt, dtype=np.float64).reshape(-1, 6)


_TABLE: PackedTable | None = None


def table() -> PackedTable:
    global _TABLE
    if _TABLE is None:
        _TABLE = PackedTable()
    return _TABLE


@numba.njit(cache=True, nogil=True)
def _group_mean(lm, g_idx, g_w, g):  # pragma: no cover - compiled
    x = 0.0
    y = 0.0
    for k in range(g_idx.shape[1]):
        w = g_w[g, k]
        if w != 0.0:
            x += w * lm[g_idx[g, k], 0]
            y += w * lm[g_idx[g, k], 1]
    return x, y


@numba.njit(cache=True, nogil=True)
def _span(lm, g_idx, g_w, ga, gb, dx, dy):  # pragma: no cover - compiled
    ax, ay = _group_mean(lm, g_idx, g_w, ga)
    bx, by = _group_mean(lm, g_idx, g_w, gb)
    return abs((bx - ax) * dx + (by - ay) * dy)


@numba.njit(cache=True, nogil=True)
def _draw_ellipse(dist, mask, cx, cy, a, b, c, s, edge):  # pragma: no cover - compiled
    """Min-composite one ellipse's signed boundary distance in edge units, t = d / edge, into `dist`
    wherever t < 1 (its support), and OR its interior into `mask` (if it has rows). Returns the number
    of pixel centres inside the ellipse.

    Keeping the smallest t instead of the largest blob value gives the same max of blobs (the profile
    is monotone in t) with one profile evaluation per pixel at the end instead of one per shape."""
    h, w = dist.shape
    inv_edge = 1.0 / edge
    inner = min(a, b)
    # Support: the ellipse scaled by q_max. Beyond it, d >= (q - 1) * min(a, b) > edge.
    q_max = 1.0 + edge / inner
    q2_max = q_max * q_max
    hx = q_max * math.sqrt((a * c) ** 2 + (b * s) ** 2)
    hy = q_max * math.sqrt((a * s) ** 2 + (b * c) ** 2)
    # Pixel range of the support box; clamp in float first so absurd coordinates never overflow int.
    x_lo = cx - hx - 0.5
    x_hi = cx + hx - 0.5
    y_lo = cy - hy - 0.5
    y_hi = cy + hy - 0.5
    if not (x_hi >= 0.0 and x_lo <= w - 1.0 and y_hi >= 0.0 and y_lo <= h - 1.0):
        return 0
    j0 = int(math.floor(max(x_lo, 0.0)))
    j1 = int(math.ceil(min(x_hi, w - 1.0))) + 1
    i0 = int(math.floor(max(y_lo, 0.0)))
    i1 = int(math.ceil(min(y_hi, h - 1.0))) + 1
    ia2 = 1.0 / (a * a)
    ib2 = 1.0 / (b * b)
    do_mask = mask.shape[0] > 0
    inside = 0
    for i in range(i0, i1):
        py = i + 0.5 - cy
        for j in range(j0, j1):
            px = j + 0.5 - cx
            u = px * c + py * s
            v = py * c - px * s
            q2 = u * u * ia2 + v * v * ib2
            if q2 >= q2_max:
                continue
            if q2 <= 1.0:
                inside += 1
                if do_mask:
                    mask[i, j] = True
            q = math.sqrt(q2)
            if q < 1e-12:
                d = -inner
            else:
                gu = u * ia2
                gv = v * ib2
                d = (q - 1.0) * q / math.sqrt(gu * gu + gv * gv)
                if q > 1.0:
                    d = max(d, (q - 1.0) * inner)
            t = d * inv_edge
            if t < dist[i, j]:
                dist[i, j] = t
    return inside


@numba.njit(cache=True, nogil=True)
def _render(lm, shape_ids, n_shapes, g_idx, g_w, s_int, s_flt, edge_iod, min_contrast,
            out, mask):  # pragma: no cover - compiled
    """Render one face into `out` ((h, w) float32, overwritten) and `mask` ((h, w) bool or (0, 0)).
    Returns True when a map was made (then `out` is normalised to [0, 1])."""
    for r in range(lm.shape[0]):
        if not (math.isfinite(lm[r, 0]) and math.isfinite(lm[r, 1])):
            return False
    if n_shapes == 0:
        return False
    lx = 0.5 * (lm[_EL, 0] + lm[_EL2, 0])
    ly = 0.5 * (lm[_EL, 1] + lm[_EL2, 1])
    rx = 0.5 * (lm[_ER, 0] + lm[_ER2, 0])
    ry = 0.5 * (lm[_ER, 1] + lm[_ER2, 1])
    iod = math.sqrt((rx - lx) ** 2 + (ry - ly) ** 2)
    if not iod > 1e-3:
        return False
    c = (rx - lx) / iod
    s = (ry - ly) / iod
    h, w = out.shape
    out[:, :] = np.inf  # smallest signed boundary distance in edge units, until the end
    inside = 0
    for k in range(n_shapes):
        sh = shape_ids[k]
        cx, cy = _group_mean(lm, g_idx, g_w, s_int[sh, 0])
        a = s_flt[sh, 0] * iod
        if s_int[sh, 1] >= 0:
            ext = s_flt[sh, 2] * _span(lm, g_idx, g_w, s_int[sh, 1], s_int[sh, 2], c, s) + s_flt[sh, 4] * iod
            a = max(a, ext)
        b = s_flt[sh, 1] * iod
        if s_int[sh, 3] >= 0:
            ext = s_flt[sh, 3] * _span(lm, g_idx, g_w, s_int[sh, 3], s_int[sh, 4], -s, c) + s_flt[sh, 5] * iod
            b = max(b, ext)
        inside += _draw_ellipse(out, mask, cx, cy, a, b, c, s, min(edge_iod * iod, a, b))
    if inside == 0:
        return False
    lo = np.inf
    hi = -np.inf
    for i in range(h):
        for j in range(w):
            t = out[i, j]
            if t >= 1.0:
                v = 0.0
            elif t <= -1.0:
                v = 1.0
            else:
                x = 0.5 * (1.0 - t)
                v = x * x * (3.0 - 2.0 * x)
            out[i, j] = v
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    if hi - lo < min_contrast:
        return False
    scale = 1.0 / (hi - lo)
    for i in range(h):
        for j in range(w):
            out[i, j] = (out[i, j] - lo) * scale
    return True


@numba.njit(cache=True, nogil=True)
def _render_batch(lms, exprs, e_shapes, e_count, g_idx, g_w, s_int, s_flt, edge_iod, min_contrast,
                  out, valid):  # pragma: no cover - compiled
    no_mask = np.zeros((0, 0), dtype=np.bool_)
    n_expr = e_count.shape[0]
    for n in range(lms.shape[0]):
        e = exprs[n]
        ok = False
        if 0 <= e < n_expr:
            ok = _render(lms[n], e_shapes[e], e_count[e], g_idx, g_w, s_int, s_flt, edge_iod, min_contrast,
                         out[n], no_mask)
        if not ok:
            out[n, :, :] = 0.0
        valid[n] = ok


def render(pts: np.ndarray, expression: int, size: tuple[int, int], with_mask: bool
           ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(map or None, mask or None) for prepared float64 landmarks `pts` and a class index."""
    t = table()
    h, w = size
    out = np.zeros((h, w), dtype=np.float32)
    mask = np.zeros((h, w) if with_mask else (0, 0), dtype=np.bool_)
    ok = _render(pts, t.e_shapes[expression], t.e_count[expression], t.g_idx, t.g_w, t.s_int, t.s_flt,
                 EDGE, MIN_CONTRAST, out, mask)
    if not ok:
        return None, None
    return out, (mask if with_mask else None)


def render_batch(lms: np.ndarray, exprs: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Maps (N, h, w) float32 (zeros where invalid) and valid (N,) bool for (N, n, 2) float64
    landmarks and (N,) int64 class indices."""
    t = table()
    h, w = size
    n = lms.shape[0]
    out = np.zeros((n, h, w), dtype=np.float32)
    valid = np.zeros(n, dtype=np.bool_)
    _render_batch(lms, exprs, t.e_shapes, t.e_count, t.g_idx, t.g_w, t.s_int, t.s_flt, EDGE, MIN_CONTRAST,
                  out, valid)
    return out, valid

"""AU regions on MediaPipe's mesh: the one table of where each action unit is drawn.

Every AU is one or two ellipses (two for left/right pairs). An ellipse is given in the FACE frame,
not the image frame: its axes follow the eye line (x = from the image-left eye centre to the
image-right eye centre) and its perpendicular (y, down the face), and every length is a fraction of
the inter-ocular distance (IOD, the distance between the two eye centres, each the midpoint of its
eye corners). So a 48x48 FER2013 crop and a 1080p face get the same shapes, and a tilted head gets
tilted ellipses (the reference drew axis-aligned ellipses in pixels: method.md §1.4).

How a shape's ellipse is computed from landmarks (`edgefer.au.geometry` and the Numba kernel in
`edgefer.au.raster` both implement exactly this):

- centre: the mean of the mesh points `centre` (an index may repeat, to weight it);
- semi-axis along face-x: `semi_axes[0] * IOD`; when `span_x = (A, B)` is given, it is
  `max(semi_axes[0] * IOD, span_scale * |(mean(B) - mean(A)) . x| + pad[0] * IOD)`, i.e. the
  reference's "half the landmark distance, with a floor when it collapses" (§1.4 "0->k"); same for y.

Sizes were converted from the reference's pixels at 224x224 with IOD ~= 78 px there (FER2013-style
tight crops measure IOD ~= 0.35 of the crop width with MediaPipe; 0.35 * 224 = 78): 20 px -> 0.25,
w/8 x h/10 -> 0.35 x 0.28, w/10 -> 0.28, 10 px -> 0.125, 5 px -> 0.065, 25 x 10 px -> 0.32 x 0.13.

Differences from the reference geometry, on purpose:
- AU10 (Upper Lip Raiser): the code draws (x48, y50) and (x52, y54), an asymmetric pair (a typo).
  edgefer draws the symmetric pair: the upper-lip/nasolabial area just above each mouth corner, at
  the height of points 50/52, taken as the mean of mesh points 92, 216 (image left) and 322, 436.
- AU20 (Lip Stretcher): the code draws mid(48, 6) and mid(50, 10); edgefer uses mid(54, 10) on the
  right, the mirror of mid(48, 6).
- AU17 (Chin Raiser): the code centres it on mid(59, 8), left of the midline; edgefer keeps that
  height and extent but centres it on the midline (mean of 59, 55, 8, 8).
- AU5/AU7/AU43 (eyes): lid heights come from the mid-lid mesh points 159/145 and 386/374 (the
  lid apexes, which iBUG lacks) instead of 38/41 and 44/47.
- AU6 (Cheek Raiser): the code uses (x41, y41 + h/6) with h the image height; edgefer uses the
  cheek-apple mesh points that lie there on a frontal face (mean of 36, 205 and 266, 425), so the
  centre follows the cheek under pitch and does not depend on the crop height.
- AU9 (Nose Wrinkler): (x31, y29) -> mesh 198 / 420, the nose side-walls at the height of 29.
- AU14 (Dimpler): (x48 - 20 px, y48) -> mesh 57, 212 / 287, 432, just lateral to the mouth corners.
- Blobs are rotated with the eye line; the reference's are axis-aligned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

Group = tuple[int, ...]


@dataclass(frozen=True)
class Shape:
    """One ellipse of an AU region, in face-frame units (see the module docstring).

    `side` is the image side of an unmirrored image ('L', 'R' or 'C' for the midline);
    `ibug` the iBUG-68 points (0-based) the reference drew this shape from.
    """

    side: str
    centre: Group
    ibug: tuple[int, ...]
    semi_axes: tuple[float, float]
    span_x: tuple[Group, Group] | None = None
    span_y: tuple[Group, Group] | None = None
    span_scale: float = 0.5
    pad: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class AU:
    """A FACS action unit and the region edgefer draws for it.

    `number` is the FACS number (12 for AU12), `code_id` the reference code's internal id
    (method.md §1.1), `reference` the reference code's geometry in iBUG terms, for the record.
    """

    number: int
    name: str
    code_id: int
    shapes: tuple[Shape, ...]
    reference: str

    @property
    def code(self) -> str:
        """Zero-padded name, as OpenFace and py-feat write it (AU01, AU12)."""
        return f"AU{self.number:02d}"

    @property
    def ibug(self) -> tuple[int, ...]:
        """All iBUG-68 points this AU stands for."""
        seen: dict[int, None] = {}
        for s in self.shapes:
            for k in s.ibug:
                seen[k] = None
        return tuple(seen)


def _pair(left: Shape, right: Shape) -> tuple[Shape, Shape]:
    return (left, right)


_R = 0.25  # the reference's 20 px circles at 224x224
_FLOOR = 0.065  # the reference's 5 px "0->5" floor
_LID_PAD = 0.125  # the reference's +10 px on the lid height (AU7, AU43)

_EYE_L: dict[str, Any] = dict(centre=(33, 133, 159, 145), span_x=((33,), (133,)), span_y=((159,), (145,)))
_EYE_R: dict[str, Any] = dict(centre=(362, 263, 386, 374), span_x=((362,), (263,)), span_y=((386,), (374,)))
_MOUTH: dict[str, Any] = dict(
    centre=(0, 17),
    ibug=(48, 51, 54, 57),
    semi_axes=(_FLOOR, _FLOOR),
    span_x=((61,), (291,)),
    span_y=((0,), (17,)),
)


def _eyes(pad_y: float) -> tuple[Shape, Shape]:
    return _pair(
        Shape("L", ibug=(36, 38, 39, 41), semi_axes=(_FLOOR, _FLOOR), pad=(0.0, pad_y), **_EYE_L),
        Shape("R", ibug=(42, 44, 45, 47), semi_axes=(_FLOOR, _FLOOR), pad=(0.0, pad_y), **_EYE_R),
    )


def _circles(left: Group, left_ibug: tuple[int, ...], right: Group, right_ibug: tuple[int, ...],
             r: float = _R) -> tuple[Shape, Shape]:
    return _pair(Shape("L", left, left_ibug, (r, r)), Shape("R", right, right_ibug, (r, r)))


#: The AU table, in the reference code's id order (method.md §1.1).
AU_REGIONS: tuple[AU, ...] = (
    AU(1, "Inner Brow Raiser", 0,
       _pair(Shape("L", (66,), (20,), (0.35, 0.28)), Shape("R", (296,), (23,), (0.35, 0.28))),
       "ellipses at 20 and 23, semi-axes (w/8, h/10)"),
    AU(2, "Outer Brow Raiser", 1,
       _pair(Shape("L", (63,), (18,), (0.35, 0.28)), Shape("R", (293,), (25,), (0.35, 0.28))),
       "ellipses at 18 and 25, semi-axes (w/8, h/10)"),
    AU(4, "Brow Lowerer", 2,
       (Shape("C", (105, 334), (19, 24), (0.125, 0.125), span_x=((105,), (334,))),),
       "ellipse at mid(19, 24), semi-axes half the 19-24 span, 0->10 px"),
    AU(5, "Upper Lid Raiser", 3, _eyes(0.0),
       "eye ellipses: centre (mid 36-39 x, mid 38-41 y), semi-axes half the corner and lid spans, 0->5 px"),
    AU(6, "Cheek Raiser", 4,
       _circles((36, 205), (41,), (266, 425), (46,), r=0.28),
       "circles at (x41, y41 + h/6) and (x46, y46 + h/6), radius (w/10, h/10)"),
    AU(7, "Lid Tightener", 5, _eyes(_LID_PAD),
       "the AU5 eye ellipses with the lid semi-axis + 10 px"),
    AU(9, "Nose Wrinkler", 6, _circles((198,), (31, 29), (420,), (35, 29)),
       "circles r=20 px at (x31, y29) and (x35, y29)"),
    AU(10, "Upper Lip Raiser", 7, _circles((92, 216), (48, 50), (322, 436), (54, 52)),
       "circles r=20 px at (x48, y50) and (x52, y54) (asymmetric in the code; symmetric here)"),
    AU(12, "Lip Corner Puller", 8, _circles((61,), (48,), (291,), (54,)),
       "circles r=20 px at the mouth corners 48 and 54"),
    AU(14, "Dimpler", 9, _circles((57, 212), (48,), (287, 432), (54,)),
       "circles r=20 px at (x48 - 20, y48) and (x54 + 20, y54)"),
    AU(15, "Lip Corner Depressor", 10, _circles((61,), (48,), (291,), (54,)),
       "circles r=20 px at the mouth corners 48 and 54 (same as AU12)"),
    AU(17, "Chin Raiser", 11,
       (Shape("C", (181, 405, 152, 152), (59, 55, 8), (_FLOOR, _FLOOR),
              span_x=((181,), (152,)), span_y=((181,), (152,))),),
       "ellipse at mid(59, 8), semi-axes half the 59-8 span, 0->5 px (centred on the midline here)"),
    AU(20, "Lip Stretcher", 12, _circles((61, 136), (48, 6), (291, 365), (54, 10)),
       "circles r=20 px at mid(48, 6) and mid(50, 10) (mid(54, 10) here, the mirror)"),
    AU(23, "Lip Tightener", 13, (Shape("C", **_MOUTH),),
       "mouth ellipse: centre (mid 48-54 x, mid 51-57 y), semi-axes half the spans, 0->5 px"),
    AU(24, "Lip Pressor", 14, (Shape("C", **_MOUTH),), "identical to AU23"),
    AU(25, "Lips Part", 15,
       (Shape("C", (0,), (51,), (0.32, 0.13)), Shape("C", (17,), (57,), (0.32, 0.13))),
       "ellipses at 51 and 57, semi-axes (25, 10) px"),
    AU(26, "Jaw Drop", 16, (Shape("C", **_MOUTH),), "identical to AU23"),
    AU(43, "Eyes Closed", 17, _eyes(_LID_PAD), "same as AU7"),
    AU(27, "Mouth Stretch", 18, (Shape("C", **_MOUTH),), "identical to AU23"),
    AU(16, "Lower Lip Depressor", 19, _circles((181,), (59,), (405,), (55,)),
       "circles r=20 px at 59 and 55"),
)

#: FACS number -> AU.
AU_BY_NUMBER: Mapping[int, AU] = MappingProxyType({au.number: au for au in AU_REGIONS})


def au_by_number(number: int) -> AU:
    """The AU with FACS number `number` (ValueError listing the known numbers otherwise)."""
    try:
        return AU_BY_NUMBER[number]
    except KeyError:
        known = ", ".join(str(n) for n in sorted(AU_BY_NUMBER))
        raise ValueError(f"no AU region for FACS AU{number}; known: {known}") from None

"""MediaPipe 478-point face mesh <-> iBUG-68 correspondence, and the mesh points the AU geometry uses.

The paper's AU geometry is written on the iBUG-68 landmarks (0-based, method.md §1.3); edgefer's
tracker gives MediaPipe's 478-point mesh. `IBUG68_TO_MESH[k]` is the mesh index that stands for iBUG
point k. It was checked by eye by drawing all 68 indices on a frontal frame of the one-face test video
(WolfgangLanger_Pexels.mp4, frame 260; see docs/au.md): brows sit on the upper brow edge as in iBUG,
eye corners/lids, nostril wings, lip corners and lip centres, chin and jaw fall where iBUG puts them.
Jaw points 0 and 16 (temple level) are the least exact: MediaPipe's silhouette is a little higher
than iBUG's ear-level contour; no AU uses them.

Image sides: for an unmirrored camera image the subject's right side is on the image LEFT. iBUG's
"left" points (36-41 eye, 17-21 brow, 48 mouth corner) are image-left; so are MediaPipe's 33/133
(the subject's right eye). All tables here speak of image sides of an unmirrored image.
"""

from __future__ import annotations

import numpy as np

#: Number of mesh points MediaPipe FaceLandmarker returns (468 face + 10 iris). Landmark arrays
#: with only the 468 face points are accepted too: no AU uses an iris point.
NUM_MESH_POINTS = 478
NUM_FACE_POINTS = 468

#: iBUG-68 index (0-based) -> MediaPipe mesh index.
IBUG68_TO_MESH: tuple[int, ...] = (
    # 0-16 jaw, image-left to image-right (8 = chin tip)
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    # 17-21 image-left brow (outer -> inner), 22-26 image-right brow (inner -> outer)
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    # 27-30 nose bridge (30 = tip), 31-35 nostril base (31 image-left wing, 35 image-right wing)
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # 36-41 image-left eye (36 outer corner, 37-38 upper lid, 39 inner corner, 40-41 lower lid)
    33, 160, 158, 133, 153, 144,
    # 42-47 image-right eye (42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid)
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lip (48 image-left corner, 51 top centre, 54 image-right corner, 57 bottom centre)
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # 60-67 inner lip
    78, 82, 13, 312, 308, 317, 14, 87,
)

#: Eye corners that define the face frame: image-left eye (outer, inner), image-right eye
#: (inner, outer). The midpoint of each pair is the eye centre; corners are used rather than
#: lids so that blinking does not move the centre.
LEFT_EYE_CORNERS: tuple[int, int] = (33, 133)
RIGHT_EYE_CORNERS: tuple[int, int] = (362, 263)


def to_ibug68(landmarks: np.ndarray) -> np.ndarray:
    """The 68 iBUG points (68, k) picked from a mesh landmark array (>= 468, k)."""
    return np.asarray(landmarks)[list(IBUG68_TO_MESH)]

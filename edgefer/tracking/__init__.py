"""Face tracking over MediaPipe FaceLandmarker: faces with stable ids, boxes, landmarks, blendshapes.

- `FaceTracker` (tracker.py): frames in, `list[edgefer.types.Face]` out, ids kept across frames.
- `IdAssigner` (ids.py): the pure id logic (no MediaPipe), testable on synthetic boxes.
- `StillLandmarker` (still.py): landmarks of small tight crops (FER2013) with a fallback chain.
- `BLENDSHAPE_NAMES`: the 52 blendshape names in MediaPipe order (CSV columns).

MediaPipe itself is imported only when a landmarker is created, so importing this package is cheap.
"""

from edgefer.tracking.blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, NUM_LANDMARKS
from edgefer.tracking.ids import IdAssigner, Track, hungarian
from edgefer.tracking.landmarker import check_frame, create_landmarker
from edgefer.tracking.still import DEFAULT_VARIANTS, StillLandmarker, Variant
from edgefer.tracking.tracker import FaceTracker, box_from_landmarks

__all__ = [
    "BLENDSHAPE_NAMES",
    "DEFAULT_VARIANTS",
    "FaceTracker",
    "IdAssigner",
    "NUM_BLENDSHAPES",
    "NUM_LANDMARKS",
    "StillLandmarker",
    "Track",
    "Variant",
    "box_from_landmarks",
    "check_frame",
    "create_landmarker",
    "hungarian",
]

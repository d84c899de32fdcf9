"""Face tracking over MediaPipe FaceLandmarker: faces with stable ids, boxes, landmarks, blendshapes.

- `FaceTracker` (tracker.py): frames in, `list[edgefer.types.Face]` out, ids kept across frames.
- `IdAssigner` (ids.py): the pure id logic (no MediaPipe), testable on synthetic boxes.
- `StillLandmarker` (still.py): landmarks of small tight crops (FER2013) with a fallback chain.
- `BLENDSHAPE_NAMES`: the 52 blendshape names in MediaPipe order (CSV columns).
"""

from edgefer.tracking.blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, NUM_LANDMARKS

__all__ = ["BLENDSHAPE_NAMES", "NUM_BLENDSHAPES", "NUM_LANDMARKS"]

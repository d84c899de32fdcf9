"""The three collaborators a pipeline loads before it starts: classifier, aligner, face tracker.

Loading is where a run fails before it begins (a model file that is not a model, a face model
that is missing), so every failure here is a `PipelineError` whose message says what to fix, and
nothing stays loaded behind it. The classifier comes first because its contract decides how the
aligner frames the crops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edgefer.align import Aligner
from edgefer.pipeline.events import PipelineError
from edgefer.pipeline.settings import PipelineSettings
from edgefer.runtime import Classifier, load_classifier
from edgefer.tracking import FaceTracker

log = logging.getLogger(__name__)


@dataclass
class Collaborators:
    """The loaded model, the aligner in its framing and the MediaPipe tracker (video mode)."""

    classifier: Classifier
    aligner: Aligner
    tracker: FaceTracker

    def close(self, *, tracker: bool = True, classifier: bool = True) -> None:
        """Release the tracker and/or the classifier (never raises: called while shutting down)."""
        for wanted, name, part in ((tracker, "tracker", self.tracker), (classifier, "classifier", self.classifier)):
            if not wanted:
                continue
            try:
                part.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                log.debug("%s close failed", name, exc_info=True)


def load_collaborators(settings: PipelineSettings, max_faces: int) -> Collaborators:
    """Load what `settings` names; PipelineError (with nothing left loaded) when it cannot."""
    try:
        classifier = load_classifier(settings.model, settings.backend)
    except (OSError, ValueError, RuntimeError) as exc:
        raise PipelineError(f"cannot load the expression model: {exc}") from exc
    contract = classifier.contract
    try:
        aligner = Aligner(contract.framing, contract.input_size)
        tracker = FaceTracker(
            face_model=settings.face_model, max_faces=max_faces, mode="video", blendshapes=settings.blendshapes
        )
    except BaseException as exc:  # Ctrl-C while MediaPipe loads must not leave the model open either
        classifier.close()
        if isinstance(exc, (OSError, ValueError, RuntimeError)):
            raise PipelineError(f"cannot start the face tracker: {exc}") from exc
        raise
    return Collaborators(classifier, aligner, tracker)

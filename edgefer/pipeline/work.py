"""What track, classify and render do to each frame, under the live settings in force.

The per-frame functions themselves are in `stages` (plain, no state, no faults policy). This object
adds what a running pipeline needs around them: the live settings, which any thread may change
while frames flow (swapped whole under a lock, read once per frame); the effects of a change (the
smoother's strength, a landmarker rebuilt for more faces, the one warning about a model without
CAM); and the fault policy: a frame that fails a stage is an "error" event and passes on with no
faces, no predictions or its raw picture, so one bad frame never ends the run.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgefer import render
from edgefer.pipeline import stages
from edgefer.pipeline.collaborators import Collaborators
from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.events import StageName
from edgefer.pipeline.settings import LiveSettings, PipelineSettings
from edgefer.pipeline.smoothing import ProbabilitySmoother
from edgefer.pipeline.stats import StatsCollector
from edgefer.types import Frame, FrameResult, TrackedFrame


class FrameWork:
    """`track`, `classify` and `render` each run on their own stage thread; the rest on any."""

    def __init__(self, settings: PipelineSettings, smoother: ProbabilitySmoother, stats: StatsCollector,
                 events: EventLog) -> None:
        self.settings = settings
        self.smoother = smoother
        self._stats = stats
        self._events = events
        self._lock = threading.Lock()
        self._live = settings.live
        self.tracker_faces = self._live.max_faces  # the landmarker's limit (raised, never lowered)
        self._models: Collaborators | None = None
        self._cam_warned = False
        self._last_ms = -1
        #: Faces for which the model returned NaN/inf (counted; the first few are warnings).
        self.faces_without_estimate = 0

    # -- live settings (any thread) ---------------------------------------------------------------
    @property
    def live(self) -> LiveSettings:
        return self._live

    def set_live(self, live: LiveSettings) -> None:
        """Apply every live setting at once; each applies from the next frame."""
        with self._lock:
            self._live = live
        self.smoother.strength = live.smoothing
        if live.heatmap == "cam":
            self._warn_if_no_cam()

    def change_live(self, **changes: Any) -> None:
        """Change some live settings; a ValueError naming the control when one is out of bounds."""
        with self._lock:
            live = self._live.with_changes(**changes)
        self.set_live(live)

    def attach(self, models: Collaborators) -> None:
        """The models are loaded (start): from now on a CAM request can be checked against them."""
        self._models = models
        if self._live.heatmap == "cam":
            self._warn_if_no_cam()

    def _warn_if_no_cam(self) -> None:
        models = self._models
        if models is not None and not models.classifier.has_cam and not self._cam_warned:
            self._cam_warned = True
            self._events.emit("warning", "render", "this model has no CAM output; showing its attention map instead")

    def _models_or_fail(self) -> Collaborators:
        if self._models is None:
            raise RuntimeError("the models are not loaded (the pipeline has not started)")
        return self._models

    def _failed(self, stage: StageName, index: int, exc: Exception) -> None:
        self._events.emit("error", stage, f"frame {index}: {type(exc).__name__}: {exc}")

    # -- stage threads ----------------------------------------------------------------------------
    def track(self, frame: Frame) -> TrackedFrame:
        models = self._models_or_fail()
        want = self._live.max_faces
        if want > self.tracker_faces:
            want = self._raise_face_limit(models, want)
        self._last_ms = stages.video_timestamp_ms(frame.timestamp_s, self._last_ms)
        try:
            return stages.track_frame(models.tracker, frame, self._last_ms, want)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the run
            self._failed("track", frame.index, exc)
            return TrackedFrame(frame, [])

    def _raise_face_limit(self, models: Collaborators, n: int) -> int:
        """Raise the landmarker's face limit: a fresh landmarker, track ids keep counting up.
        Returns the limit in force afterwards (the old one when the rebuild failed)."""
        old, tracker = self.tracker_faces, models.tracker
        try:
            tracker.max_faces = n
            tracker.reset()
        except Exception as exc:  # noqa: BLE001 - MediaPipe's errors are its own types
            self._events.emit("error", "track", f"cannot raise max faces to {n}: {exc}; staying at {old}")
            with self._lock:
                self._live = self._live.with_changes(max_faces=old)
            tracker.max_faces = old
            tracker.reset()
            return old
        self.tracker_faces = n
        self._events.emit("status", "track", f"tracking up to {n} faces")
        return n

    def classify(self, tracked: TrackedFrame) -> FrameResult:
        models = self._models_or_fail()
        try:
            result = stages.classify_frame(tracked, models.aligner, models.classifier, self.smoother)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the run
            self._failed("classify", tracked.frame.index, exc)
            return FrameResult(frame=tracked.frame, predictions=[])
        for pred in result.predictions:
            if not np.isfinite(pred.raw_probs).all():
                self._no_estimate(tracked.frame.index, pred.face.track_id)
        return result

    def report_totals(self) -> None:
        """At the end of the run: the total of what was only sampled while running."""
        n = self.faces_without_estimate
        if n:
            self._events.emit("warning", "classify", f"the model returned NaN/inf for {n} face(s) in all; their rows "
                              "have empty/null probabilities and no expression")

    def _no_estimate(self, index: int, track_id: int) -> None:
        """The model gave NaN/inf for one face: a counted warning (the first 5 in full, then every
        100th, so a model that always fails does not flood); the run goes on."""
        self.faces_without_estimate += 1
        n = self.faces_without_estimate
        if n <= 5 or n % 100 == 0:
            self._events.emit("warning", "classify", f"frame {index}: the model returned NaN/inf for face {track_id}; "
                              f"no expression for it in this frame (rows: empty/null probabilities), its smoothing "
                              f"is unaffected ({n} face(s) without an estimate so far)")

    def warm_up_render(self) -> None:
        """Compile (or load) the render kernels before the first frame, on the render thread."""
        render.warmup()

    def render(self, result: FrameResult) -> FrameResult:
        models = self._models_or_fail()
        live = self._live
        status = None
        if self.settings.show_fps:
            status = f"{self._stats.recent_fps():.1f} fps  {len(result.predictions)} face(s)"
        try:
            result.annotated = stages.render_result(
                result, models.classifier.contract.input_size, mode=live.heatmap, opacity=live.opacity,
                colormap=self.settings.heatmap.colormap, status=status,
            )
        except Exception as exc:  # noqa: BLE001 - the raw frame still goes out
            self._failed("render", result.frame.index, exc)
            result.annotated = result.frame.image.copy()
        return result

"""The settings a pipeline takes while it runs: their names, defaults and bounds, written once.

Heatmap mode and opacity, smoothing strength and the number of faces can change while video flows.
`edgefer run` takes them as flags and profile keys, the `Pipeline` as live setters, the PyQt6
window as controls and as remembered preferences. They had drifted apart (max faces capped at 32 in
one place and 16 in another, smoothing at 0.95 in one and below 1 in another); now every one of
those reads this module, and validates through the one pydantic model built from it,
`edgefer.pipeline.settings.LiveSettings`. A new live control is a constant here, a field there and
the widget that edits it.

Plain constants, no pydantic: `edgefer --help` builds its parser from them and stays instant.
"""

from __future__ import annotations

from typing import Literal

HeatmapMode = Literal["attention", "cam", "off"]
#: The overlay modes, in the order the window's H key cycles through them.
HEATMAP_MODES: tuple[HeatmapMode, ...] = ("attention", "cam", "off")
DEFAULT_HEATMAP: HeatmapMode = "attention"

#: Heatmap opacity in [OPACITY_MIN, OPACITY_MAX].
OPACITY_MIN, OPACITY_MAX = 0.0, 1.0
DEFAULT_OPACITY = 0.45

#: EMA strength in [SMOOTHING_MIN, SMOOTHING_SUP): the weight the previous estimate keeps per
#: 1/30 s (0 = raw probabilities; 1 would never move).
SMOOTHING_MIN, SMOOTHING_SUP = 0.0, 1.0
DEFAULT_SMOOTHING = 0.6

#: Faces tracked per frame, in [1, MAX_FACES_LIMIT] (MediaPipe takes any number; past this an edge
#: device is no longer live).
MAX_FACES_LIMIT = 32
DEFAULT_MAX_FACES = 4

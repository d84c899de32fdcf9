"""The Settings dock: the live controls, the model file and the folder outputs are saved in.

The live controls edit one `LiveSettings` (heatmap mode and opacity, smoothing, max faces): their
ranges come from its bounds, and every change is announced as a whole, validated record
(`liveChanged`), which the window hands to the controller and remembers in its preferences. A new
live control is a field of `LiveSettings` plus its widget here.
"""

from __future__ import annotations

import math
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from edgefer import live as vocab
from edgefer.live import HEATMAP_MODES, HeatmapMode
from edgefer.pipeline.settings import LiveSettings
from ui.prefs import HEATMAP_LABELS

MODEL_FILTER = "Models (*.onnx *.engine *.plan);;All files (*)"
#: Sliders move in hundredths: the largest smoothing strength they reach is the last one below the bound.
SMOOTHING_STEPS = math.ceil(vocab.SMOOTHING_SUP * 100) - 1


def row(*widgets: QWidget) -> QWidget:
    """Widgets side by side, the first one stretching."""
    host = QWidget()
    lay = QHBoxLayout(host)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(4)
    for i, w in enumerate(widgets):
        lay.addWidget(w, 1 if i == 0 else 0)
    return host


def _slider(lo: int, hi: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


def _with_value(slider: QSlider, label: QLabel) -> QWidget:
    label.setMinimumWidth(36)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return row(slider, label)


def _tool_button(text: str, tip: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tip)
    return b


class SettingsPanel(QWidget):
    """Signals: `liveChanged(LiveSettings)` on every change of a live control; `modelChosen(str)`
    with a model file picked in the dialog, or "" for the shipped model."""

    liveChanged = pyqtSignal(object)
    modelChosen = pyqtSignal(str)

    def __init__(self, live: LiveSettings, model: str, output_dir: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(10, 8, 10, 8)
        self.heatmap_combo = QComboBox()
        for mode in HEATMAP_MODES:
            self.heatmap_combo.addItem(HEATMAP_LABELS[mode], mode)
        self.heatmap_combo.setCurrentIndex(HEATMAP_MODES.index(live.heatmap))
        form.addRow("Heatmap", self.heatmap_combo)
        self.opacity_slider = _slider(0, round(vocab.OPACITY_MAX * 100), round(live.opacity * 100))
        self.opacity_value = QLabel()
        form.addRow("Opacity", _with_value(self.opacity_slider, self.opacity_value))
        self.smoothing_slider = _slider(0, SMOOTHING_STEPS, round(live.smoothing * 100))
        self.smoothing_slider.setToolTip("How much the previous estimate is kept (per 1/30 s): "
                                         "higher is steadier, lower reacts faster")
        self.smoothing_value = QLabel()
        form.addRow("Smoothing", _with_value(self.smoothing_slider, self.smoothing_value))
        self.max_faces_spin = QSpinBox()
        self.max_faces_spin.setRange(1, vocab.MAX_FACES_LIMIT)
        self.max_faces_spin.setValue(live.max_faces)
        form.addRow("Max faces", self.max_faces_spin)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("shipped default model")
        self.model_edit.setReadOnly(True)
        self.model_button = _tool_button("\u2026", "Choose a model file (.onnx or TensorRT .engine)")
        self.model_reset = _tool_button("\u21BA", "Use the shipped default model")
        form.addRow("Model", row(self.model_edit, self.model_button, self.model_reset))
        self.show_model(model)
        self.output_edit = QLineEdit(output_dir)
        self.output_edit.setToolTip("Folder for recordings and snapshots")
        self.output_button = _tool_button("\u2026", "Choose the folder for recordings and snapshots")
        form.addRow("Save to", row(self.output_edit, self.output_button))
        self._sync_labels()
        self.heatmap_combo.currentIndexChanged.connect(self._changed)
        for control in (self.opacity_slider, self.smoothing_slider, self.max_faces_spin):
            control.valueChanged.connect(self._changed)
        self.model_button.clicked.connect(self._choose_model)
        self.model_reset.clicked.connect(lambda: self.modelChosen.emit(""))
        self.output_button.clicked.connect(self._choose_output_dir)

    def live(self) -> LiveSettings:
        """The live settings the controls show."""
        return LiveSettings(heatmap=self.heatmap_combo.currentData(), opacity=self.opacity_slider.value() / 100.0,
                            smoothing=self.smoothing_slider.value() / 100.0, max_faces=self.max_faces_spin.value())

    def set_heatmap(self, mode: HeatmapMode) -> None:
        self.heatmap_combo.setCurrentIndex(HEATMAP_MODES.index(mode))

    def show_model(self, path: str) -> None:
        """The file name in the field (readable in a narrow dock), the full path in the tooltip."""
        self.model_edit.setText(Path(path).name if path else "")
        self.model_edit.setToolTip(path or "the model shipped with edgefer")

    def _choose_model(self) -> None:
        start = self.model_edit.toolTip() if self.model_edit.text() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", start, MODEL_FILTER)
        if path:
            self.modelChosen.emit(path)

    def _choose_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Save recordings and snapshots in", self.output_edit.text())
        if path:
            self.output_edit.setText(path)
            self.output_edit.editingFinished.emit()

    def _sync_labels(self) -> None:
        self.opacity_value.setText(f"{self.opacity_slider.value()}%")
        self.smoothing_value.setText(f"{self.smoothing_slider.value() / 100:.2f}")
        self.opacity_slider.setEnabled(self.heatmap_combo.currentData() != "off")

    def _changed(self, *_: object) -> None:
        self._sync_labels()
        self.liveChanged.emit(self.live())

"""One panel per tracked face: id, current expression, the seven probabilities and their trend.

Panels follow the tracks: a panel appears with a new track id and disappears once that id has not
been seen for `grace_s` seconds of video, so a face the tracker misses for a frame or two does not
make its panel blink. Probabilities shown are the pipeline's smoothed ones (the same the video
overlay shows); the history plot draws each class's probability over the last seconds, in the
class's colour, the current expression drawn thickest.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from edgefer.classes import EXPRESSIONS, NUM_CLASSES
from edgefer.types import FrameResult
from ui.history import HistoryStore, Series
from ui.style import MUTED, PANEL_BORDER, TEXT, class_color


class ProbabilityBars(QWidget):
    """Seven horizontal bars, one per class, in the project's class order."""

    ROW = 17

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.probs = np.zeros(NUM_CLASSES, np.float32)
        self.setMinimumHeight(self.ROW * NUM_CLASSES + 2)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, self.ROW * NUM_CLASSES + 2)

    def set_probs(self, probs: np.ndarray) -> None:
        self.probs = np.asarray(probs, np.float32).reshape(NUM_CLASSES).copy()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        p.setFont(font)
        name_w, pct_w = 72, 40
        bar_x = name_w + 4
        bar_w = max(10, self.width() - bar_x - pct_w - 4)
        top = int(np.argmax(self.probs))
        for i, name in enumerate(EXPRESSIONS):
            y = i * self.ROW + 1
            color = class_color(i)
            p.setPen(QColor(TEXT) if i == top else QColor(MUTED))
            p.drawText(QRectF(0, y, name_w, self.ROW - 2), Qt.AlignmentFlag.AlignVCenter, name)
            track = QRectF(bar_x, y + 3, bar_w, self.ROW - 7)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(PANEL_BORDER))
            p.drawRoundedRect(track, 3, 3)
            fill = QRectF(track)
            fill.setWidth(bar_w * float(np.clip(self.probs[i], 0.0, 1.0)))
            if fill.width() > 0.5:
                c = QColor(color)
                if i != top:
                    c.setAlpha(170)
                p.setBrush(c)
                p.drawRoundedRect(fill, 3, 3)
            p.setPen(QColor(TEXT) if i == top else QColor(MUTED))
            p.drawText(QRectF(bar_x + bar_w + 4, y, pct_w, self.ROW - 2),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{100 * self.probs[i]:.0f}%")


class HistoryPlot(QWidget):
    """The last `window_s` seconds of the seven probabilities, drawn with QPainter."""

    def __init__(self, window_s: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_s = window_s
        self.series = Series(np.zeros(0), np.zeros((0, NUM_CLASSES), np.float32))
        self.now: float | None = None
        self.setMinimumHeight(70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, 84)

    def set_series(self, series: Series, now: float | None) -> None:
        self.series = series
        self.now = now
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        p.setFont(font)
        left, right, top, bottom = 26, 4, 4, 14
        plot = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))
        p.fillRect(plot, QColor("#181a20"))
        p.setPen(QPen(QColor(PANEL_BORDER), 1))
        for frac in (0.0, 0.5, 1.0):
            y = plot.bottom() - frac * plot.height()
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        p.setPen(QColor(MUTED))
        p.drawText(QRectF(0, plot.top() - 6, left - 4, 12), Qt.AlignmentFlag.AlignRight, "1")
        p.drawText(QRectF(0, plot.bottom() - 6, left - 4, 12), Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRectF(plot.left(), plot.bottom() + 1, 60, 12), Qt.AlignmentFlag.AlignLeft, f"-{self.window_s:.0f} s")
        p.drawText(QRectF(plot.right() - 60, plot.bottom() + 1, 60, 12), Qt.AlignmentFlag.AlignRight, "now")
        n = len(self.series)
        if n < 2 or self.now is None:
            return
        t = self.series.times
        xs = plot.right() - (self.now - t) / self.window_s * plot.width()
        probs = np.clip(self.series.probs, 0.0, 1.0)
        ys = plot.bottom() - probs * plot.height()
        current = int(np.argmax(probs[-1]))
        p.setClipRect(plot)
        order = [c for c in range(NUM_CLASSES) if c != current] + [current]
        for c in order:
            path = QPainterPath(QPointF(float(xs[0]), float(ys[0, c])))
            for k in range(1, n):
                path.lineTo(float(xs[k]), float(ys[k, c]))
            color = class_color(c)
            if c != current:
                color.setAlpha(150)
            p.setPen(QPen(color, 2.4 if c == current else 1.2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)


class FacePanel(QFrame):
    """Everything about one face: header (id, expression, confidence), bars, history."""

    def __init__(self, track_id: int, window_s: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("facePanel")
        self.track_id = track_id
        self.last_seen = 0.0
        self.expression = ""
        self.confidence = 0.0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(6)
        header = QHBoxLayout()
        self.id_label = QLabel(f"Face {track_id}")
        bold = QFont(self.id_label.font())
        bold.setBold(True)
        self.id_label.setFont(bold)
        self.expression_label = QLabel("-")
        big = QFont(self.expression_label.font())
        big.setBold(True)
        big.setPointSizeF(big.pointSizeF() * 1.2)
        self.expression_label.setFont(big)
        self.expression_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.confidence_label = QLabel("")
        self.confidence_label.setStyleSheet(f"color: {MUTED};")
        header.addWidget(self.id_label)
        header.addStretch(1)
        header.addWidget(self.expression_label)
        header.addWidget(self.confidence_label)
        layout.addLayout(header)
        self.bars = ProbabilityBars(self)
        layout.addWidget(self.bars)
        self.plot = HistoryPlot(window_s, self)
        layout.addWidget(self.plot)

    def update_face(self, probs: np.ndarray, timestamp_s: float, series: Series, now: float | None) -> None:
        probs = np.asarray(probs, np.float32)
        if not np.isfinite(probs).all():  # no estimate in this frame (NaN from the model): keep the last
            self.last_seen = float(timestamp_s)
            self.plot.set_series(series, now)
            return
        idx = int(np.argmax(probs))
        self.expression = EXPRESSIONS[idx]
        self.confidence = float(probs[idx])
        self.last_seen = float(timestamp_s)
        self.expression_label.setText(self.expression.capitalize())
        self.expression_label.setStyleSheet(f"color: {class_color(idx).name()};")
        self.confidence_label.setText(f"{100 * self.confidence:.0f}%")
        self.bars.set_probs(probs)
        self.plot.set_series(series, now)


class FacePanelList(QScrollArea):
    """The scrolling column of face panels, kept in step with the tracks."""

    def __init__(self, history: HistoryStore, grace_s: float = 1.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.grace_s = grace_s
        self.panels: dict[int, FacePanel] = {}
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self._layout = QVBoxLayout(inner)
        self._layout.setContentsMargins(6, 6, 6, 6)
        self._layout.setSpacing(8)
        self.empty_label = QLabel("No faces in view")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet(f"color: {MUTED}; padding: 20px;")
        self._layout.addWidget(self.empty_label)
        self._layout.addStretch(1)
        self.setWidget(inner)
        self.setMinimumWidth(290)

    def update_result(self, result: FrameResult) -> None:
        """Refresh panels from a FrameResult; add new tracks, drop tracks gone for `grace_s`."""
        now = float(result.frame.timestamp_s)
        latest = self.history.latest_time
        for pred in sorted(result.predictions, key=lambda pr: pr.face.track_id):
            tid = int(pred.face.track_id)
            panel = self.panels.get(tid)
            if panel is None:
                panel = self.panels[tid] = FacePanel(tid, self.history.window_s)
                self._layout.insertWidget(self._insert_index(tid), panel)
            panel.update_face(pred.probs, now, self.history.series(tid), latest if latest is not None else now)
        for tid, panel in list(self.panels.items()):
            if now - panel.last_seen > self.grace_s or now < panel.last_seen - 1.0:
                self._remove(tid)
        self.empty_label.setVisible(not self.panels)

    def _insert_index(self, tid: int) -> int:
        """Panels stay sorted by track id (the empty label sits at index 0)."""
        return 1 + sum(1 for other in self.panels if other < tid)

    def _remove(self, tid: int) -> None:
        panel = self.panels.pop(tid)
        self._layout.removeWidget(panel)
        panel.deleteLater()

    def clear(self) -> None:
        for tid in list(self.panels):
            self._remove(tid)
        self.empty_label.setVisible(True)

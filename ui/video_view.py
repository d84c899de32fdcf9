"""The live view: the pipeline's annotated frame, scaled to the widget keeping its aspect ratio.

Painting a QImage that wraps the NumPy buffer (no copy) with smooth scaling is cheap enough for
the GUI thread; the widget only ever holds the newest frame, so a slow GUI drops frames instead
of queueing them.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, QSize, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget

from ui.style import MUTED


def bgr_to_qimage(image: np.ndarray) -> tuple[QImage, np.ndarray]:
    """Wrap a BGR uint8 (H, W, 3) array as a QImage; returns the array that must stay alive."""
    if image.ndim == 2:
        arr = np.ascontiguousarray(image)
        h, w = arr.shape
        # PyQt6 wraps any buffer without a copy; its stubs only name bytes.
        return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8), arr  # type: ignore[call-overload]
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    arr = np.ascontiguousarray(image)
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_BGR888), arr  # type: ignore[call-overload]


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle of the image's aspect ratio centred in `area`."""
    if image_size.isEmpty() or area.isEmpty():
        return QRect()
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = area.x() + (area.width() - scaled.width()) // 2
    y = area.y() + (area.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())


class VideoView(QWidget):
    """Shows the newest frame; a hint text when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("videoView")
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self._hint = "No video. Choose a camera, a file or a stream URL, then press Start."
        self.frames_shown = 0

    def set_frame(self, image: np.ndarray) -> None:
        self._image, self._buffer = bgr_to_qimage(image)
        self.frames_shown += 1
        self.update()

    def clear(self, hint: str | None = None) -> None:
        self._image = None
        self._buffer = None
        if hint is not None:
            self._hint = hint
        self.update()

    @property
    def has_frame(self) -> bool:
        return self._image is not None

    def frame_size(self) -> QSize:
        return self._image.size() if self._image is not None else QSize()

    def video_rect(self) -> QRect:
        """Where the frame is drawn, in widget coordinates (empty without a frame)."""
        if self._image is None:
            return QRect()
        return fit_rect(self._image.size(), self.rect())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(960, 540)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#0d0e11"))
        if self._image is None:
            painter.setPen(QColor(MUTED))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.15)
            painter.setFont(font)
            painter.drawText(self.rect().adjusted(24, 24, -24, -24),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self.video_rect(), self._image)

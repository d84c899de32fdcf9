"""Small icons painted with QPainter, so the toolbar reads well on the dark theme without an
icon theme (the platform's media icons are dark glyphs, nearly invisible on dark toolbars)."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from ui.style import RECORD, TEXT

SIZE = 32  # drawn at 2x and scaled down by Qt: crisp on high-dpi screens too


def _icon(draw) -> QIcon:
    pix = QPixmap(SIZE, SIZE)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    draw(p)
    p.end()
    return QIcon(pix)


def play(color: str = "#5fd38d") -> QIcon:
    def draw(p: QPainter) -> None:
        path = QPainterPath(QPointF(9, 6))
        path.lineTo(26, 16)
        path.lineTo(9, 26)
        path.closeSubpath()
        p.fillPath(path, QColor(color))
    return _icon(draw)


def stop(color: str = TEXT) -> QIcon:
    return _icon(lambda p: p.fillRect(QRectF(8, 8, 16, 16), QColor(color)))


def pause(color: str = TEXT) -> QIcon:
    def draw(p: QPainter) -> None:
        p.fillRect(QRectF(8, 7, 6, 18), QColor(color))
        p.fillRect(QRectF(18, 7, 6, 18), QColor(color))
    return _icon(draw)


def record(color: str = RECORD) -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(color))
        p.drawEllipse(QRectF(6, 6, 20, 20))
    return _icon(draw)


def snapshot(color: str = TEXT) -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(QPen(QColor(color), 2.4))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(QRectF(4, 10, 24, 16), 3, 3)
        p.drawRect(QRectF(11, 6, 10, 4))
        p.drawEllipse(QRectF(11, 12, 10, 10))
    return _icon(draw)


def camera(color: str = TEXT) -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(color))
        p.drawRoundedRect(QRectF(3, 9, 19, 14), 3, 3)
        path = QPainterPath(QPointF(23, 16))
        path.lineTo(29, 10)
        path.lineTo(29, 22)
        path.closeSubpath()
        p.fillPath(path, QColor(color))
    return _icon(draw)


def folder(color: str = "#d8b45a") -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(color))
        path = QPainterPath(QPointF(3, 8))
        path.lineTo(12, 8)
        path.lineTo(15, 11)
        path.lineTo(29, 11)
        path.lineTo(29, 26)
        path.lineTo(3, 26)
        path.closeSubpath()
        p.drawPath(path)
    return _icon(draw)

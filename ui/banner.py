"""The dismissible strip above the video that shows a fault: amber for warnings, red for errors.

It remembers which stage's fault it shows and since when, so the window can update a fault in
place (a reconnection counting its attempts) and take it down when the video is back.
"""

from __future__ import annotations

import time
from typing import Literal

from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from ui.style import RECORD, WARNING

#: What the banner shows: a pipeline warning or error, or one the window found itself.
FaultKind = Literal["warning", "error"]


class Banner(QFrame):
    """A dismissible strip above the video for faults: amber for warnings, red for errors."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("bannerFrame")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setObjectName("banner")
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("\u2715")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.kind: FaultKind | None = None
        self.stage = ""
        self.shown_at = 0.0
        self.hide()

    def show_message(self, kind: FaultKind, stage: str, text: str) -> None:
        if not (self.isVisible() and (kind, stage) == (self.kind, self.stage)):
            self.shown_at = time.monotonic()
        self.kind, self.stage = kind, stage
        color = RECORD if kind == "error" else WARNING
        self.label.setStyleSheet(f"background: {color}; color: #111; padding: 6px 10px; border-radius: 4px;")
        self.label.setText(text)
        self.show()

    def shows_warning_of(self, stage: str) -> bool:
        """True while a warning of `stage` is on show (its progress may update it in place)."""
        return self.isVisible() and self.kind == "warning" and self.stage == stage

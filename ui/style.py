"""Look and feel: a dark palette suited to watching video, and one colour per expression.

The class colours are used by the probability bars and the history plot so that a line in the
plot and its bar read as the same thing without a legend.
"""

from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

from edgefer.classes import EXPRESSIONS

#: Expression -> colour (hex), distinguishable on a dark background.
CLASS_COLORS: dict[str, str] = {
    "neutral": "#a0a7b4",
    "happiness": "#f5c542",
    "surprise": "#4fd1e8",
    "fear": "#b784f5",
    "anger": "#f0544f",
    "disgust": "#6fcf6a",
    "sadness": "#4f8ff0",
}
assert set(CLASS_COLORS) == set(EXPRESSIONS)

BACKGROUND = "#16181d"
PANEL = "#20232a"
PANEL_BORDER = "#2f333d"
TEXT = "#e6e8ec"
MUTED = "#8b919e"
ACCENT = "#3d8bfd"
RECORD = "#e5484d"
WARNING = "#f2a93b"


def class_color(index_or_name: int | str) -> QColor:
    name = EXPRESSIONS[index_or_name] if isinstance(index_or_name, int) else index_or_name
    return QColor(CLASS_COLORS[name])


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette: looks the same on every platform, including Xvfb."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: "#1b1e24",
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(MUTED))
    app.setPalette(pal)
    app.setStyleSheet(
        f"""
        QToolBar {{ border: none; spacing: 6px; padding: 4px; background: {PANEL}; }}
        QToolButton {{ padding: 4px 8px; border-radius: 4px; }}
        QToolButton:hover {{ background: {PANEL_BORDER}; }}
        QToolButton:checked {{ background: #2c3a52; }}
        QToolButton#recordButton:checked {{ background: {RECORD}; color: white; }}
        QDockWidget::title {{ padding: 6px; background: {PANEL}; }}
        QStatusBar {{ background: {PANEL}; }}
        QStatusBar QLabel {{ padding: 0 8px; }}
        QLabel#recLabel {{ color: {RECORD}; font-weight: bold; }}
        QFrame#facePanel {{ background: {PANEL}; border: 1px solid {PANEL_BORDER}; border-radius: 6px; }}
        QLabel#banner {{ padding: 6px 10px; border-radius: 4px; color: #111; font-weight: bold; }}
        """
    )

"""The plain OpenCV window of `edgefer run` (without --headless): newest frame, q/Esc quits.

Opened and driven from the thread that calls `run_pipeline` (OpenCV's HighGUI wants one thread).
Where no display exists (an SSH session, a service, a Jetson without a monitor) the window is
skipped with a warning instead of aborting the process, and the run goes on headless.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

log = logging.getLogger(__name__)

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc


def display_available() -> bool:
    """Whether a window can be opened (on Linux: an X11 or Wayland display is set)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Display:
    """One resizable OpenCV window."""

    def __init__(self, name: str = "edgefer") -> None:
        import cv2

        self._cv2 = cv2
        self.name = name
        self._sized = False
        # resizable, aspect kept, no Qt toolbar/status bar (a plain video window)
        cv2.namedWindow(name, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    @classmethod
    def open_or_none(cls, name: str = "edgefer") -> Display | None:
        if not display_available():
            log.warning("no display (DISPLAY/WAYLAND_DISPLAY unset): running headless")
            return None
        try:
            return cls(name)
        except Exception as exc:  # noqa: BLE001 - OpenCV built without GUI, X refused, ...
            log.warning("cannot open a window (%s): running headless", exc)
            return None

    def show(self, image: np.ndarray) -> None:
        if not self._sized:
            # A resizable window opens at a toolkit default size: start at the video's own size.
            self._cv2.resizeWindow(self.name, int(image.shape[1]), int(image.shape[0]))
            self._sized = True
        self._cv2.imshow(self.name, image)

    def poll_quit(self) -> bool:
        """Process window events; True when q/Esc was pressed or the window was closed."""
        key = self._cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            return True
        try:
            if self._cv2.getWindowProperty(self.name, self._cv2.WND_PROP_VISIBLE) < 1:
                return True
        except self._cv2.error:
            return True
        return False

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.name)
            self._cv2.waitKey(1)
        except Exception:  # noqa: BLE001
            pass

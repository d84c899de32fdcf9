"""Moved to `tests/support/training.py` (helpers out of `test_*` names, issue 13).

Kept only while an uncommitted test still imports the old name; it holds no tests, and the memo of
training runs is the one in `tests.support.training` (these are the same objects).
"""

from tests.support.training import *  # noqa: F403
from tests.support.training import landmark_cache, session_root, train_run  # noqa: F401

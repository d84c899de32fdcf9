"""The pure id logic: Hungarian assignment and IdAssigner on synthetic boxes (no MediaPipe)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgefer.tracking.ids import IdAssigner, hungarian
from edgefer.types import Box


def brute_force(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    return min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 4), (2, 5), (5, 2), (5, 5)])
def test_hungarian_is_optimal(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.random(shape)
        pairs = hungarian(cost)
        assert len(pairs) == min(shape)
        rows, cols = zip(*pairs)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(brute_force(cost))


def test_hungarian_empty() -> None:
    assert hungarian(np.zeros((0, 3))) == []
    assert hungarian(np.zeros((2, 0))) == []


def test_global_assignment_beats_greedy() -> None:
    # Greedy would take (0,0)=0.1 first and force (1,1)=1.0: total 1.1; optimal is 0.2 + 0.3.
    cost = np.array([[0.1, 0.2], [0.3, 1.0]])
    assert hungarian(cost) == [(0, 1), (1, 0)]


def box_at(cx: float, cy: float, size: float = 60.0) -> Box:
    return Box(cx - size / 2, cy - size / 2, size, size)


def test_ids_follow_faces_regardless_of_detection_order() -> None:
    ids = IdAssigner()
    first = ids.update([box_at(100, 100), box_at(300, 100)])
    assert first == [1, 2]
    for step in range(1, 20):
        left, right = box_at(100 + step, 100), box_at(300 - step, 100)
        order = [right, left] if step % 2 else [left, right]
        got = ids.update(order)
        expected = [2, 1] if step % 2 else [1, 2]
        assert got == expected


def test_crossing_neighbours_do_not_swap() -> None:
    """Two faces walking past each other at constant speed keep their ids through the crossing."""
    ids = IdAssigner()
    history: dict[int, list[float]] = {}
    for t in range(40):
        a = box_at(100 + 10 * t, 100)  # moves right
        b = box_at(490 - 10 * t, 110)  # moves left, passes a around t = 19
        for track_id, box in zip(ids.update([a, b]), [a, b]):
            history.setdefault(track_id, []).append(box.x)
    assert sorted(history) == [1, 2]
    assert np.all(np.diff(history[1]) > 0) and np.all(np.diff(history[2]) < 0)


def test_short_dropout_keeps_id_long_one_ends_it() -> None:
    ids = IdAssigner(max_missed=3)
    assert ids.update([box_at(100, 100)]) == [1]
    for _ in range(3):
        assert ids.update([]) == []
    assert ids.update([box_at(102, 100)]) == [1]  # 3 misses tolerated
    for _ in range(4):
        ids.update([])
    assert ids.tracks == []
    assert ids.update([box_at(102, 100)]) == [2]  # new id, 1 never reused


def test_constant_velocity_bridges_fast_motion_through_dropout() -> None:
    """A face moving 40 px/frame (2/3 of its size) missed for 2 frames is matched where predicted."""
    ids = IdAssigner(max_missed=3)
    for t in range(5):
        assert ids.update([box_at(100 + 40 * t, 100)]) == [1]
    ids.update([])
    ids.update([])
    assert ids.update([box_at(100 + 40 * 7, 100)]) == [1]


def test_far_away_detection_gets_a_new_id() -> None:
    ids = IdAssigner()
    ids.update([box_at(100, 100)])
    assert ids.update([box_at(500, 400)]) == [2]
    assert [t.track_id for t in ids.tracks] == [1, 2]


def test_ids_never_reused_after_reset() -> None:
    ids = IdAssigner()
    ids.update([box_at(100, 100), box_at(300, 100)])
    ids.reset()
    assert ids.update([box_at(100, 100)]) == [3]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="max_missed"):
        IdAssigner(max_missed=-1)
    with pytest.raises(ValueError, match="velocity_smoothing"):
        IdAssigner(velocity_smoothing=1.0)

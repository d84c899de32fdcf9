"""The AU codebook and the AU region table: pure data, checked against method.md and the mesh."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.au import AU_REGIONS, CODEBOOK, IBUG68_TO_MESH, REFERENCE_CODE_CODEBOOK, au_by_number, expression_aus
from edgefer.au.mesh import NUM_FACE_POINTS, to_ibug68
from edgefer.classes import EXPRESSIONS, INDEX, NEUTRAL


def test_codebook_follows_the_paper_figure():
    numbers = {EXPRESSIONS[i]: tuple(au.number for au in expression_aus(i)) for i in range(len(EXPRESSIONS))}
    assert numbers == {
        "neutral": (),
        "happiness": (6, 12, 25),
        "surprise": (1, 2, 5, 26, 27),
        "fear": (1, 2, 4, 5, 20, 25, 26, 27),
        "anger": (4, 5, 7, 10, 17, 23, 24, 25, 26),
        "disgust": (9, 10, 16, 17, 25, 26),
        "sadness": (1, 4, 6, 15, 17),
    }
    # The decision: AU10 (Upper Lip Raiser) for disgust; the reference code's AU5 kept aside.
    assert 10 in CODEBOOK[INDEX["disgust"]] and 5 not in CODEBOOK[INDEX["disgust"]]
    assert REFERENCE_CODE_CODEBOOK[INDEX["disgust"]] == (9, 5, 16, 17, 25, 26)
    assert {k: v for k, v in REFERENCE_CODE_CODEBOOK.items() if k != INDEX["disgust"]} == {
        k: v for k, v in CODEBOOK.items() if k != INDEX["disgust"]}


def test_expression_lookup_accepts_names_aliases_and_numpy_ints():
    assert expression_aus("happy") == expression_aus("Happiness") == expression_aus(np.int64(1))
    assert expression_aus(NEUTRAL) == ()
    with pytest.raises(ValueError, match="happiness"):
        expression_aus("joy")
    with pytest.raises(ValueError):
        expression_aus(7)


def test_au_table_is_complete_and_well_formed():
    # The reference code's 20 AUs, each with its FACS number, once.
    assert sorted(au.code_id for au in AU_REGIONS) == list(range(20))
    assert len({au.number for au in AU_REGIONS}) == 20
    assert au_by_number(12).name == "Lip Corner Puller" and au_by_number(12).code == "AU12"
    with pytest.raises(ValueError, match="AU99"):
        au_by_number(99)
    for au in AU_REGIONS:
        assert au.shapes and au.reference
        assert len(au.shapes) in (1, 2)
        sides = [s.side for s in au.shapes]
        if len(au.shapes) == 2 and sides != ["C", "C"]:
            assert sides == ["L", "R"], au
        for s in au.shapes:
            groups = [s.centre] + [g for span in (s.span_x, s.span_y) if span for g in span]
            for g in groups:
                assert all(0 <= k < NUM_FACE_POINTS for k in g), (au.code, g)
            assert all(0 <= k < 68 for k in s.ibug) and s.ibug
            assert all(0 < v < 1 for v in s.semi_axes), "sizes are fractions of the IOD"


def test_ibug_table_is_a_permutation_of_distinct_mesh_points():
    assert len(IBUG68_TO_MESH) == 68
    assert len(set(IBUG68_TO_MESH)) == 68
    assert all(0 <= k < NUM_FACE_POINTS for k in IBUG68_TO_MESH)
    pts = np.random.default_rng(0).random((478, 3))
    assert np.array_equal(to_ibug68(pts), pts[list(IBUG68_TO_MESH)])

"""The expert codebook: which action units each expression shows (expression -> AUs).

Decision (method.md "Decisions" 2): edgefer uses the paper's figure (fig. 2, `doc/codebook-aus.png`),
not the reference code, for disgust: AU9 Nose Wrinkler, **AU10 Upper Lip Raiser**, AU16, AU17, AU25,
AU26, as FACS describes disgust. The reference code (`EXP2AU`) lists its internal id 3, which is AU5
Upper *Lid* Raiser, and so draws both eyes for disgust; its published numbers and weights were made
with that version. `REFERENCE_CODE_CODEBOOK` keeps the code's version for anyone reproducing them.
All other expressions are identical in the code and the figure. Neutral has no AUs: it gets no map
(cross-entropy only) and is left out of the interpretability metrics.

Keys are the project's class indices (`edgefer.classes`), so there is one class order everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from edgefer.au.regions import AU, au_by_number
from edgefer.classes import EXPRESSIONS, INDEX, class_index

#: Expression index -> FACS AU numbers, in the order the reference code lists them.
CODEBOOK: Mapping[int, tuple[int, ...]] = MappingProxyType(
    {
        INDEX["neutral"]: (),
        INDEX["happiness"]: (6, 12, 25),
        INDEX["surprise"]: (1, 2, 5, 26, 27),
        INDEX["fear"]: (1, 2, 4, 5, 20, 25, 26, 27),
        INDEX["anger"]: (4, 5, 7, 10, 17, 23, 24, 25, 26),
        INDEX["disgust"]: (9, 10, 16, 17, 25, 26),
        INDEX["sadness"]: (1, 4, 6, 15, 17),
    }
)

#: The reference code's `EXP2AU` in FACS numbers: differs only for disgust (AU5 instead of AU10).
REFERENCE_CODE_CODEBOOK: Mapping[int, tuple[int, ...]] = MappingProxyType(
    {**CODEBOOK, INDEX["disgust"]: (9, 5, 16, 17, 25, 26)}
)

assert set(CODEBOOK) == set(range(len(EXPRESSIONS)))


def resolve_expression(expression: int | str | np.integer) -> int:
    """Class index of an expression given as index (Python or NumPy int), name or alias."""
    if isinstance(expression, np.integer):
        expression = int(expression)
    return class_index(expression)


def expression_aus(expression: int | str) -> tuple[AU, ...]:
    """The AUs of an expression (index, name or alias), as AU records; () for neutral.

    Raises ValueError for an unknown expression, listing the valid names.
    """
    return tuple(au_by_number(n) for n in CODEBOOK[resolve_expression(expression)])

"""The expression classes, their one order, and every dataset's conversion table.

This is the single source of truth for class names and indices: training, evaluation, export
metadata, the runtime and the CSV columns all read it. The order is the reference code's
(interpretable-fer-aus, `default_labels_order.py`) so indices line up with the paper; names are
py-feat's lowercase nouns, which users of py-feat and OpenFace already parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: Index -> name. Neutral is 0 and has no AUs (no map, cross-entropy only).
EXPRESSIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "fear",
    "anger",
    "disgust",
    "sadness",
)
NUM_CLASSES = len(EXPRESSIONS)
NEUTRAL = 0
INDEX: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(EXPRESSIONS)})

#: Spellings users type (FER2013 folders, DeepFace/fer names, the paper's capitalised names).
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "angry": "anger",
        "happy": "happiness",
        "sad": "sadness",
        "surprised": "surprise",
        "disgusted": "disgust",
        "fearful": "fear",
        "scared": "fear",
    }
)

#: FER2013 folder names (Kaggle "images" layout) -> project index.
FER2013_FOLDERS: Mapping[str, int] = MappingProxyType(
    {
        "angry": INDEX["anger"],
        "disgust": INDEX["disgust"],
        "fear": INDEX["fear"],
        "happy": INDEX["happiness"],
        "neutral": INDEX["neutral"],
        "sad": INDEX["sadness"],
        "surprise": INDEX["surprise"],
    }
)

#: FER2013 CSV integer labels (0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral).
FER2013_CSV: Mapping[int, int] = MappingProxyType(
    {
        0: INDEX["anger"],
        1: INDEX["disgust"],
        2: INDEX["fear"],
        3: INDEX["happiness"],
        4: INDEX["sadness"],
        5: INDEX["surprise"],
        6: INDEX["neutral"],
    }
)

#: RAF-DB basic `list_patition_label.txt` ids (1-based).
RAFDB_BASIC: Mapping[int, int] = MappingProxyType(
    {
        1: INDEX["surprise"],
        2: INDEX["fear"],
        3: INDEX["disgust"],
        4: INDEX["happiness"],
        5: INDEX["sadness"],
        6: INDEX["anger"],
        7: INDEX["neutral"],
    }
)

#: AffectNet expression ids. 7 contempt, 8 none, 9 uncertain, 10 no-face are dropped (absent).
AFFECTNET: Mapping[int, int] = MappingProxyType(
    {
        0: INDEX["neutral"],
        1: INDEX["happiness"],
        2: INDEX["sadness"],
        3: INDEX["surprise"],
        4: INDEX["fear"],
        5: INDEX["disgust"],
        6: INDEX["anger"],
    }
)
AFFECTNET_DROPPED: frozenset[int] = frozenset({7, 8, 9, 10})


def class_index(name_or_index: str | int) -> int:
    """Resolve a class given as index, project name, alias or any capitalisation.

    Raises ValueError naming the value and the accepted names, so a typo in a CLI flag or a
    config file is caught where it was typed.
    """
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if 0 <= name_or_index < NUM_CLASSES:
            return name_or_index
        raise ValueError(f"class index {name_or_index} is outside 0..{NUM_CLASSES - 1}")
    key = str(name_or_index).strip().lower()
    key = _ALIASES.get(key, key)
    if key in INDEX:
        return INDEX[key]
    raise ValueError(
        f"unknown expression {name_or_index!r}; expected one of {', '.join(EXPRESSIONS)}"
    )

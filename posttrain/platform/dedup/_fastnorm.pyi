# Types of the C extension built from csrc/fastnorm.c (see its comment for the contract).
from typing import Any, TypeAlias

import numpy as np
from typing_extensions import Buffer

_Bytes: TypeAlias = Buffer | np.ndarray[Any, Any]

def normalize_ascii(
    data: _Bytes,
    offsets: _Bytes,
    fold: _Bytes,
    is_word: _Bytes,
    forms: _Bytes,
    form_offsets: _Bytes,
    hashes: _Bytes,
    word_offsets: _Bytes,
    /,
) -> tuple[int, int]: ...
def shingle_hashes(
    hashes: _Bytes,
    offsets: _Bytes,
    ngram: int,
    multiplier: int,
    shingles: _Bytes,
    shingle_offsets: _Bytes,
    /,
) -> int: ...

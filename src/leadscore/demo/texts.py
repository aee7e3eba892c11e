"""Fast text columns: ISO timestamps, ids and vocabulary look-ups built without Python loops.

Formatting 20 million timestamps with ``strftime`` takes most of a minute; writing the
digits into a fixed-width byte matrix and handing its buffer to Arrow takes a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

IntArray = npt.NDArray[np.int64]
_ZERO = ord("0")


def _digits(matrix: npt.NDArray[np.uint8], col: int, width: int, values: npt.NDArray[np.int64]) -> None:
    """Write ``values`` zero-padded into ``matrix[:, col:col + width]``."""
    rest = values
    for pos in range(col + width - 1, col - 1, -1):
        rest, digit = np.divmod(rest, 10)
        matrix[:, pos] = _ZERO + digit


def _fixed_width(matrix: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_] | None = None) -> pa.StringArray:
    """An Arrow string array whose i-th value is the bytes of ``matrix[i]``."""
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix)
    validity = None
    null_count = 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(n - valid.sum())
    array = pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=null_count
    )
    assert isinstance(array, pa.StringArray)
    return array


def iso_utc(seconds: IntArray, valid: npt.NDArray[np.bool_] | None = None) -> pa.StringArray:
    """Epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ`` text (years 1970-9999); null where not ``valid``."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if valid is not None:
        seconds = np.where(valid, seconds, 0)
    days = (seconds // 86_400).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    year = months.astype(np.int64) // 12 + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months).astype(np.int64) + 1
    sod = seconds % 86_400
    matrix = np.empty((len(seconds), 20), dtype=np.uint8)
    _digits(matrix, 0, 4, year)
    _digits(matrix, 5, 2, month)
    _digits(matrix, 8, 2, day)
    _digits(matrix, 11, 2, sod // 3600)
    _digits(matrix, 14, 2, sod // 60 % 60)
    _digits(matrix, 17, 2, sod % 60)
    for col, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "Z")):
        matrix[:, col] = ord(char)
    return _fixed_width(matrix, valid)


def numbered(prefix: str, numbers: IntArray, width: int) -> pa.StringArray:
    """``prefix`` + zero-padded ``numbers`` (e.g. ``L0000042``); ``width`` counts the digits."""
    head = prefix.encode("ascii")
    matrix = np.empty((len(numbers), len(head) + width), dtype=np.uint8)
    matrix[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    _digits(matrix, len(head), width, np.asarray(numbers, dtype=np.int64))
    return _fixed_width(matrix)


def digit_string(rng: np.random.Generator, n: int, pattern: str) -> pa.StringArray:
    """Random digits laid out by ``pattern`` (``d`` = a digit, anything else literal)."""
    raw = pattern.encode("ascii")
    matrix = np.empty((n, len(raw)), dtype=np.uint8)
    for col, char in enumerate(raw):
        if char == ord("d"):
            matrix[:, col] = _ZERO + rng.integers(0, 10, n, dtype=np.uint8)
        else:
            matrix[:, col] = char
    return _fixed_width(matrix)


def take(vocabulary: pa.Array, codes: npt.NDArray[np.integer] | IntArray) -> pa.Array:
    """``vocabulary[codes]``; negative codes become null."""
    codes = np.asarray(codes)
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask if mask.any() else None)
    return vocabulary.take(indices)


def vocab(words: Sequence[str]) -> pa.StringArray:
    """A vocabulary (Arrow string array) from Python strings."""
    array = pa.array(list(words), type=pa.string())
    assert isinstance(array, pa.StringArray)
    return array

"""MPAN cores: check digit, validation and construction.

An MPAN core is 13 digits: distributor id (2) + unique id (10) + check digit. The check
digit is sum(d_i * w_i) mod 11 mod 10 over the first 12 digits with the prime weights
below (MRA / Elexon definition).
"""

from __future__ import annotations

import numpy as np

WEIGHTS = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)
_WEIGHTS_ARR = np.array(WEIGHTS, dtype=np.int64)
_POW10 = 10 ** np.arange(11, -1, -1, dtype=np.int64)


def check_digit(first12: str) -> int:
    """Check digit for the first 12 digits of an MPAN core."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"need 12 digits, got {first12!r}")
    return sum(int(d) * w for d, w in zip(first12, WEIGHTS, strict=True)) % 11 % 10


def is_valid_core(core: str) -> bool:
    """True when ``core`` is 13 digits whose last digit is the right check digit."""
    return (
        isinstance(core, str)
        and len(core) == 13
        and core.isascii()
        and core.isdigit()
        and check_digit(core[:12]) == int(core[12])
    )


def check_digits_vec(first12: np.ndarray) -> np.ndarray:
    """Vectorised check digits for int64 values of the first 12 digits."""
    digits = (np.asarray(first12, dtype=np.int64)[:, None] // _POW10) % 10
    return (digits @ _WEIGHTS_ARR) % 11 % 10


def make_cores(distributor_id: np.ndarray, unique_id: np.ndarray) -> np.ndarray:
    """MPAN cores as int64 from 2-digit distributor ids and 10-digit unique ids."""
    first12 = np.asarray(distributor_id, dtype=np.int64) * 10**10 + np.asarray(unique_id, dtype=np.int64)
    return first12 * 10 + check_digits_vec(first12)


def cores_to_str(cores: np.ndarray) -> np.ndarray:
    """13-character zero-padded strings (distributor ids 10-99 keep them 13 digits)."""
    return np.char.zfill(np.asarray(cores, dtype=np.int64).astype(str), 13)

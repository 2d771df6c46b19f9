"""Stable, counter-based random streams keyed by (scenario seed, entity, stream name).

Every random number in the product is a pure function of its keys: the scenario seed,
a stable entity id (an MPAN core as an integer, or a site index), a stream name and a
counter (a day or half-hour ordinal). Nothing depends on partition index, worker or
Python's ``hash()``, so any work unit regenerates alone and equals the same rows of a
full run. The mixer is SplitMix64 (Steele, Lea & Flood 2014), vectorised in numpy
uint64 arithmetic, which wraps modulo 2**64 as the algorithm needs.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / (1 << 53)


def stream_key(seed: int, name: str) -> np.uint64:
    """A 64-bit key for one named stream of one scenario seed (blake2b, stable across runs)."""
    digest = hashlib.blake2b(f"{seed}\x1f{name}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


_CHUNK = 1 << 15  # elements mixed at a time in place: the temporaries stay in cache


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def _mix_inplace(x: np.ndarray) -> np.ndarray:
    """``_mix`` of a fresh C-contiguous uint64 array, overwriting it (the same bits, no
    full-size temporaries): a market-scale unit mixes millions of draws."""
    flat = x.reshape(-1)
    tmp = np.empty(min(flat.size, _CHUNK), dtype=np.uint64)
    for i in range(0, flat.size, _CHUNK):
        seg = flat[i : i + _CHUNK]
        t = tmp[: seg.size]
        np.right_shift(seg, _S30, out=t)
        np.bitwise_xor(seg, t, out=seg)
        np.multiply(seg, _M1, out=seg)
        np.right_shift(seg, _S27, out=t)
        np.bitwise_xor(seg, t, out=seg)
        np.multiply(seg, _M2, out=seg)
        np.right_shift(seg, _S31, out=t)
        np.bitwise_xor(seg, t, out=seg)
    return x


def _mixed(x: np.ndarray) -> np.ndarray:
    """``_mix`` of an intermediate result: in place when it is an array of our own."""
    if isinstance(x, np.ndarray) and x.ndim and x.flags.c_contiguous and x.flags.writeable:
        return _mix_inplace(x)
    return _mix(x)


def random_u64(key: np.uint64, entity: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Uniform 64-bit integers for (key, entity, counter); arrays broadcast."""
    entity = np.asarray(entity, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _mixed(entity ^ key)
        return _mixed(x + (counter + np.uint64(1)) * _GOLDEN)


def uniform(key: np.uint64, entity: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Floats in [0, 1) with 53 random bits."""
    u = random_u64(key, entity, counter)
    if not (isinstance(u, np.ndarray) and u.ndim):
        return (u >> _S11).astype(np.float64) * _INV_2_53
    np.right_shift(u, _S11, out=u)
    out = u.astype(np.float64)
    out *= _INV_2_53
    return out


def normal(key: np.uint64, entity: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Standard normal draws (Box-Muller on two sub-counters of the same counter)."""
    counter = np.asarray(counter, dtype=np.uint64) * np.uint64(2)
    u1 = uniform(key, entity, counter)
    u2 = uniform(key, entity, counter + np.uint64(1))
    if not (isinstance(u1, np.ndarray) and u1.ndim and isinstance(u2, np.ndarray) and u2.shape == u1.shape):
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
    # The same operations in place on the two fresh arrays.
    np.negative(u1, out=u1)
    np.log1p(u1, out=u1)
    np.multiply(u1, -2.0, out=u1)
    np.sqrt(u1, out=u1)
    np.multiply(u2, 2.0 * np.pi, out=u2)
    np.cos(u2, out=u2)
    u1 *= u2
    return u1


def choice(key: np.uint64, entity: np.ndarray, weights: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Index into ``weights`` (need not be normalised) for each entity."""
    weights = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(weights)
    cdf = cdf / cdf[-1]
    idx = np.searchsorted(cdf, uniform(key, entity, counter), side="right")
    return np.minimum(idx, len(weights) - 1)

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


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def random_u64(key: np.uint64, entity: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Uniform 64-bit integers for (key, entity, counter); arrays broadcast."""
    entity = np.asarray(entity, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(entity ^ key)
        return _mix(x + (counter + np.uint64(1)) * _GOLDEN)


def uniform(key: np.uint64, entity: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Floats in [0, 1) with 53 random bits."""
    return (random_u64(key, entity, counter) >> _S11).astype(np.float64) * _INV_2_53


def normal(key: np.uint64, entity: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Standard normal draws (Box-Muller on two sub-counters of the same counter)."""
    counter = np.asarray(counter, dtype=np.uint64) * np.uint64(2)
    u1 = uniform(key, entity, counter)
    u2 = uniform(key, entity, counter + np.uint64(1))
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def choice(key: np.uint64, entity: np.ndarray, weights: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
    """Index into ``weights`` (need not be normalised) for each entity."""
    weights = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(weights)
    cdf = cdf / cdf[-1]
    idx = np.searchsorted(cdf, uniform(key, entity, counter), side="right")
    return np.minimum(idx, len(weights) - 1)

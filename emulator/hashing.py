"""Deterministic per-stone hash words, and identifiers that can be decoded back to a stone index.

Everything about a stone that is not a filterable column (ids, certificate number, measurements,
media URLs, supplier...) is derived at projection time from `(seed, stone index, salt)`. The mixer is
the splitmix64 finaliser, a bijection on 64-bit words, so identifiers built from it can be inverted:
`ids` and `certificate_numbers` filters cost O(1) per value instead of a 2M-entry lookup table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_GOLDEN_INV = pow(_GOLDEN, -1, 1 << 64)
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_M1_INV, _M2_INV = pow(_M1, -1, 1 << 64), pow(_M2, -1, 1 << 64)
_CERT_MODULUS = 10**9
_TAIL = 0x5DEECE66D  # separates a UUID's tail bits from its decodable head


class Salt(IntEnum):
    """One independent hash stream per derived attribute; never reorder (it would reshuffle stones)."""

    STONE_ID = 1
    OFFER_ID = 2
    CERT_ID = 3
    SPELLING = 4
    MARKUP = 5
    SUPPLIER = 6
    MEASURE = 7
    DEPTH = 8
    TABLE = 9
    ANGLES = 10
    GIRDLE = 11
    TINGE = 12
    ORIGIN = 13
    DELIVERY = 14
    LABGROWN = 15
    FANCY = 16
    MALFORMED = 17
    MALFORMED_KIND = 18
    HOLD = 19
    STOCK = 20
    CERT_NUMBER = 21
    EYE_CLEAN = 22
    HOSTILE = 23
    HOSTILE_KIND = 24


def mix64(x: int) -> int:
    """splitmix64 finaliser on a Python int."""
    x &= MASK64
    x = ((x ^ (x >> 30)) * _M1) & MASK64
    x = ((x ^ (x >> 27)) * _M2) & MASK64
    return x ^ (x >> 31)


def _unshift(y: int, shift: int) -> int:
    x = y
    for _ in range(64 // shift + 1):
        x = y ^ (x >> shift)
    return x


def unmix64(y: int) -> int:
    """Inverse of `mix64`."""
    y = _unshift(y & MASK64, 31)
    y = (y * _M2_INV) & MASK64
    y = _unshift(y, 27)
    y = (y * _M1_INV) & MASK64
    return _unshift(y, 30)


def mix64_array(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (numpy wraps on overflow, as wanted)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(_M1)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(_M2)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


@lru_cache(maxsize=1024)
def _key(seed: int, salt: int) -> int:
    return mix64(mix64(seed) ^ (salt * _GOLDEN))


@lru_cache(maxsize=1024)
def _tail_key(seed: int, salt: int) -> int:
    return mix64(_key(seed, salt) ^ _TAIL)


def _words(indices: np.ndarray, key: int) -> np.ndarray:
    return mix64_array(indices.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64(key))


def _format_uuid(high: int, low: int) -> str:
    h = f"{high:016x}{low:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_U = np.uint64


@dataclass(frozen=True)
class StoneHasher:
    """Hash words and decodable identifiers of the stones of one seed."""

    seed: int

    def key(self, salt: int) -> int:
        return _key(self.seed, salt)

    def words(self, indices: np.ndarray, salt: int) -> np.ndarray:
        """One 64-bit word per stone; for a fixed salt, index -> word is a bijection."""
        return _words(indices, _key(self.seed, salt))

    def units(self, indices: np.ndarray, salt: int) -> np.ndarray:
        """One float in [0, 1) per stone."""
        return (self.words(indices, salt) >> _U(11)).astype(np.float64) * (1.0 / (1 << 53))

    def word(self, index: int, salt: int) -> int:
        return mix64((index * _GOLDEN + _key(self.seed, salt)) & MASK64)

    def index_of_word(self, word: int, salt: int) -> int:
        return ((unmix64(word) - _key(self.seed, salt)) * _GOLDEN_INV) & MASK64

    # -- UUID-shaped identifiers ------------------------------------------------------------
    def uuids(self, indices: np.ndarray, salt: int) -> list[str]:
        """Version-4-shaped UUIDs whose 64 payload bits around the version nibble encode the index."""
        a = self.words(indices, salt)
        b = _words(indices, _tail_key(self.seed, salt))
        high = ((a >> _U(16)) << _U(16)) | _U(0x4000) | (a & _U(0x0FFF))
        low = _U(0b10 << 62) | (((a >> _U(12)) & _U(0xF)) << _U(58)) | (b & _U((1 << 58) - 1))
        return [_format_uuid(h, lo) for h, lo in zip(high.tolist(), low.tolist(), strict=True)]

    def uuid(self, index: int, salt: int) -> str:
        return self.uuids(np.array([index], dtype=np.int64), salt)[0]

    def uuid_index(self, text: str, salt: int) -> int | None:
        """Index encoded by `uuid(index, salt)`, or None when `text` is not one of ours."""
        try:
            value = int(text.replace("-", ""), 16)
        except ValueError:
            return None
        high, low = value >> 64, value & MASK64
        a = (high & ~0xFFFF & MASK64) | (high & 0x0FFF) | (((low >> 58) & 0xF) << 12)
        index = self.index_of_word(a, salt)
        # The tail bits are checked by re-encoding, so a forged or foreign UUID decodes to nothing.
        if index >= 1 << 40 or self.uuid(index, salt) != text.lower():
            return None
        return index

    # -- certificate numbers ----------------------------------------------------------------
    def cert_core(self, indices: np.ndarray) -> np.ndarray:
        """A 9-digit number per stone: an affine permutation of the index modulo 10^9."""
        a, b = self._cert_affine()
        return (indices.astype(np.int64) * a + b) % _CERT_MODULUS

    def cert_core_index(self, core: int) -> int:
        a, b = self._cert_affine()
        return ((core - b) * pow(a, -1, _CERT_MODULUS)) % _CERT_MODULUS

    def _cert_affine(self) -> tuple[int, int]:
        word = self.key(Salt.CERT_NUMBER)
        a = 100_000_001 + 2 * (word % 400_000_000)  # odd, < 10^9 so a*index fits in int64
        if a % 5 == 0:
            a += 2  # must be coprime with 10^9 to be invertible
        return a, (word >> 32) % _CERT_MODULUS


_DIGITS = re.compile(r"\d+")


def certificate_core(text: str) -> int | None:
    """The 9-digit core of a certificate number we issued (`LG412345678`, `2412345678`, ...)."""
    digits = "".join(_DIGITS.findall(text))
    if len(digits) < 9:
        return None
    return int(digits[-9:])

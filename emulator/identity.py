"""Stone, offer and certificate identifiers: derived from (seed, index), decoded back for filters."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from emulator import vocab
from emulator.hashing import Salt, StoneHasher, certificate_core

# Certificate number layout per lab, around a 9-digit core that encodes the stone index.
_CERT_PREFIX = {"GIA": "2", "IGI": "", "HRD": "21", "GCAL": "3"}
_LAB_NAMES = vocab.LABS.canonical


def stone_ids(hasher: StoneHasher, indices: np.ndarray) -> list[str]:
    return hasher.uuids(indices, Salt.STONE_ID)


def offer_ids(hasher: StoneHasher, indices: np.ndarray) -> list[str]:
    return hasher.uuids(indices, Salt.OFFER_ID)


def certificate_ids(hasher: StoneHasher, indices: np.ndarray) -> list[str]:
    return hasher.uuids(indices, Salt.CERT_ID)


def certificate_numbers(hasher: StoneHasher, indices: np.ndarray, lab: np.ndarray, labgrown: np.ndarray) -> list[str]:
    cores = hasher.cert_core(indices).tolist()
    return [
        f"{'LG' if grown and _LAB_NAMES[code] == 'IGI' else _CERT_PREFIX[_LAB_NAMES[code]]}{core:09d}"
        for core, code, grown in zip(cores, lab.tolist(), labgrown.tolist(), strict=True)
    ]


def resolve(
    hasher: StoneHasher,
    size: int,
    lab: np.ndarray,
    labgrown: np.ndarray,
    ids: Iterable[str] | None,
    cert_numbers: Iterable[str] | None,
) -> list[int]:
    """Indices named by stone/offer ids AND certificate numbers (either may be None = no restriction)."""
    chosen: set[int] | None = None
    if ids is not None:
        chosen = {i for i in (_id_index(hasher, text, size) for text in ids) if i is not None}
    if cert_numbers is not None:
        found = (_cert_index(hasher, text, size, lab, labgrown) for text in cert_numbers)
        by_cert = {i for i in found if i is not None}
        chosen = by_cert if chosen is None else chosen & by_cert
    return sorted(chosen or ())


def _id_index(hasher: StoneHasher, text: str, size: int) -> int | None:
    for salt in (Salt.STONE_ID, Salt.OFFER_ID):
        index = hasher.uuid_index(text.strip(), salt)
        if index is not None and index < size:
            return index
    return None


def _cert_index(hasher: StoneHasher, text: str, size: int, lab: np.ndarray, labgrown: np.ndarray) -> int | None:
    core = certificate_core(text)
    if core is None:
        return None
    index = hasher.cert_core_index(core)
    if index >= size:
        return None
    one = np.array([index])
    issued = certificate_numbers(hasher, one, lab[one], labgrown[one])[0]
    return index if issued == text.strip().upper() else None

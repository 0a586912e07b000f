"""Server-key tokens (`ServerKeys.seal`): bound to their purpose, one spelling each, rotation-tolerant."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.access.server_keys import InvalidToken, MalformedToken, ServerKeys

KEYS = ServerKeys(((2, b"new" * 11), (1, b"old" * 11)))


@given(st.binary(max_size=200))
def test_a_sealed_payload_comes_back_only_for_its_purpose(payload: bytes) -> None:
    token = KEYS.seal(b"media", payload)
    assert KEYS.unseal(b"media", token) == payload
    with pytest.raises(InvalidToken):
        KEYS.unseal(b"cursor", token)


def test_the_previous_key_still_verifies_and_a_rotated_out_one_does_not() -> None:
    old = ServerKeys(((1, b"old" * 11),)).seal(b"cursor", b"x")
    assert KEYS.unseal(b"cursor", old) == b"x"
    rotated = ServerKeys(((3, b"newer" * 7), (2, b"new" * 11)))
    with pytest.raises(InvalidToken):
        rotated.unseal(b"cursor", old)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("2.", "\uff12.", 1),  # a fullwidth digit: int() would take it
        lambda t: t + "=",
        lambda t: t.replace(".", ".!", 1),  # base64 would skip the stray character
        # A 16-byte tag leaves 4 unused bits in its last character: set one, same bytes, other spelling.
        lambda t: t[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}[t[-1]],
        lambda t: t + "\x00",
        lambda t: t + "\n",  # `$` would let it through
        lambda t: t + "." + t,
        lambda t: "2." + "A" * 3000 + ".AAAA",
    ],
)
def test_every_other_spelling_is_malformed(mangle) -> None:
    token = KEYS.seal(b"cursor", b"position")
    with pytest.raises(MalformedToken):
        KEYS.unseal(b"cursor", mangle(token))

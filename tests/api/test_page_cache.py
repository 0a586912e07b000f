"""The search-answer cache stays within its byte budget and evicts the least recently used first."""

from api.state import ByteBudgetCache


def test_byte_budget_evicts_least_recently_used_and_skips_oversized() -> None:
    cache: ByteBudgetCache[str] = ByteBudgetCache(max_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now "b" is the least recently used
    cache.put("c", b"cccc")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"aaaa", None, b"cccc")
    assert cache.size == 8
    cache.put("a", b"a")  # replacing an entry adjusts the size instead of adding to it
    assert cache.size == 5
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None
    assert len(cache) == 2

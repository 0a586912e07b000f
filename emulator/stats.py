"""Counters for `GET /_emulator/stats`: requests by kind and outcome, pages, items and counts served."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self.pages_served = 0
        self.items_served = 0
        self.counts_answered = 0
        self.short_pages = 0

    def request(self, kind: str, outcome: str) -> None:
        with self._lock:
            self._requests[(kind, outcome)] += 1

    def page(self, items: int, short: bool) -> None:
        with self._lock:
            self.pages_served += 1
            self.items_served += items
            self.short_pages += int(short)

    def count(self) -> None:
        with self._lock:
            self.counts_answered += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_kind: dict[str, dict[str, int]] = {}
            for (kind, outcome), n in sorted(self._requests.items()):
                by_kind.setdefault(kind, {})[outcome] = n
            return {
                "requests": by_kind,
                "pages_served": self.pages_served,
                "items_served": self.items_served,
                "short_pages": self.short_pages,
                "counts_answered": self.counts_answered,
            }

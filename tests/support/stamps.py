"""When calls made from several threads at once returned: what the shared request budget is measured on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def stamped_calls(call: Callable[[], object], threads: int, per_thread: int) -> list[float]:
    """Run `call` `per_thread` times in each of `threads` threads; the time each call returned.

    Wall-clock time, not monotonic: stamps from several processes are compared with each other.
    """
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(per_thread):
            call()
            with lock:
                stamps.append(time.time())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return stamps

"""Prefetching: prepare the next batches in background threads while the current one is scored.

Decoding (PIL, OpenCV) and resizing release the GIL, as does torch while it
computes, so one or two helper threads keep the model fed without worker
processes (which would need picklable inputs and a copy of every image).
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
U = TypeVar("U")


def prefetch(items: Iterable[T], prepare: Callable[[T], U], ahead: int = 2, workers: int = 1) -> Iterator[U]:
    """``prepare(item)`` for each item, in order, computed up to ``ahead`` items ahead of
    the consumer by ``workers`` background threads.

    ``items`` is read lazily in the consumer's thread (so database reads and
    other thread-bound work stay there); only ``prepare`` runs in the helpers.
    An exception raised by ``prepare`` is raised where its result is taken;
    closing the iterator early drops the work not yet taken.
    """
    if ahead < 1 or workers < 1:
        raise ValueError("ahead and workers must be >= 1")
    source = iter(items)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch") as pool:
        try:
            for item in source:
                pending.append(pool.submit(prepare, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def parallel_map(function: Callable[[T], U], items: Iterable[T], workers: int | None = None) -> list[U]:
    """``[function(x) for x in items]`` on up to ``workers`` threads (default: the CPU count, at most 8)."""
    items = list(items)
    workers = min(len(items), workers or min(8, os.cpu_count() or 1))
    if workers <= 1:
        return [function(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parallel-map") as pool:
        return list(pool.map(function, items))

"""Thread pools kept for the life of the process.

Starting a pool's threads for every series cost more than the short work they were
started for (a series' files hashed, its files read ahead): on a loaded machine a
thread's start took a millisecond and more, four of them per series of 50 files.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache


@cache
def kept_pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The process's pool of this name; its threads start as work first needs them and
    then wait for the next. Work given to it must not wait for other work of the same
    pool, or a full pool would wait on itself."""
    return ThreadPoolExecutor(threads, thread_name_prefix=name)

"""Process-level memory helpers for processes corpusforge owns (its CLI and its pool workers)."""

from __future__ import annotations

import ctypes
import os
import resource
import sys


class _NoPandas:
    """pyarrow imports pandas (when installed) on its first pa.array() call, only to recognise pandas
    inputs, which corpusforge never passes; that import costs ~45 MB RSS and ~0.5 s per process."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded in corpusforge's own processes (corpusforge.procs.lean)")
        return None


def lean(system_arrow_pool: bool = False) -> None:
    """Call first thing in a process whose whole job is corpusforge's (never in a user's or Spark's):
    keeps pandas out unless it is already loaded, and caps glibc at 2 malloc arenas (the Rust tokenizer's
    threads otherwise each keep an arena of freed memory: ~25 MB measured). system_arrow_pool: Arrow
    allocates with malloc instead of mimalloc, which keeps freed pages (~60 MB less peak in the sampler)."""
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())
    if sys.platform.startswith("linux"):
        try:  # the process's own symbols include glibc's (find_library would run ldconfig in a subprocess)
            ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX
        except (OSError, AttributeError):
            pass
    if system_arrow_pool:
        # read when Arrow creates its default pool; inherited by spawned workers (set_memory_pool() later
        # leaves the readers' allocations on mimalloc: measured)
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def peak_rss_bytes() -> int:
    """Peak RSS of this process image. Not ru_maxrss, which survives exec: a child forked from a big
    parent reports the parent's size (measured: 358 MB for a 200 MB sampler started from a bench)."""
    return _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

"""Named fault points for crash tests: CORPUSFORGE_FAULT=<point>:<n> SIGKILLs the process the n-th
time it reaches <point>, so a failing kill can be replayed exactly; <point>:<n>:raise raises instead
(a task failure rather than a lost worker). With CORPUSFORGE_FAULT_FIRST_ATTEMPT=1 the fault fires only
in a task's first attempt (engines report the attempt with set_attempt), to test cluster retries;
CORPUSFORGE_FAULT_LOG=<file> records every fault that fired."""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("CORPUSFORGE_FAULT", "")
_FIRST_ONLY = os.environ.get("CORPUSFORGE_FAULT_FIRST_ATTEMPT") == "1"
_hits: dict[str, int] = {}
_attempt = 0

POINTS = ("write:mid", "write:before_rename", "write:after_rename", "part:before_marker",
          "part:after_marker", "global:before_marker", "manifest:before_write")


class InjectedFault(RuntimeError):
    pass


def set_attempt(n: int) -> None:
    global _attempt
    _attempt = n


def point(name: str) -> None:
    if not _SPEC or (_FIRST_ONLY and _attempt > 0):
        return
    spec, raise_ = (_SPEC[: -len(":raise")], True) if _SPEC.endswith(":raise") else (_SPEC, False)
    target, _, nth = spec.rpartition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth):
        if os.environ.get("CORPUSFORGE_FAULT_LOG"):  # lets a test prove the fault fired in a worker process
            with open(os.environ["CORPUSFORGE_FAULT_LOG"], "a", encoding="utf-8") as f:
                f.write(f"{name} attempt={_attempt} pid={os.getpid()}\n")
        if raise_:
            raise InjectedFault(f"injected fault at {name}")
        os.kill(os.getpid(), signal.SIGKILL)

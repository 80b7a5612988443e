"""Named fault points for crash tests: CORPUSFORGE_FAULT=<point>:<n> SIGKILLs the process the n-th
time it reaches <point>, so a failing kill can be replayed exactly."""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("CORPUSFORGE_FAULT", "")
_hits: dict[str, int] = {}

POINTS = ("write:mid", "write:before_rename", "write:after_rename", "part:before_marker",
          "part:after_marker", "manifest:before_write")


def point(name: str) -> None:
    if not _SPEC:
        return
    target, _, nth = _SPEC.rpartition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)

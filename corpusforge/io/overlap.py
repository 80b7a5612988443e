"""Plan time, before anything is touched: an output never equals, contains or lies inside an input.
Local paths are compared after resolving symlinks; URIs as keys (an object store has no links)."""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
from typing import Iterable

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs


def _real(p: str) -> str:
    return os.path.realpath(os.path.abspath(p))


def _within(p: str, folder: str, sep: str = os.sep) -> bool:
    return p == folder or p.startswith(folder.rstrip(sep) + sep)


def _glob_reaches(segments: list[str], rel: list[str]) -> bool:
    """Whether a glob's segments can match some path strictly below the folder `rel` (both relative to
    the glob's literal base): `**` spans any number of folders, other segments one name each."""
    if not rel:
        return bool(segments)
    if not segments:
        return False
    if segments[0] == "**":
        return _glob_reaches(segments[1:], rel) or _glob_reaches(segments, rel[1:])
    return fnmatch.fnmatchcase(rel[0], segments[0]) and _glob_reaches(segments[1:], rel[1:])


def _remote_clash(out: str, pattern: str) -> bool:
    """Whether an input URI (or URI glob) and a URI output overlap: the same store and key prefix."""
    segs = pattern.rstrip("/").split("/")
    k = next((i for i, s in enumerate(segs) if glob.has_magic(s)), len(segs))
    base, o = "/".join(segs[:k]), out.rstrip("/")
    if _within(base, o, "/"):
        return True
    return _within(o, base, "/") and (k == len(segs) or _glob_reaches(segs[k:], posixpath.relpath(o, base).split("/")))


def check_no_overlap(out: str, inputs: Iterable[str], config: str | None = None) -> None:
    """OUT must not equal, contain or lie inside an input path, no input glob may reach into OUT, and the
    config file must not live inside OUT."""
    inputs = list(inputs)
    if fs.is_remote(out):
        clash = [p for p in inputs if fs.is_remote(p) and _remote_clash(out, p)]
        if clash:
            raise CorpusforgeError("output_overlaps_input", f"output {out} overlaps input {clash[0]!r}: a run must never "
                                   "write where it reads; pick an output prefix outside the inputs")
        return
    inputs = [p for p in inputs if not fs.is_remote(p)]
    o = _real(out)
    clash = []
    for pattern in inputs:
        if not glob.has_magic(pattern):
            p = _real(pattern)
            if _within(o, p) and (o == p or os.path.isdir(p)) or _within(p, o):
                clash.append(pattern)
            continue
        parts = os.path.abspath(pattern).split(os.sep)
        k = next(i for i, s in enumerate(parts) if glob.has_magic(s))
        base = _real(os.sep.join(parts[:k]) or os.sep)
        if _within(base, o):
            clash.append(pattern)
        elif _within(o, base) and _glob_reaches(parts[k:], os.path.relpath(o, base).split(os.sep)):
            clash.append(pattern)
    if clash:
        raise CorpusforgeError("output_overlaps_input", f"output {out} overlaps input {clash[0]!r}: a run must never "
                               "write where it reads; pick an output folder outside the inputs")
    if config and _within(_real(config), o):
        raise CorpusforgeError("output_overlaps_input", f"output {out} holds the config file {config}; "
                               "pick an output folder that does not contain it")


def check_files_outside(out: str, files: Iterable[str]) -> None:
    """The resolved input files (after following symlinks) must not lie inside OUT."""
    if fs.is_remote(out):
        return  # the listed inputs were checked by check_no_overlap against the URI prefix
    o = _real(out)
    for f in files:
        if fs.is_remote(f):
            continue
        if _within(_real(f), o):
            raise CorpusforgeError("output_overlaps_input", f"input {f} lies inside the output {out}")

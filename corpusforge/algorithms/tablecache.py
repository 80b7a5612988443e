"""An on-disk cache for the per-code-point tables the kernels read (category codes, NFKC maps, character
classes read off Arrow's kernels): each costs 0.1–0.8 s of Python over 1.1M code points in every process
that sets a stage up, and depends only on code and library versions, so it is built once per machine.

The key holds the table's name and arguments, Python's Unicode database version, pyarrow's and numpy's
versions and the sha256 of the code that builds tables; a file is written under a name made of that key
(temp file + rename, so a reader never sees half a file) and a file that does not load is rebuilt. Where
the cache folder cannot be written the table is simply built. CORPUSFORGE_CACHE names the folder
(default $XDG_CACHE_HOME/corpusforge or ~/.cache/corpusforge); CORPUSFORGE_CACHE=off turns it off."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

_PKG = Path(__file__).resolve().parent.parent


@functools.cache
def _code_key() -> str:
    import pyarrow

    h = hashlib.sha256(f"{unicodedata.unidata_version}|{pyarrow.__version__}|{np.__version__}".encode())
    for f in sorted([*(_PKG / "algorithms").glob("*.py"), _PKG / "models" / "featurize.py"]):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def folder() -> Path | None:
    env = os.environ.get("CORPUSFORGE_CACHE")
    if env == "off":
        return None
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpusforge"


def _load(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            n, many = int(z["n"]), bool(z["many"])
            arrays = [z[f"a{i}"] for i in range(n)]
    except Exception:  # missing, cut or unreadable: rebuilt
        return None
    return tuple(arrays) if many else arrays[0]


def _store(path: Path, out) -> None:
    arrays = list(out) if isinstance(out, tuple) else [out]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, n=len(arrays), many=isinstance(out, tuple), **{f"a{i}": a for i, a in enumerate(arrays)})
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only or full disk: the table was built, only not kept


def path_for(fn, args: tuple) -> Path | None:
    d = folder()
    if d is None:
        return None
    key = hashlib.sha256(f"{fn.__module__}.{fn.__qualname__}{args!r}|{_code_key()}".encode()).hexdigest()[:32]
    return d / f"{fn.__name__}-{key}.npz"


def cached(fn):
    """functools.cache for a function of repr-stable arguments returning an ndarray or a tuple of them,
    backed by the cache folder (like functools.cache, one copy shared by every caller: never write to it)."""

    @functools.cache
    @functools.wraps(fn)
    def wrapper(*args):
        path = path_for(fn, args)
        out = _load(path) if path is not None else None
        if out is None:
            out = fn(*args)
            if path is not None:
                _store(path, out)
        return out

    wrapper.uncached = fn
    return wrapper

"""Local copies for the commands that need real files (the sampler's spills and shard writer, torch
checkpoints, memory-mapped shards, a tokenizer file) when their data lives on an object store.

Inputs are copied down; a shard directory into a cache keyed by its shards.json, each file checked
against the sha256 listed there. Outputs are claimed on the store (marker and lease, as for a run), built
in a local staging folder and uploaded: each file once under its final key, the file that says
"complete" (shards.json, model.pt) last. Local paths pass through untouched."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, outputs, store
from corpusforge.io.writers import TMP_MARK

SHARDS_MANIFEST = "shards.json"


def cache_root() -> str:
    """CORPUSFORGE_CACHE, else ~/.cache/corpusforge (XDG_CACHE_HOME respected)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("CORPUSFORGE_CACHE") or os.path.join(base, "corpusforge")


@contextmanager
def temp_folder(prefix: str) -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _download_below(d: str, local: str, keep: Callable[[str], bool]) -> None:
    for rel in store.files_below(d):
        if keep(rel):
            os.makedirs(os.path.dirname(os.path.join(local, rel)), exist_ok=True)
            store.download(fs.join(d, rel), os.path.join(local, rel))


@contextmanager
def local_file(path: str) -> Iterator[str]:
    """A readable local file holding PATH's bytes: PATH itself, or a temporary download of the object."""
    if not fs.is_remote(path):
        yield path
        return
    with temp_folder("cf-in-") as d:
        store.download(path, os.path.join(d, _basename(path)))
        yield os.path.join(d, _basename(path))


@contextmanager
def local_tree(d: str, names: tuple[str, ...] | None = None) -> Iterator[str]:
    """A local folder holding the files below D (only those of `names` that exist, when given): D itself,
    or a temporary download."""
    if not fs.is_remote(d):
        yield d
        return
    with temp_folder("cf-in-") as tmp:
        _download_below(d, tmp, lambda rel: names is None or rel in names)
        yield tmp


def cached_file(path: str) -> str:
    """A rule or model file on a store as a local file (fastText and torch load from paths), in
    CACHE/files/<sha256 of its folder's URI>/ so a model's sidecar lands beside it; each process of a run
    reuses one download while the object keeps its size and mtime. The manifest's sha256 is the copy's."""
    size, mtime = fs.stat(path)
    parent, name = path.rstrip("/").rsplit("/", 1)
    d = os.path.join(cache_root(), "files", hashlib.sha256(parent.encode()).hexdigest())
    dest, stamp = os.path.join(d, name), os.path.join(d, f".{name}.stamp")
    want = f"{size} {mtime}"
    try:
        with open(stamp, encoding="utf-8") as f:
            if f.read() == want and os.path.getsize(dest) == size:
                return dest
    except OSError:
        pass
    os.makedirs(d, exist_ok=True)
    for target, write in ((dest, lambda t: store.download(path, t)), (stamp, lambda t: _write_text(t, want))):
        tmp = os.path.join(d, f"{TMP_MARK}{os.getpid()}-{os.path.basename(target)}")
        write(tmp)
        os.replace(tmp, target)  # readers see the old file or the new one, whole
    return dest


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _copy_checked(src: str, dest: str, sha256: str | None) -> None:
    h = hashlib.sha256()
    with fs.open_read(src) as f, open(dest, "wb") as o:
        while chunk := f.read(8 << 20):
            h.update(chunk)
            o.write(chunk)
    if h.hexdigest() != sha256:
        raise CorpusforgeError("bad_shards", f"{src}: sha256 differs from {SHARDS_MANIFEST} "
                               "(check it with `corpusforge shards verify`)")


def local_shards(d: str) -> str:
    """A shard directory as a local folder (memory-mapping needs files): D itself, or its copy in
    CACHE/shards/<sha256 of shards.json>, every file checked against shards.json while it is copied. A
    complete copy is reused; a killed copy is redone."""
    if not fs.is_remote(d):
        return d
    import json

    try:
        raw = store.read_bytes(fs.join(d, SHARDS_MANIFEST))
    except CorpusforgeError:
        raise CorpusforgeError("bad_shards", f"{fs.join(d, SHARDS_MANIFEST)}: missing (not a complete shard "
                               "directory of `corpusforge sample`)") from None
    dest = os.path.join(cache_root(), "shards", hashlib.sha256(raw).hexdigest())
    if os.path.isfile(os.path.join(dest, SHARDS_MANIFEST)):
        return dest
    m = json.loads(raw)
    tmp = f"{dest}.{TMP_MARK}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    tok = m.get("tokenizer") or {}
    files = [(tok.get("path", "tokenizer.json"), tok.get("sha256"))]
    files += [(e[k], e[f"sha256_{k}"]) for e in m.get("shards", []) for k in ("bin", "idx")]
    try:
        for name, sha in files:
            if os.path.basename(name) != name:
                raise CorpusforgeError("bad_shards", f"{fs.join(d, SHARDS_MANIFEST)}: unsafe file name {name!r}")
            _copy_checked(fs.join(d, name), os.path.join(tmp, name), sha)
        with open(os.path.join(tmp, SHARDS_MANIFEST), "wb") as f:
            f.write(raw)
    except BaseException:  # a bad object or an interruption: no partial copy left in the cache
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, dest)  # shards.json present in dest means complete
    except OSError:  # another process finished the same copy first
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isfile(os.path.join(dest, SHARDS_MANIFEST)):
            raise
    return dest


class _Uploader:
    """Uploads the files of a local staging folder that changed since the last sync (size, mtime)."""

    def __init__(self, local: str, out: str, last: tuple[str, ...]):
        self.local, self.out, self.last, self.seen = local, out, last, {}

    def _files(self) -> dict[str, tuple[int, int]]:
        found = {}
        for rel in store.files_below(self.local):
            if not rel.rsplit("/", 1)[-1].startswith(TMP_MARK):  # a write in progress
                st = os.stat(os.path.join(self.local, rel))
                found[rel] = (st.st_size, st.st_mtime_ns)
        return found

    def pull(self) -> None:
        """The stored output into the staging folder (--resume), less the marker and lease."""
        _download_below(self.out, self.local, lambda rel: rel not in (outputs.MARKER, outputs.LOCK))
        self.seen = self._files()

    def sync(self) -> None:
        now = self._files()
        changed = sorted((r for r in now if self.seen.get(r) != now[r]), key=lambda r: (r in self.last, r))
        for rel in changed:
            store.upload(os.path.join(self.local, rel), fs.join(self.out, rel))
            self.seen[rel] = now[rel]


@contextmanager
def output_dir(out: str, kind: str, overwrite: bool = False, resume: bool = False,
               last: tuple[str, ...] = ()) -> Iterator[tuple[str, Callable[[], None]]]:
    """Claims OUT (outputs.claim) and yields (folder to write in, sync). Local: OUT itself and a no-op.
    Object store: a local staging folder (holding the stored files on --resume); sync() uploads what
    changed, the names in `last` after the rest; it runs once more when the block ends without error."""
    with outputs.claim(out, kind, overwrite=overwrite, resume=resume):
        if not fs.is_remote(out):
            yield os.path.abspath(out), lambda: None
            return
        with temp_folder("cf-out-") as tmp:
            up = _Uploader(tmp, out, last)
            if resume:
                up.pull()
            yield tmp, up.sync
            up.sync()


@contextmanager
def output_file(path: str) -> Iterator[str]:
    """Where to write the file PATH: PATH itself, or a new local file (not created yet) uploaded to PATH
    when the block ends without error."""
    if not fs.is_remote(path):
        yield path
        return
    with temp_folder("cf-out-") as d:
        local = os.path.join(d, _basename(path))
        yield local
        store.upload(local, path)


def absolute(path: str) -> str:
    """What a manifest records for a path: a URI as given, a local path made absolute."""
    return path if fs.is_remote(path) else os.path.abspath(path)

"""Output ownership: corpusforge empties or replaces only what carries its own marker, never an input,
and one writer at a time holds an output.

An output folder holds MARKER (`{"corpusforge_output": KIND}`, deterministic, so outputs stay
byte-identical) from the moment corpusforge creates or first claims it; `--overwrite` empties a folder
only when it is empty or marked for the same command kind. The writer holds LOCK (an flock on a file
inside the folder, naming host, pid and start time) for the whole command; on an object store it holds
a lease object instead (LeaseLock). The same rules hold for a URI output: a key prefix is "empty" when
nothing is stored under it."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from typing import Iterable, Protocol

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store
from corpusforge.io.lease import LeaseLock
from corpusforge.io.writers import TMP_MARK, write_error

MARKER = ".corpusforge-output"
LOCK = ".corpusforge-lock"
TRASH = f"{TMP_MARK}trash-"
KINDS = ("run", "dedup", "sample", "train", "demo", "trash", "scratch")
_OURS = (MARKER, LOCK)
_held_fds: set[int] = set()


def _close_held_in_child() -> None:
    """A forked worker must not keep the output locked after its parent dies (kill -9, then --resume)."""
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class OutputLock(Protocol):
    def acquire(self) -> None: ...  # raises CorpusforgeError("output_locked", ...) naming the holder

    def release(self) -> None: ...


class FileLock:
    """Exclusive flock on OUT/LOCK. The holder writes who it is into the file; a second writer gets
    `output_locked` naming it. flock dies with its holder, so a lock file left by a killed process is
    taken over with a notice. Released by unlinking first, then unlocking; a waiter that locked the
    unlinked file sees the inode differ from the path's and retries."""

    def __init__(self, folder: str):
        self.folder, self.path, self.fd = folder, os.path.join(folder, LOCK), None

    def acquire(self) -> None:
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise write_error(self.path, e) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_holder(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise write_error(self.path, e) from None
                raise CorpusforgeError("output_locked", f"{self.folder} is being written by {holder}; "
                                       "wait for it to finish (or stop it), then rerun") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder released (unlinked) between our open and flock
                os.close(fd)
                continue
            stale = _read_holder(fd, default="")
            if stale:
                print(f"corpusforge: {self.folder}: took over a stale lock ({stale} is gone)", file=sys.stderr)
            me = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, me, 0)
            self.fd = fd
            _held_fds.add(fd)
            return
        raise CorpusforgeError("output_locked", f"{self.folder}: the lock file keeps changing; another writer is busy")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        _held_fds.discard(self.fd)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_holder(fd: int, default: str = "another process") -> str:
    try:
        h = json.loads(os.pread(fd, 4096, 0) or b"null")
        return f"host {h['host']} pid {h['pid']} (started {h['started']})"
    except (OSError, ValueError, TypeError, KeyError):
        return default


# ------------------------------------------------------------------ ownership


def marker_kind(folder: str) -> str | None:
    try:
        kind = store.read_json(fs.join(folder, MARKER)).get("corpusforge_output")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if kind in KINDS else None


def _write_marker(folder: str, kind: str) -> None:
    from corpusforge.io.writers import write_json

    write_json(fs.join(folder, MARKER), {"corpusforge_output": kind})


def _user_entries(folder: str) -> list[str]:
    return sorted(n for n in store.listdir(folder) if n not in _OURS)


def _describe(folder: str, names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{folder} holds {shown}"


def _check_owned(out: str, kind: str, overwrite: bool, resume: bool) -> bool:
    """Refuses before anything is touched; returns whether OUT is already ours (marked for `kind`)."""
    if store.exists(out) and not store.isdir(out):
        raise CorpusforgeError("bad_output", f"{out} is a file, not a folder; name an output folder")
    if not store.isdir(out):
        return False
    names = _user_entries(out)
    mine = marker_kind(out)
    if all(n == MARKER or _MARKER_TMP.fullmatch(n) for n in names):
        return False  # empty, or claimed by a command that is writing its marker or was killed before it wrote anything
    if mine != kind:
        what = f"a corpusforge {mine} output, not a {kind} output" if mine else "not written by corpusforge"
        if overwrite or resume:
            raise CorpusforgeError("output_not_ours", f"{_describe(out, names)}: {what}, so it is left untouched; "
                                   "pick another output folder (or empty this one yourself)")
        raise CorpusforgeError("output_exists", f"{_describe(out, names)} ({what}); pick another output folder")
    return True


@contextmanager
def claim(out: str, kind: str, overwrite: bool = False, resume: bool = False, lock: OutputLock | None = None):
    """Holds OUT for one command: refuses a folder that is not ours, takes the lock, marks it, empties it
    on --overwrite. Yields whether OUT held an earlier output of this kind that was kept (resume)."""
    remote = fs.is_remote(out)
    out = out if remote else os.path.abspath(out)
    _check_owned(out, kind, overwrite, resume)
    store.makedirs(out)
    lock = lock or (LeaseLock(out, LOCK) if remote else FileLock(out))
    lock.acquire()
    try:
        owned = _check_owned(out, kind, overwrite, resume)  # again: another writer may have finished meanwhile
        if owned and not overwrite and not resume:  # after the lock: a run in progress is output_locked
            raise CorpusforgeError("output_exists", f"{out} is not empty: pass --resume to continue it or --overwrite")
        if not remote:
            sweep_trash(out)
        if owned and overwrite:
            empty(out)
        if marker_kind(out) != kind:
            _write_marker(out, kind)
        yield owned and not overwrite
    finally:
        lock.release()


@contextmanager
def scratch(folder: str):
    """A working folder or prefix of one global stage under a user's `run.scratch`: refused when it holds
    anything corpusforge did not write, emptied of a killed run's leftovers, marked, deleted afterwards.
    Its name derives from the output, whose lock the caller holds: no two runs share one."""
    if _check_owned(folder, "scratch", overwrite=True, resume=False):
        empty(folder)
    store.makedirs(folder)
    _write_marker(folder, "scratch")
    try:
        yield folder
    finally:
        store.delete_tree(folder)


def empty(out: str, last: Iterable[str] = ("_state.json",)) -> None:
    """Moves OUT's entries (all ours) into a marked trash folder inside OUT, then deletes it. The names in
    `last` move last: a kill at any moment leaves either the old run's state (resumable) or no state.
    On an object store (no rename) the entries are deleted in the same order."""
    if fs.is_remote(out):
        for n in sorted((n for n in _user_entries(out) if n != MARKER), key=lambda n: (n in last, n)):
            p = fs.join(out, n)
            store.delete(p) if store.isfile(p) else store.delete_tree(p)
        return
    trash = os.path.join(out, f"{TRASH}{secrets.token_hex(6)}")
    os.mkdir(trash)
    _write_marker(trash, "trash")
    names = [n for n in _user_entries(out) if not n.startswith(TRASH) and n != MARKER]
    for n in sorted(names, key=lambda n: (n in last, n)):
        os.rename(os.path.join(out, n), os.path.join(trash, n))
    _remove_trash(trash)


_MARKER_TMP = re.compile(re.escape(TMP_MARK) + r"\d+-" + re.escape(MARKER))  # writers.tmp_path of the marker


def _remove_trash(trash: str) -> None:
    for n in os.listdir(trash):
        if n != MARKER:
            p = os.path.join(trash, n)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
    if os.path.exists(os.path.join(trash, MARKER)):
        os.unlink(os.path.join(trash, MARKER))  # last: a half-deleted trash folder keeps its marker
    os.rmdir(trash)


def sweep_trash(out: str) -> None:
    """Deletes trash folders an earlier, killed --overwrite left inside OUT: only marked ones, or ones it
    was killed in before the marker landed (empty, or holding only the marker's temporary file)."""
    for n in os.listdir(out):
        p = os.path.join(out, n)
        if n.startswith(TRASH) and os.path.isdir(p) and not os.path.islink(p):
            if marker_kind(p) == "trash" or all(_MARKER_TMP.fullmatch(e) for e in os.listdir(p)):
                _remove_trash(p)


def replace_file_check(path: str, signatures: tuple[bytes, ...], what: str) -> None:
    """A file output (tokenizer, report) replaces an existing file only if it carries corpusforge's
    signatures in its first 64 KiB (the report's generator tag; the tokenizer's own special tokens)."""
    if store.isdir(path):
        raise CorpusforgeError("bad_output", f"{path} is a folder; name the {what} file to write")
    if store.exists(path):
        with fs.open_read(path) as f:
            head = f.read(1 << 16)
        if not all(sig in head for sig in signatures):
            raise CorpusforgeError("output_not_ours", f"{path} exists and is not a corpusforge {what}, so it is left "
                                   "untouched; pick another --out")

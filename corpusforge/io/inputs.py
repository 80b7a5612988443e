"""Plan-time view of the input: which files, their fingerprints, and how they split into parts."""

from __future__ import annotations

import errno
import fnmatch
import glob
import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs
from corpusforge.rules_files import sha256_file

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZIP_MAGIC = b"PK\x03\x04"
BZ2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


@dataclass(frozen=True)
class InputFile:
    path: str  # absolute
    rel: str  # relative to the input root: part of every id, never an absolute local path
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class Part:
    """The unit of work, commit and resume: a whole file, or a newline-aligned byte range of a plain one."""

    index: int
    file: InputFile
    start: int = 0
    end: int | None = None  # exclusive; None = to the end
    first_line: int = 1  # 1-based line number of the first line in [start, end)
    sha256: str = ""  # of the bytes in [start, end) at plan time; the reader checks what it read ("" = unchecked)


def sniff_codec(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(BZ2_MAGIC) or head.startswith(XZ_MAGIC):
        return "unsupported"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return "plain"


def codec_from_extension(path: str) -> str:
    if path.endswith(".gz"):
        return "gzip"
    if path.endswith(".zst") or path.endswith(".zstd"):
        return "zstd"
    return "plain"


def _check_regular(path: str) -> os.stat_result:
    try:
        st = os.stat(path)  # follows symlinks: a broken one fails here
    except FileNotFoundError:
        raise CorpusforgeError("unreadable_input", f"{path}: no such file (broken symlink?)") from None
    except PermissionError:
        raise CorpusforgeError("unreadable_input", f"{path}: permission denied") from None
    except OSError as e:
        why = "symlink loop" if e.errno == errno.ELOOP else e.strerror
        raise CorpusforgeError("unreadable_input", f"{path}: {why}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CorpusforgeError("unreadable_input", f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        # FIFOs and devices are never opened: reading one could block forever.
        raise CorpusforgeError("unreadable_input", f"{path}: not a regular file (FIFO or device)")
    if not os.access(path, os.R_OK):
        raise CorpusforgeError("unreadable_input", f"{path}: permission denied")
    return st


def _listdir(d: str) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except OSError:  # unreadable or vanished folder: glob.glob skips it too
        return []


def _walk(d: str, segs: list[str], seen: set, out: list[str]) -> None:
    """glob semantics (`*` skips dot-names unless the segment starts with `.`; `**` spans zero or more
    folders), but each real folder is expanded once per pattern position: a symlink loop ends here."""
    try:
        st = os.stat(d)
    except OSError:
        return
    key = (st.st_dev, st.st_ino, len(segs))
    if key in seen:
        return
    seen.add(key)
    seg, rest = segs[0], segs[1:]
    if seg == "**":
        if rest:
            _walk(d, rest, seen, out)
        for n in _listdir(d):
            p = os.path.join(d, n)
            if n.startswith("."):
                continue
            if not rest:
                out.append(p)
            if os.path.isdir(p):
                _walk(p, segs, seen, out)
        return
    names = [n for n in _listdir(d) if fnmatch.fnmatchcase(n, seg) and (seg.startswith(".") or not n.startswith("."))]
    for n in names:
        p = os.path.join(d, n)
        if not rest:
            out.append(p)
        elif os.path.isdir(p):
            _walk(p, rest, seen, out)


def _glob(pattern: str) -> list[str]:
    if not glob.has_magic(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    parts = pattern.split(os.sep)
    k = next(i for i, s in enumerate(parts) if glob.has_magic(s))
    out: list[str] = []
    _walk(os.sep.join(parts[:k]) or os.sep, parts[k:], set(), out)
    return out


@dataclass
class Expanded:
    root: str
    files: list[InputFile]
    duplicates: int  # paths that reached a file already listed (symlinks, hard links): read once


def expand_inputs(patterns: list[str], base_dir: str, root: str | None, fmt: str) -> Expanded:
    """Resolve globs (relative to the config file's directory) into a sorted, fingerprinted file list,
    each real file once (the first path in sorted order names it). Object-store URIs are listed by prefix."""
    remote = {fs.is_remote(p) for p in patterns}
    if len(remote) > 1:
        raise CorpusforgeError("bad_config", f"input paths mix local paths and URIs ({patterns[:3]}): use one input block each")
    if remote == {True}:
        return _expand_remote(patterns, root, fmt)
    found: set[str] = set()
    for pattern in patterns:
        pattern = fs.split_uri(pattern)[1]  # file:// is a local path
        full = os.path.abspath(pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern))
        matches = _glob(full)
        if fmt == "txt":
            expanded = []
            for m in matches:
                if os.path.isdir(m):
                    expanded += _glob(os.path.join(m, "**", "*.txt"))
                else:
                    expanded.append(m)
            matches = expanded
        if not matches:
            raise CorpusforgeError("no_input_files", f"input pattern {pattern!r} matches no files")
        found.update(matches)
    paths = sorted(found)
    if root is None:
        root = os.path.commonpath([os.path.dirname(p) for p in paths])
    else:
        root = os.path.abspath(root if os.path.isabs(root) else os.path.join(base_dir, root))
    files, seen, dups = [], set(), 0
    for p in paths:
        st = _check_regular(p)
        if (st.st_dev, st.st_ino) in seen:
            dups += 1
            continue
        seen.add((st.st_dev, st.st_ino))
        rel = os.path.relpath(p, root)
        if rel.startswith(".."):
            raise CorpusforgeError("bad_input_root", f"{p} is outside input.root {root}")
        files.append(InputFile(p, rel.replace(os.sep, "/"), st.st_size, st.st_mtime_ns, sha256_file(p)))
    return Expanded(root, files, dups)


def _expand_remote(patterns: list[str], root: str | None, fmt: str) -> Expanded:
    found: set[str] = set()
    for pattern in patterns:
        matches = fs.glob(pattern)
        if fmt == "txt" and not matches and not glob.has_magic(pattern):  # a folder of .txt files
            matches = fs.glob(fs.join(pattern, "**", "*.txt"))
        if not matches:
            raise CorpusforgeError("no_input_files", f"input pattern {pattern!r} matches no files")
        found.update(matches)
    paths = sorted(found)
    prefix = paths[0][: paths[0].index("://") + 3]
    root = root.rstrip("/") if root else prefix + posixpath.commonpath([posixpath.dirname(p[len(prefix):]) for p in paths])
    files = []
    for p in paths:
        if not p.startswith(root + "/"):
            raise CorpusforgeError("bad_input_root", f"{p} is outside input.root {root}")
        size, mtime = fs.stat(p)
        files.append(InputFile(p, p[len(root) + 1:], size, mtime, fs.sha256(p)))
    return Expanded(root, files, 0)


def plan_parts(files: list[InputFile], fmt: str, split_bytes: int) -> list[Part]:
    """Whole files, except plain JSONL larger than split_bytes, cut at newlines into byte ranges."""
    parts: list[Part] = []
    for f in files:
        if fmt != "jsonl" or f.size <= split_bytes:
            parts.append(Part(len(parts), f, sha256=f.sha256))
            continue
        with fs.open_read(f.path) as fh:
            if sniff_codec(fh.read(512)) != "plain":
                parts.append(Part(len(parts), f, sha256=f.sha256))
                continue
        for start, end, first_line, digest in _newline_splits(f.path, f.size, split_bytes):
            parts.append(Part(len(parts), f, start, end, first_line, digest))
    return parts


def _newline_splits(path: str, size: int, split_bytes: int):
    """(start, end, first_line, sha256 of the range): ranges end after a newline near split_bytes."""
    start, first_line, lines_before = 0, 1, 0
    target = split_bytes
    pos = 0
    h = hashlib.sha256()
    with fs.open_read(path) as fh:
        while True:
            block = fh.read(1 << 23)
            if not block:
                break
            search_from = hashed = 0
            while pos + len(block) > target:
                nl = block.find(b"\n", max(target - pos, search_from))
                if nl < 0:
                    break
                end = pos + nl + 1
                lines_here = block.count(b"\n", search_from, nl + 1)
                lines_before += lines_here
                search_from = nl + 1
                if end < size:
                    h.update(block[hashed:nl + 1])
                    hashed = nl + 1
                    yield start, end, first_line, h.hexdigest()
                    h = hashlib.sha256()
                    start, first_line = end, lines_before + 1
                target = end + split_bytes
            h.update(block[hashed:])
            lines_before += block.count(b"\n", search_from)
            pos += len(block)
    yield start, None, first_line, h.hexdigest()

"""Plan-time view of the input: which files, their fingerprints, and how they split into parts."""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass

from corpusforge.errors import CorpusforgeError
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
    if stat.S_ISDIR(st.st_mode):
        raise CorpusforgeError("unreadable_input", f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        # FIFOs and devices are never opened: reading one could block forever.
        raise CorpusforgeError("unreadable_input", f"{path}: not a regular file (FIFO or device)")
    if not os.access(path, os.R_OK):
        raise CorpusforgeError("unreadable_input", f"{path}: permission denied")
    return st


def expand_inputs(patterns: list[str], base_dir: str, root: str | None, fmt: str) -> tuple[str, list[InputFile]]:
    """Resolve globs (relative to the config file's directory) into a sorted, fingerprinted file list."""
    found: set[str] = set()
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(base_dir, pattern)
        matches = glob.glob(full, recursive=True)
        if not matches and os.path.lexists(full):
            matches = [full]
        if fmt == "txt":
            expanded = []
            for m in matches:
                if os.path.isdir(m):
                    expanded += glob.glob(os.path.join(m, "**", "*.txt"), recursive=True)
                else:
                    expanded.append(m)
            matches = expanded
        if not matches:
            raise CorpusforgeError("no_input_files", f"input pattern {pattern!r} matches no files")
        found.update(os.path.abspath(m) for m in matches)
    paths = sorted(found)
    if root is None:
        root = os.path.commonpath([os.path.dirname(p) for p in paths])
    else:
        root = os.path.abspath(root if os.path.isabs(root) else os.path.join(base_dir, root))
    files = []
    for p in paths:
        st = _check_regular(p)
        rel = os.path.relpath(p, root)
        if rel.startswith(".."):
            raise CorpusforgeError("bad_input_root", f"{p} is outside input.root {root}")
        files.append(InputFile(p, rel.replace(os.sep, "/"), st.st_size, st.st_mtime_ns, sha256_file(p)))
    return root, files


def plan_parts(files: list[InputFile], fmt: str, split_bytes: int) -> list[Part]:
    """Whole files, except plain JSONL larger than split_bytes, cut at newlines into byte ranges."""
    parts: list[Part] = []
    for f in files:
        if fmt != "jsonl" or f.size <= split_bytes:
            parts.append(Part(len(parts), f))
            continue
        with open(f.path, "rb") as fh:
            if sniff_codec(fh.read(512)) != "plain":
                parts.append(Part(len(parts), f))
                continue
        for start, end, first_line in _newline_splits(f.path, f.size, split_bytes):
            parts.append(Part(len(parts), f, start, end, first_line))
    return parts


def _newline_splits(path: str, size: int, split_bytes: int):
    start, first_line, lines_before = 0, 1, 0
    target = split_bytes
    pos = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 23)
            if not block:
                break
            search_from = 0
            while pos + len(block) > target:
                nl = block.find(b"\n", max(target - pos, search_from))
                if nl < 0:
                    break
                end = pos + nl + 1
                lines_here = block.count(b"\n", search_from, nl + 1)
                lines_before += lines_here
                search_from = nl + 1
                if end < size:
                    yield start, end, first_line
                    start, first_line = end, lines_before + 1
                target = end + split_bytes
            lines_before += block.count(b"\n", search_from)
            pos += len(block)
    yield start, None, first_line

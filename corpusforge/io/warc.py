"""WARC/WET records (ISO 28500, WARC/1.0 and 1.1), plain or gzip (one member per record, as Common
Crawl writes them), read by corpusforge itself so that every fault has a record and a byte offset:

- a record whose header is not WARC (no version line, a field without ':', Content-Length missing or not
  a number) is quarantined as `warc_bad_header` and reading resumes at the next `WARC/1.` line;
- a Content-Length that does not end where the next record (or the file) begins is `warc_bad_length`,
  resuming at the next record start found after the header;
- a file that ends inside a record's header or block, or inside a gzip member, is `truncated_input` (the
  whole file, like a cut .gz of JSONL); a CRC or deflate error is `corrupt_compression`.
Offsets are those of the gzip member holding the record (what a CDX index stores), or the byte offset of
the record in a plain file. The bytes are hashed as read (streams.HashingRaw)."""

from __future__ import annotations

import bisect
import re
import zlib
from dataclasses import dataclass
from typing import Iterator

from corpusforge.io.streams import FileLevelError, HashingRaw

MAX_HEADER = 64 * 1024
_START = re.compile(rb"\n(WARC/1\.[01]\r?\n)")  # a record after the first follows a newline
_CHUNK = 1 << 20
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # a field name (RFC 9110 token)


class _Bytes:
    """Decompressed bytes of one file, a window at a time, and the file offset of the gzip member that
    holds any decompressed position."""

    def __init__(self, raw: HashingRaw, gz: bool, opts):
        self.raw, self.gz, self.opts = raw, gz, opts
        self.buf, self.base = bytearray(), 0  # buf[0] is decompressed offset `base`
        self.members = [(0, 0)]  # (decompressed offset, file offset) of each gzip member start
        self.eof = False
        self.error: FileLevelError | None = None  # a cut or corrupt stream, raised once its bytes are needed
        self._chunks = self._gunzip() if gz else iter(lambda: raw.read(_CHUNK), b"")

    def _gunzip(self) -> Iterator[bytes]:
        d, file_pos, out_total, started = zlib.decompressobj(31), 0, 0, False
        while True:
            data = self.raw.read(_CHUNK)
            if not data:
                if started:
                    tail = d.flush()  # output held back by max_length
                    if not d.eof:
                        raise FileLevelError("truncated_input", "gzip member ended early", file_pos)
                    yield tail
                return
            while data:
                if not started:
                    if file_pos:
                        self.members.append((out_total, file_pos))
                    started = True
                try:
                    out = d.decompress(data, 1 << 22)
                except zlib.error as e:
                    raise FileLevelError("corrupt_compression", f"zlib.error: {e}", file_pos) from None
                out_total += len(out)
                if out_total > 64 << 20 and (out_total > self.opts.max_decompressed_bytes
                                             or out_total > self.opts.max_ratio * max(self.raw.n, 1)):
                    raise FileLevelError("decompression_limit", f"decompressed {out_total} bytes from {self.raw.n}", file_pos)
                if out:
                    yield out
                if d.eof:
                    rest = d.unused_data
                    file_pos += len(data) - len(rest)
                    d, started, data = zlib.decompressobj(31), False, rest
                else:
                    file_pos += len(data) - len(d.unconsumed_tail)
                    data = d.unconsumed_tail

    def fill(self, end: int, soft: bool = False) -> bool:
        """Make decompressed offsets [base, end) available; False at end of file before that. A stream
        error is raised when bytes it cut off are needed; a soft (read-ahead) call only stops there."""
        while self.base + len(self.buf) < end:
            try:
                chunk = None if self.eof else next(self._chunks, None)
            except FileLevelError as e:
                self.error, chunk = e, None
            if chunk is None:
                self.eof = True
                if self.error and not soft:
                    raise self.error
                return False
            self.buf += chunk
        return True

    def skip_to(self, end: int, cap: int) -> tuple[bool, int | None]:
        """Like fill, without keeping what lies before end (a block over max_record_bytes): (reached,
        first record start seen on the way with up to cap bytes after it kept, for a wrong length)."""
        cand = None
        while self.base + len(self.buf) < end:
            if cand is None:
                m = _START.search(self.buf)
                cand = None if m is None else self.base + m.start(1)
                self.drop_before(self.base + max(len(self.buf) - 16, 0) if cand is None else cand)
            elif self.base + len(self.buf) - cand > cap:
                self.drop_before(cand + 1)  # too far to keep: look for a later one
                cand = None
                continue
            if not self.fill(self.base + len(self.buf) + 1):
                return False, cand
        return True, None

    def drop_before(self, pos: int) -> None:
        if pos > self.base:
            del self.buf[:pos - self.base]
            self.base = pos

    def get(self, start: int, end: int) -> bytes:
        return bytes(self.buf[start - self.base:end - self.base])

    def find(self, sub: bytes, start: int, end: int | None = None) -> int:
        i = self.buf.find(sub, start - self.base, None if end is None else end - self.base)
        return -1 if i < 0 else i + self.base

    def file_offset(self, pos: int) -> int:
        if not self.gz:
            return pos
        return self.members[bisect.bisect_right(self.members, (pos, float("inf"))) - 1][1]


@dataclass
class Record:
    offset: int  # file offset (see module doc)
    headers: dict[str, str]  # field names lower-cased
    block: bytes | None  # None when larger than max_record_bytes
    length: int


@dataclass
class BadRecord:
    offset: int
    reason: str  # warc_bad_header | warc_bad_length
    detail: str
    is_record: bool = True  # False: bytes between records (no version line), which take no record number


def _next_start(b: _Bytes, pos: int) -> int | None:
    """Decompressed offset of the next `WARC/1.x` line at or after pos, reading on as needed."""
    while True:
        m = _START.search(b.buf, max(pos - b.base - 1, 0))
        if m:
            return m.start(1) + b.base
        keep = b.base + max(len(b.buf) - 16, 0)
        if not b.fill(b.base + len(b.buf) + _CHUNK):
            return None
        b.drop_before(max(keep, pos))


def _parse_header(text: bytes) -> dict[str, str] | str:
    """Header fields, or why they are not a WARC header."""
    lines = text.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    if not re.fullmatch(r"WARC/1\.[01]", lines[0]):
        return f"no WARC/1.x version line (starts {lines[0][:40]!r})"
    fields: dict[str, str] = {}
    last = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last:
            fields[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            return f"header line without a field name: {line[:60]!r}"
        last = name.strip().lower()
        fields[last] = value.strip()
    if not fields.get("content-length", "").isdigit():
        return f"Content-Length is {fields.get('content-length', 'missing')!r}"
    return fields


def records(raw: HashingRaw, gz: bool, opts) -> Iterator[Record | BadRecord]:
    b = _Bytes(raw, gz, opts)
    pos = 0
    while True:
        # records are separated by CRLF CRLF; tolerate any run of blank lines
        while b.fill(pos + 1) and b.buf[pos - b.base] in b"\r\n":
            pos += 1
        if b.eof and pos >= b.base + len(b.buf):
            return
        b.drop_before(pos)
        b.fill(pos + 2 * MAX_HEADER, soft=True)
        m = re.search(rb"\r?\n\r?\n", b.buf[:MAX_HEADER])
        if m is None:
            if b.error:
                raise b.error
            if b.eof and b.buf.startswith(b"WARC/") and _START.search(b.buf) is None:
                raise FileLevelError("truncated_input", "file ends inside a WARC header", b.file_offset(pos))
            fields: dict | str = f"no end of header within {MAX_HEADER} bytes"
        else:
            fields = _parse_header(bytes(b.buf[:m.start()]))
        if isinstance(fields, str):
            yield BadRecord(b.file_offset(pos), "warc_bad_header", fields, b.buf.startswith(b"WARC/"))
            nxt = _next_start(b, pos + 1)
            if nxt is None:
                return
            pos = nxt
            continue
        start, length = pos, int(fields["content-length"])
        body = pos + m.end()
        end = body + length
        small = length <= opts.max_record_bytes
        if small:
            whole = b.fill(end)
            nxt = None if whole else _next_start(b, body)
        else:
            whole, nxt = b.skip_to(end, opts.max_record_bytes)
        if not whole:  # the block runs past the end: a record inside it means its Content-Length is wrong
            if nxt is None:
                raise FileLevelError("truncated_input", f"file ends inside a WARC record's block ({length} bytes declared)",
                                     b.file_offset(start))
            yield BadRecord(b.file_offset(start), "warc_bad_length", f"Content-Length {length} runs past the end of the file")
            pos = nxt
            continue
        b.fill(end + 16, soft=True)
        after = b.get(end, end + 16)
        if not after.startswith(b"\r\n\r\n") and after.lstrip(b"\r\n") and not after.lstrip(b"\r\n").startswith(b"WARC/"):
            yield BadRecord(b.file_offset(start), "warc_bad_length",
                            f"Content-Length {length} does not end where the next record begins")
            nxt = _next_start(b, body)
            if nxt is None:
                return
            pos = nxt
            continue
        block = b.get(body, end) if small else None
        yield Record(b.file_offset(start), fields, block, length)
        pos = end

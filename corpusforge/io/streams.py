"""Byte streams of one input part: codec by magic bytes, lines split on b"\\n" only, a bounded buffer for
over-long lines, truncation and corruption as file-level errors, and a sha256 of the raw bytes read,
checked against the plan's when the part ends (an input edited mid-run is `input_changed`, never a mix)."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from typing import Iterator

import zstandard

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs
from corpusforge.io.inputs import Part, codec_from_extension, sniff_codec


class FileLevelError(Exception):
    """The whole input file is unusable (truncated or corrupt stream, bomb, unknown encoding)."""

    def __init__(self, reason: str, detail: str, offset: int | None = None, line: int | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.offset, self.line = reason, detail, offset, line


class HashingRaw:
    """The raw bytes of a part as read: counted (the bomb guard compares compressed and decompressed
    sizes) and hashed, so verify() proves the records came from the bytes the plan fingerprinted."""

    def __init__(self, fh, part: Part):
        self.fh, self.part, self.n = fh, part, 0
        self.limit = None if part.end is None else part.end - part.start
        self.h = hashlib.sha256()

    def read(self, n=-1):
        if self.limit is not None:
            n = self.limit - self.n if n is None or n < 0 else min(n, self.limit - self.n)
        b = self.fh.read(n)
        self.n += len(b)
        self.h.update(b)
        return b

    def readable(self):
        return True

    def close(self):
        pass

    def verify(self) -> None:
        while self.read(1 << 22):  # the rest of the range: a decoder may stop before the last bytes
            pass
        if self.part.sha256 and self.h.hexdigest() != self.part.sha256:
            raise CorpusforgeError("input_changed", f"{self.part.file.rel}: its bytes changed while the run read it "
                                   "(sha256 differs from the plan's); rerun on a copy that nobody writes to")


def verify_bytes(part: Part, data: bytes) -> None:
    """For readers that take a whole file at once (Parquet, .txt, .html)."""
    if part.sha256 and hashlib.sha256(data).hexdigest() != part.sha256:
        raise CorpusforgeError("input_changed", f"{part.file.rel}: its bytes changed while the run read it "
                               "(sha256 differs from the plan's); rerun on a copy that nobody writes to")


def read_whole(part: Part, cap: int) -> bytes | None:
    """The file's bytes, or None when it is larger than cap (then hashed without being kept)."""
    with fs.open_read(part.file.path) as f:
        raw = HashingRaw(f, part)
        data = raw.read(cap + 1)
        raw.verify()
    return data if len(data) <= cap else None


def zstd_cut_at(path: str, start: int = 0) -> int | None:
    """Where a zstd file's frame structure ends early (a cut file), or None when every frame is whole.
    Walks frame and block headers only (RFC 8878), no decompression: zstandard's stream reader returns
    a clean end of stream for a file cut mid-frame."""
    size = fs.size_mtime(path)[0]
    with fs.open_read(path) as f:
        pos = start
        while pos < size:
            f.seek(pos)
            head = f.read(14)
            if len(head) < 4:
                return pos
            magic = int.from_bytes(head[:4], "little")
            if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame: 4-byte size
                if len(head) < 8:
                    return pos
                pos += 8 + int.from_bytes(head[4:8], "little")
                continue
            if magic != 0xFD2FB528 or len(head) < 5:
                return None if magic != 0xFD2FB528 else pos  # not zstd: the decoder reports it as corrupt
            fhd = head[4]
            single = (fhd >> 5) & 1
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            p = pos + 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            while True:
                f.seek(p)
                bh = f.read(3)
                if len(bh) < 3:
                    return pos
                v = int.from_bytes(bh, "little")
                p += 3 + (1 if (v >> 1) & 3 == 1 else v >> 3)  # an RLE block holds one byte
                if v & 1:
                    break
            p += 4 if (fhd >> 2) & 1 else 0  # content checksum
            if p > size:
                return pos
            pos = p
    return None


def open_stream(part: Part, fixes):
    fh = fs.open_read(part.file.path)
    head = fh.read(512)
    codec = sniff_codec(head)
    if codec in ("zip", "tar", "unsupported"):
        fh.close()
        raise CorpusforgeError(
            "unsupported_container",
            f"{part.file.rel}: {codec} archives/codecs are not read (nothing is extracted); "
            "unpack to .jsonl/.jsonl.gz/.jsonl.zst first",
        )
    if codec != codec_from_extension(part.file.rel):
        fixes["extension_mismatch"] += 1
    fh.seek(part.start)
    raw = HashingRaw(fh, part)
    if codec == "gzip":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")  # reads every member of a concatenated gzip
    elif codec == "zstd":
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    else:
        stream = raw
    return fh, raw, stream, codec


def iter_lines(part: Part, opts, fixes) -> Iterator[tuple[int, int, bytes | None, int, bool]]:
    """Yields (line_no, byte_offset, line_bytes or None if too large, size, newline_terminated)."""
    fh, raw, stream, codec = open_stream(part, fixes)
    limit = None if part.end is None else part.end - part.start
    line_no, offset = part.first_line, part.start if codec == "plain" else 0
    buf = bytearray()
    skipping = 0  # bytes of an over-long line being skipped without buffering
    total = 0
    try:
        while True:
            want = 1 << 22 if limit is None else min(1 << 22, limit - total)
            if want <= 0:
                break
            try:
                # read1: a truncated stream must not take the already-decoded prefix down with it
                chunk = stream.read(want) if codec == "plain" else stream.read1(min(want, 1 << 18))
            except EOFError as e:
                raise FileLevelError("truncated_input", f"compressed stream ended early: {e}", total, line_no - 1)
            except (gzip.BadGzipFile, zlib.error, zstandard.ZstdError, OSError) as e:
                raise FileLevelError("corrupt_compression", f"{type(e).__name__}: {e}", total, line_no - 1)
            if not chunk:
                if codec == "zstd" and zstd_cut_at(part.file.path) is not None:
                    raise FileLevelError("truncated_input", "zstd stream ended inside a frame", total, line_no - 1)
                break
            total += len(chunk)
            if codec != "plain" and total > 64 << 20 and (
                total > opts.max_decompressed_bytes or total > opts.max_ratio * max(raw.n, 1)
            ):
                raise FileLevelError(
                    "decompression_limit",
                    f"decompressed {total} bytes from {raw.n} (limits: {opts.max_decompressed_bytes} bytes, "
                    f"ratio {opts.max_ratio})",
                    total,
                )
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    rest = len(chunk) - start
                    if skipping:
                        skipping += rest
                    elif len(buf) + rest > opts.max_record_bytes:
                        skipping = len(buf) + rest
                        buf.clear()
                    else:
                        buf += chunk[start:]
                    break
                if skipping:
                    size = skipping + nl - start
                    yield line_no, offset, None, size, True
                    skipping = 0
                elif buf:
                    buf += chunk[start:nl]
                    size = len(buf)
                    yield line_no, offset, bytes(buf) if size <= opts.max_record_bytes else None, size, True
                    buf.clear()
                else:
                    size = nl - start
                    yield line_no, offset, (chunk[start:nl] if size <= opts.max_record_bytes else None), size, True
                offset += size + 1
                line_no += 1
                start = nl + 1
        raw.verify()
        if skipping:
            yield line_no, offset, None, skipping, False
        elif buf:
            yield line_no, offset, bytes(buf), len(buf), False
    except FileLevelError:
        raw.verify()  # a file edited mid-read is input_changed, not a corrupt input
        raise
    finally:
        fh.close()

"""The storage layer: every input path may be a local path or a URI (s3://, gs://, hdfs://, abfs://,
file://), read through pyarrow.fs (Azure through fsspec's adlfs, the one store pyarrow lacks).

Credentials come from each store's standard chain (AWS environment and config files,
GOOGLE_APPLICATION_CREDENTIALS, Hadoop configuration); the `storage:` config block and
`--storage-opt KEY=VALUE` add an endpoint, region or anonymous access. Options are process-wide
(`configure`), set by the driver and by every worker from the plan, and never written anywhere (the
runner drops the `storage:` block from the manifest and the resume state).

Local paths keep the os/open path (symlink, FIFO and permission checks are the local reader's)."""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from corpusforge.errors import CorpusforgeError

SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "az")
_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")

_options: dict[str, Any] = {}
_cache: dict = {}
# A store client's connection threads do not survive fork(): a forked worker builds its own.
os.register_at_fork(after_in_child=_cache.clear)


def split_uri(path: str) -> tuple[str | None, str]:
    """(scheme, rest) of a URI; (None, path) for a plain local path. file:// is local."""
    m = _URI.match(path)
    if not m:
        return None, path
    scheme = m.group(1).lower()
    if scheme == "file":
        return None, "/" + m.group(2).lstrip("/")
    if scheme not in SCHEMES:
        raise CorpusforgeError("bad_path", f"{path}: unknown storage scheme {scheme}:// (known: file, {', '.join(SCHEMES)})")
    return scheme, m.group(2)


def is_remote(path: str) -> bool:
    return split_uri(path)[0] is not None


def under(base_dir: str, path: str) -> str:
    """A config's path: as given when absolute or a URI, else relative to the config's folder."""
    return path if os.path.isabs(path) or is_remote(path) else os.path.join(base_dir, path)


def configure(options: dict[str, Any] | None) -> None:
    """Process-wide storage options (endpoint, region, anonymous, scheme-specific keys)."""
    global _options
    opts = dict(options or {})
    if opts != _options:
        _options = opts
        _cache.clear()


def options() -> dict[str, Any]:
    """The current options, for a spawned worker to configure() with (kept in memory only)."""
    return dict(_options)


def option(key: str, default: Any = None) -> Any:
    return _options.get(key, default)


def _endpoint() -> dict[str, Any]:
    """endpoint_override and scheme from the `endpoint` option (http://host:port, or host:port for https)."""
    if not _options.get("endpoint"):
        return {}
    ep = str(_options["endpoint"])
    scheme, _, host = ep.partition("://")
    return {"endpoint_override": host, "scheme": scheme} if host else {"endpoint_override": ep, "scheme": "https"}


def _s3(netloc_path: str):
    from pyarrow import fs

    kw: dict[str, Any] = _endpoint()
    if _options.get("region"):
        kw["region"] = _options["region"]
    if _options.get("anonymous"):
        kw["anonymous"] = True
    for k in ("access_key", "secret_key", "session_token"):
        if _options.get(k):
            kw[k] = _options[k]
    # retries with backoff on 5xx / SlowDown / reset connections: a store's transient errors are not the user's
    kw["retry_strategy"] = fs.AwsStandardS3RetryStrategy(max_attempts=int(_options.get("max_attempts", 10)))
    return fs.S3FileSystem(**kw)


def _gcs(_):
    from pyarrow import fs

    kw: dict[str, Any] = _endpoint()
    if _options.get("anonymous"):
        kw["anonymous"] = True
    return fs.GcsFileSystem(**kw)


def _hdfs(netloc_path: str):
    from pyarrow import fs

    host, _, _ = netloc_path.partition("/")
    name, _, port = host.partition(":")
    return fs.HadoopFileSystem(name or "default", int(port) if port else 8020)


def _azure(netloc_path: str):
    from pyarrow import fs

    try:
        import adlfs
    except ImportError:
        raise CorpusforgeError("missing_dependency", "abfs:// paths need adlfs: pip install adlfs") from None
    account = _options.get("account_name")
    return fs.PyFileSystem(fs.FSSpecHandler(adlfs.AzureBlobFileSystem(account_name=account, anon=bool(_options.get("anonymous")))))


_MAKERS = {"s3": _s3, "gs": _gcs, "gcs": _gcs, "hdfs": _hdfs, "viewfs": _hdfs, "abfs": _azure, "abfss": _azure, "az": _azure}


def resolve(path: str):
    """(pyarrow FileSystem, path inside it) of a URI; one filesystem per scheme and host, cached."""
    scheme, rest = split_uri(path)
    if scheme is None:
        raise CorpusforgeError("bad_path", f"{path}: a local path, not a URI")
    inner = rest.partition("/")[2] if scheme in ("hdfs", "viewfs") else rest
    key = (scheme, rest.partition("/")[0] if scheme in ("hdfs", "viewfs") else "")
    if key not in _cache:
        try:
            _cache[key] = _MAKERS[scheme](rest)
        except CorpusforgeError:
            raise
        except Exception as e:  # no libhdfs, bad endpoint...: one line naming the store
            raise CorpusforgeError("storage_unavailable", f"{scheme}://: {type(e).__name__}: {e}".splitlines()[0]) from None
    return _cache[key], "/" + inner if scheme in ("hdfs", "viewfs") else inner


def join(base: str, *names: str) -> str:
    return posixpath.join(base, *names) if is_remote(base) else os.path.join(base, *names)


def read_error(path: str, e: Exception) -> CorpusforgeError:
    """A store's exception while reading or listing, as one line naming the path."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return CorpusforgeError("unreadable_input", f"{path}: {msg}")


def stat(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a remote object; ERROR unreadable_input when it is missing or a folder."""
    from pyarrow import fs

    f, inner = resolve(path)
    try:
        info = f.get_file_info(inner)
    except Exception as e:
        raise read_error(path, e) from None
    if info.type == fs.FileType.NotFound:
        raise CorpusforgeError("unreadable_input", f"{path}: no such object")
    if info.type == fs.FileType.Directory:
        raise CorpusforgeError("unreadable_input", f"{path}: is a directory, expected a file")
    return info.size, info.mtime_ns or 0


def open_input(path: str):
    """A seekable binary file of a remote object (reads by range)."""
    f, inner = resolve(path)
    try:
        return f.open_input_file(inner)
    except Exception as e:
        raise read_error(path, e) from None


def glob(pattern: str) -> list[str]:
    """Objects matching a URI glob (`*`, `?`, `[...]` within a segment, `**` across folders), listed by
    the prefix before the first wildcard; dot-names match only a segment that starts with a dot."""
    from pyarrow import fs

    f, inner = resolve(pattern)
    prefix = pattern[: len(pattern) - len(inner)]  # s3://, or hdfs://host:port
    segs = inner.split("/")
    k = next((i for i, s in enumerate(segs) if any(c in s for c in "*?[")), None)
    if k is None:
        try:
            return [pattern] if f.get_file_info(inner).type == fs.FileType.File else []
        except Exception as e:
            raise read_error(pattern, e) from None
    base = "/".join(segs[:k])
    try:
        infos = f.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    except Exception as e:
        raise read_error(pattern, e) from None
    rx = _glob_regex(segs)
    return sorted(prefix + i.path for i in infos if i.type == fs.FileType.File and rx.fullmatch(i.path))


def _glob_regex(segs: list[str]) -> re.Pattern:
    out = []
    for i, s in enumerate(segs):
        last = i == len(segs) - 1
        if s == "**":  # zero or more folders (none starting with a dot); as the last segment, any file below
            out.append("(?:[^/.][^/]*/)*" + ("[^/.][^/]*" if last else ""))
        else:
            out.append(_segment(s) + ("" if last else "/"))
    return re.compile("".join(out))


def _segment(s: str) -> str:
    """One glob segment as a regex that never crosses '/'; `*` does not match a leading dot."""
    rx, i = "", 0
    if not s.startswith("."):
        rx += "(?!\\.)"
    while i < len(s):
        c = s[i]
        if c == "*":
            rx += "[^/]*"
        elif c == "?":
            rx += "[^/]"
        elif c == "[":
            j = s.find("]", i + 1)
            if j < 0:
                rx += "\\["
            else:
                cls = s[i + 1:j]
                rx += "[" + ("^" + cls[1:] if cls.startswith("!") else cls) + "]"
                i = j
        else:
            rx += re.escape(c)
        i += 1
    return rx


# ------------------------------------------------------------------ one call for local and remote reads


def open_read(path: str):
    """A seekable binary file: open() for a local path, a ranged reader for an object."""
    return open_input(path) if is_remote(path) else open(path, "rb")


def size_mtime(path: str) -> tuple[int, int]:
    """(size, mtime_ns); OSError for a missing local file, CorpusforgeError for a missing object."""
    if is_remote(path):
        return stat(path)
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open_read(path) as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()

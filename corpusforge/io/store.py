"""One call for a run's output paths, local or on an object store: the runner, the part tasks, the
driver, audit and the ownership checks use these and never os/open on an output.

Local paths keep the os calls they always used (the commit protocol there is temp file + fsync +
rename, in writers.py). On an object store there is no rename and no directory: an object appears
whole when its PUT (or multipart upload) completes, so a file is written to a local spool file and
uploaded once under its final key; "folders" are key prefixes, created by writing under them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs


def _info(path: str):
    f, inner = fs.resolve(path)
    try:
        return f, inner, f.get_file_info(inner)
    except Exception as e:
        raise fs.read_error(path, e) from None


def _failed(path: str, e: Exception) -> CorpusforgeError:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return CorpusforgeError("write_failed", f"{path}: {msg} (the file was not committed; fix access to the store, "
                            "then rerun with --resume)")


def exists(path: str) -> bool:
    if not fs.is_remote(path):
        return os.path.exists(path)
    from pyarrow.fs import FileType

    return _info(path)[2].type != FileType.NotFound


def isfile(path: str) -> bool:
    if not fs.is_remote(path):
        return os.path.isfile(path)
    from pyarrow.fs import FileType

    return _info(path)[2].type == FileType.File


def isdir(path: str) -> bool:
    if not fs.is_remote(path):
        return os.path.isdir(path)
    from pyarrow.fs import FileType

    return _info(path)[2].type == FileType.Directory


def listdir(d: str) -> list[str]:
    """Names directly below d (files and folders), like os.listdir; [] for a missing remote prefix."""
    if not fs.is_remote(d):
        return os.listdir(d)
    from pyarrow.fs import FileSelector

    f, inner = fs.resolve(d)
    try:
        infos = f.get_file_info(FileSelector(inner.rstrip("/"), recursive=False, allow_not_found=True))
    except Exception as e:
        raise fs.read_error(d, e) from None
    return [i.path.rstrip("/").rsplit("/", 1)[-1] for i in infos]


def files_below(d: str) -> list[str]:
    """Every file below d, as paths relative to d ('/'-separated)."""
    if not fs.is_remote(d):
        return [os.path.relpath(os.path.join(r, n), d).replace(os.sep, "/") for r, _, names in os.walk(d) for n in names]
    from pyarrow.fs import FileSelector, FileType

    f, inner = fs.resolve(d)
    base = inner.rstrip("/") + "/"
    try:
        infos = f.get_file_info(FileSelector(base.rstrip("/"), recursive=True, allow_not_found=True))
    except Exception as e:
        raise fs.read_error(d, e) from None
    return sorted(i.path[len(base):] for i in infos if i.type == FileType.File)


def makedirs(d: str) -> None:
    """A local folder; nothing on an object store (a prefix exists once something is written under it)."""
    if not fs.is_remote(d):
        from corpusforge.io.writers import write_error

        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:  # read-only or foreign output directory
            raise write_error(d, e) from None


def delete(path: str) -> None:
    if not fs.is_remote(path):
        os.unlink(path)
        return
    f, inner = fs.resolve(path)
    try:
        f.delete_file(inner)
    except FileNotFoundError:
        pass
    except Exception as e:
        raise _failed(path, e) from None


def delete_tree(d: str) -> None:
    """A folder and everything below it; nothing when it is missing."""
    if not fs.is_remote(d):
        shutil.rmtree(d, ignore_errors=True)
        return
    f, inner = fs.resolve(d)
    try:
        f.delete_dir(inner.rstrip("/"))
    except FileNotFoundError:
        pass
    except Exception as e:
        raise _failed(d, e) from None


def read_bytes(path: str) -> bytes:
    with fs.open_read(path) as f:
        return f.read()


def read_json(path: str):
    """json.load of a local file or an object; OSError / ValueError as json.load would raise them."""
    if not fs.is_remote(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if not isfile(path):
        raise FileNotFoundError(path)
    return json.loads(read_bytes(path).decode("utf-8"))


def source(path: str):
    """What pyarrow.parquet reads: the path itself locally, a ranged reader of the object otherwise."""
    return fs.open_input(path) if fs.is_remote(path) else path


def put_bytes(final: str, data: bytes) -> None:
    """One whole object under its final key (an object PUT is atomic: readers see all of it or none)."""
    f, inner = fs.resolve(final)
    try:
        with f.open_output_stream(inner, compression=None) as o:
            o.write(data)
    except Exception as e:
        raise _failed(final, e) from None
    _verify_size(f, inner, final, len(data))


def _verify_size(f, inner: str, final: str, size: int) -> None:
    """One HEAD after each upload: a store (or proxy) that stored other bytes than were sent is caught at
    once, not by the next reader's sha256 check."""
    try:
        got = f.get_file_info(inner).size
    except Exception as e:
        raise _failed(final, e) from None
    if got != size:
        raise CorpusforgeError("write_failed", f"{final}: the store holds {got} bytes after an upload of {size} "
                               "(an anonymous or mangled request?); fix the credentials, then rerun with --resume")


def spool_path(final: str) -> str:
    """A local temp file that becomes the object `final` when uploaded (ParquetWriter needs a file)."""
    fd, p = tempfile.mkstemp(prefix=".tmp-cf-", suffix="-" + final.rstrip("/").rsplit("/", 1)[-1])
    os.close(fd)
    return p


def upload(local: str, final: str) -> None:
    """Copies a local file to the object `final` (multipart for large files; visible only when complete)."""
    f, inner = fs.resolve(final)
    try:
        with open(local, "rb") as src, f.open_output_stream(inner, compression=None) as o:
            while chunk := src.read(8 << 20):
                o.write(chunk)
    except Exception as e:
        raise _failed(final, e) from None
    _verify_size(f, inner, final, os.path.getsize(local))


def download(path: str, local: str) -> None:
    with fs.open_read(path) as src, open(local, "wb") as o:
        while chunk := src.read(8 << 20):
            o.write(chunk)

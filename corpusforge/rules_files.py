"""Rule files ship inside the package (`corpusforge.rules`, sourced from the repo's rules/), so every
worker and executor reads byte-identical files; users may point stages at their own paths instead."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def rules_root():
    """Installed: the `corpusforge.rules` package; source checkout on sys.path: the repo's rules/."""
    try:
        return resources.files("corpusforge.rules")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "rules"


def resolve(path: str) -> str:
    """A user path if it exists, a local copy of an object (s3://, gs://...), else a path relative to the
    bundled rules/ directory."""
    from corpusforge.io import fs

    if fs.is_remote(path):
        from corpusforge.io import store
        from corpusforge.io.staging import cached_file

        local = cached_file(path)
        if store.isfile(path + ".json"):  # a model's sidecar (kind, sha256, max_units) travels with it
            cached_file(path + ".json")
        return local
    if os.path.exists(path):
        return os.path.abspath(path)
    bundled = rules_root().joinpath(path)
    if bundled.is_file():
        return str(bundled)
    from corpusforge.errors import CorpusforgeError

    raise CorpusforgeError("missing_rule_file", f"{path}: not found (neither a file nor a bundled rule under rules/)")


def read_lines(path: str) -> list[str]:
    """Non-empty, non-comment lines of a UTF-8 list file."""
    with open(resolve(path), encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def sha256_file(path: str) -> str:
    """Of a local file or an object."""
    from corpusforge.io import fs

    return fs.sha256(path)

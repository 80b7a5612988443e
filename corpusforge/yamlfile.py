"""The one way a YAML document (config, mixture, rule file) is read and a validation error is worded."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from corpusforge.errors import CorpusforgeError


def load_mapping(path: str, code: str, text: str | None = None) -> dict:
    """The YAML mapping in PATH (or in `text`, read from PATH by the caller): ERROR `code` naming the file
    when it cannot be read, is not YAML or is not a mapping. safe_load: documents are data, never code."""
    try:
        if text is None:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        doc = yaml.safe_load(text)
    except OSError as e:
        raise CorpusforgeError(code, f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise CorpusforgeError(code, f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise CorpusforgeError(code, f"{path}: expected a mapping at the top level")
    return doc


def format_error(e: ValidationError, prefix: str = "") -> str:
    """`dotted.location: message (got value)` of the first error; a misspelt key (which also shows up as a
    missing one) comes first, so the message names the misspelling."""
    errs = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
    err = errs[0]
    loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
    got = f" (got {err['input']!r})" if err["type"] not in ("missing", "value_error") and "input" in err else ""
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc + ': ' if loc else ''}{msg}{got}{more}"

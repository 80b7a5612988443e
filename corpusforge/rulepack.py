"""Loading and validating rule files (rules/): word lists, regex rule packs, threshold profiles.

Errors name the file and the line, so a bad edit to a rule file fails at load, not as a silent
no-op (an empty pattern matches everywhere; a 1-character word list entry drops half the web)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from corpusforge.yamlfile import load_mapping
from corpusforge.errors import CorpusforgeError
from corpusforge.rules_files import resolve

# Skeleton used for matching word lists: lower-case, no whitespace, punctuation or symbols, so that
# `法*轮` and `法 轮` match `法轮`. Sentence boundaries survive, so a match cannot span two sentences.
SKELETON_DROP_RE = "[^\\p{L}\\p{N}\\x{3002}\\x{ff01}\\x{ff1f}\\n]+"


def skeleton(texts: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.replace_substring_regex(texts, SKELETON_DROP_RE, ""))


def skeleton_many(texts: list[str]) -> list[str]:
    return skeleton(pa.array(texts, pa.string())).to_pylist() if texts else []


def skeleton_one(text: str) -> str:
    return skeleton_many([text])[0]


def _header_ok(path: str, lines: list[str]) -> None:
    head = "\n".join(ln for ln in lines[:30] if ln.lstrip().startswith("#")).lower()
    if "source" not in head or "licen" not in head:
        raise CorpusforgeError("bad_rule_file", f"{path}:1: header must name the source and the licence (# source: ..., # licence: ...)")


@dataclass(frozen=True)
class Term:
    text: str
    line: int


def read_word_list(path: str, min_len: int = 2) -> list[Term]:
    """One term a line, `#` comments. A term whose matching skeleton is shorter than min_len is an error."""
    real = resolve(path)
    with open(real, encoding="utf-8") as f:
        lines = f.read().splitlines()
    _header_ok(path, lines)
    out = []
    cand = [(no, raw.strip()) for no, raw in enumerate(lines, 1) if raw.strip() and not raw.lstrip().startswith("#")]
    for (no, t), sk in zip(cand, skeleton_many([t for _, t in cand])):
        if len(sk) < min_len:
            raise CorpusforgeError("bad_rule_file", f"{path}:{no}: term {t!r} is empty or shorter than {min_len} characters once symbols and spaces are removed")
        out.append(Term(t, no))
    if not out:
        raise CorpusforgeError("bad_rule_file", f"{path}: word list has no terms")
    return out


@dataclass(frozen=True)
class RegexRule:
    id: str
    pattern: str
    replace: str
    examples: tuple[tuple[str, str], ...]
    file: str
    line: int


def _re2_check(pattern: str, where: str) -> None:
    try:
        pc.replace_substring_regex(pa.array(["x"]), pattern, "")
    except pa.ArrowInvalid as e:
        raise CorpusforgeError("bad_rule_file", f"{where}: pattern does not compile as RE2: {e}") from None


def read_regex_rules(path: str) -> list[RegexRule]:
    """YAML: `rules: [{id, pattern, replace, examples: [{in, out}]}]`, applied in order (RE2 syntax)."""
    real = resolve(path)
    with open(real, encoding="utf-8") as f:
        src = f.read()
    _header_ok(path, src.splitlines())
    try:
        node = yaml.compose(src)
    except yaml.YAMLError as e:
        raise CorpusforgeError("bad_rule_file", f"{path}: not valid YAML: {e}") from None
    doc = yaml.safe_load(src) or {}
    items = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise CorpusforgeError("bad_rule_file", f"{path}: expected a non-empty `rules:` list")
    lines = {}
    for k, v in node.value:
        if k.value == "rules":
            lines = {i: n.start_mark.line + 1 for i, n in enumerate(v.value)}
    out, seen = [], set()
    for i, r in enumerate(items):
        where = f"{path}:{lines.get(i, 1)}"
        if not isinstance(r, dict) or set(r) - {"id", "pattern", "replace", "examples", "note"}:
            raise CorpusforgeError("bad_rule_file", f"{where}: a rule has keys id, pattern, replace, examples (and note); got {r!r}")
        rid, pat, rep = r.get("id"), r.get("pattern"), r.get("replace", "")
        if not rid or rid in seen:
            raise CorpusforgeError("bad_rule_file", f"{where}: rule id missing or repeated ({rid!r})")
        seen.add(rid)
        if not isinstance(pat, str) or len(pat) < 2:
            raise CorpusforgeError("bad_rule_file", f"{where}: rule {rid}: pattern is empty or 1 character")
        if not isinstance(rep, str):
            raise CorpusforgeError("bad_rule_file", f"{where}: rule {rid}: replace must be a string")
        _re2_check(pat, f"{where}: rule {rid}")
        if pc.match_substring_regex(pa.array([""]), pat)[0].as_py():
            raise CorpusforgeError("bad_rule_file", f"{where}: rule {rid}: pattern matches the empty string")
        ex = r.get("examples") or []
        if not ex or not all(isinstance(e, dict) and set(e) == {"in", "out"} for e in ex):
            raise CorpusforgeError("bad_rule_file", f"{where}: rule {rid}: needs examples: [{{in, out}}, ...]")
        out.append(RegexRule(rid, pat, rep, tuple((e["in"], e["out"]) for e in ex), path, lines.get(i, 1)))
    return out


def read_yaml(path: str) -> dict:
    real = resolve(path)
    with open(real, encoding="utf-8") as f:
        src = f.read()
    _header_ok(path, src.splitlines())
    return load_mapping(path, "bad_rule_file", src)

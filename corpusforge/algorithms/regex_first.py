"""The characters a match of an RE2 pattern can start with, so `clean` scans a rule only over the rows that
hold one of them (a row with none cannot match: every match of a pattern that cannot match the empty
string starts with such a character).

A small reader of RE2 syntax finds the one-character expressions (literals, escapes, classes, `.`) that
can begin a match: alternation, groups, quantifiers and zero-width assertions are followed; anything
else (flags such as `(?i)`, named groups, `\\Q...\\E`, a `{` that is not a quantifier) gives up, and the
rule is then scanned on every row. Which code points each expression matches is read off RE2 itself
(Arrow's kernel over every code point), so the two cannot disagree about a class."""

from __future__ import annotations

import numpy as np

from corpusforge.algorithms import tablecache
from corpusforge.algorithms.utf8 import every_code_point

MAX_RULES = 32  # bits of the per-code-point mask; later rules are scanned on every row


class _Unsupported(Exception):
    pass


_ZERO_WIDTH = set("bBAz")
_ONE_CHAR_ESCAPES = set("dDsSwWntrfva") | set("\\.+*?()[]{}|^$-/#&~ :!\"',;<=>@_`%")


class _Reader:
    def __init__(self, p: str):
        self.p, self.i = p, 0

    def peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def alt(self) -> tuple[set, bool]:
        first, nullable = self.seq()
        while self.peek() == "|":
            self.i += 1
            f, n = self.seq()
            first, nullable = first | f, nullable or n
        return first, nullable

    def seq(self) -> tuple[set, bool]:
        first, nullable = set(), True
        while self.peek() not in ("", "|", ")"):
            f, n = self.quantified()
            if nullable:
                first |= f
            nullable = nullable and n
        return first, nullable

    def quantified(self) -> tuple[set, bool]:
        f, n = self.atom()
        c = self.peek()
        if c in ("*", "?"):
            self.i += 1
            n = True
        elif c == "+":
            self.i += 1
        elif c == "{":
            end = self.p.find("}", self.i)
            body = self.p[self.i + 1:end] if end > 0 else ""
            lo = body.split(",")[0]
            if not lo.isdigit() or not all(x.isdigit() for x in body.split(",")[1:2] if x) or body.count(",") > 1:
                raise _Unsupported(self.p)
            self.i = end + 1
            n = n or int(lo) == 0
        else:
            return f, n
        if self.peek() == "?":  # lazy: the same characters
            self.i += 1
        if self.peek() in ("*", "+", "?", "{"):
            raise _Unsupported(self.p)
        return f, n

    def atom(self) -> tuple[set, bool]:
        p, i = self.p, self.i
        c = p[i]
        if c == "(":
            if p.startswith("(?:", i):
                self.i += 3
            elif p.startswith("(?", i):
                raise _Unsupported(p)  # flags, named groups
            else:
                self.i += 1
            f, n = self.alt()
            if self.peek() != ")":
                raise _Unsupported(p)
            self.i += 1
            return f, n
        if c in "^$":
            self.i += 1
            return set(), True
        if c == "[":
            j = i + 1
            if p.startswith("^", j):
                j += 1
            if p.startswith("]", j):
                j += 1
            while j < len(p) and p[j] != "]":
                if p[j] == "\\":
                    j += 2
                elif p.startswith("[:", j):
                    k = p.find(":]", j + 2)
                    if k < 0:
                        raise _Unsupported(p)
                    j = k + 2
                else:
                    j += 1
            if j >= len(p):
                raise _Unsupported(p)
            self.i = j + 1
            return {p[i:j + 1]}, False
        if c == "\\":
            e = p[i + 1:i + 2]
            if e in _ZERO_WIDTH:
                self.i += 2
                return set(), True
            if e in ("x", "p", "P"):
                if p.startswith("{", i + 2):
                    k = p.find("}", i + 2)
                    if k < 0:
                        raise _Unsupported(p)
                    self.i = k + 1
                else:
                    self.i = i + (4 if e == "x" else 3)
                return {p[i:self.i]}, False
            if e in _ONE_CHAR_ESCAPES:
                self.i += 2
                return {p[i:i + 2]}, False
            raise _Unsupported(p)
        if c in ")|*+?{":
            raise _Unsupported(p)
        self.i += 1
        return {c}, False


def first_atoms(pattern: str) -> list[str] | None:
    """The one-character expressions (RE2 source) one of which begins every match, or None when the
    pattern can match the empty string or uses syntax this reader does not follow."""
    r = _Reader(pattern)
    try:
        first, nullable = r.alt()
    except (_Unsupported, IndexError):
        return None
    if r.i != len(pattern) or nullable or not first:
        return None
    return sorted(first)


@tablecache.cached
def first_table(patterns: tuple[str, ...]) -> np.ndarray:
    """uint32 per code point: bit k set where pattern k (k < MAX_RULES) can begin a match with it; bit k is
    set everywhere for a pattern first_atoms cannot read (scanned on every row)."""
    import pyarrow.compute as pc

    valid, every = every_code_point()
    t = np.zeros(0x110000, np.uint32)
    for k, pat in enumerate(patterns[:MAX_RULES]):
        atoms = first_atoms(pat)
        if atoms is None:
            t |= np.uint32(1 << k)
            continue
        hit = np.asarray(pc.match_substring_regex(every, "^(?:" + "|".join(atoms) + ")$"))
        t[valid[hit]] |= np.uint32(1 << k)
    return t

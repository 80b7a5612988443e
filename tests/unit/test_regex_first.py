"""regex_first: the characters a rule's match can begin with, and clean scanning a rule only over the rows
that hold one, equal to scanning every row."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from corpusforge.algorithms.regex_first import first_atoms, first_table
from corpusforge.rulepack import read_regex_rules


@pytest.mark.parametrize("pattern,atoms", [
    ("x?y", ["x", "y"]), ("(ab|c)d", ["a", "c"]), ("[]a]b", ["[]a]"]), ("[[:alpha:]]+", ["[[:alpha:]]"]),
    ("\\d{2,}", ["\\d"]), ("\\bfoo", ["f"]), ("\\x41\\x{42}", ["\\x41"]), ("\\pL+", ["\\pL"]), (".+", ["."]),
    ("(?:https?|ftp)://x|www\\.y", ["f", "h", "w"]), ("a{0,3}b", ["a", "b"]), ("^#+", ["#"]),
    # may match the empty string, or syntax not followed: every row is scanned
    ("a*", None), ("a|", None), ("^$", None), ("(?i)abc", None), ("(?P<n>a)", None), ("a{,3}", None),
    ("a{2}{3}", None), ("\\Qa\\E", None), ("(a", None), ("[a", None),
])
def test_first_atoms(pattern, atoms):
    assert first_atoms(pattern) == atoms


def _texts(shared):
    out = []
    for f in ("web/commoncrawl_2021-43_zh_100docs.jsonl", "spam/trec06c_email_sample.jsonl"):
        out += [json.loads(x)["text"] for x in (shared / f).read_text(encoding="utf-8").splitlines()]
    rng = random.Random(5)
    parts = ["<br/>", "http://a.cn/x", "www.example.com", "=====", "。。。", "😀", "├──", "★", "Ａ", "abc", "中文", "\n", " ", "……"]
    return out + ["".join(rng.choice(parts) for _ in range(rng.randrange(1, 12))) for _ in range(500)]


PATTERNS = [r.pattern for r in read_regex_rules("cleaning/zh_web.yaml")] + [
    "\\d{3,}", "[A-Z][a-z]+", "(?:foo|ba+r)\\s", "\\p{Han}{4}", "[^\\p{Han}\\s]{5,}", "x?\\.", "(?i)abc", "a*"]


def test_a_row_without_a_first_character_has_no_match(shared_data):
    """For every pattern: the rows whose characters carry none of its bits have no match, on real web
    text, spam e-mail and adversarial mixes (unreadable patterns carry their bit on every character)."""
    texts = pa.array(_texts(shared_data))
    table = first_table.uncached(tuple(PATTERNS))
    for k, pat in enumerate(PATTERNS):
        rows = np.array([bool(np.bitwise_or.reduce(table[[ord(c) for c in t]], initial=np.uint32(0)) & (1 << k))
                         for t in texts.to_pylist()])
        count = pc.count_substring_regex(texts, pat).to_numpy(zero_copy_only=False)
        assert not count[~rows].any(), pat
        assert count[rows].any() or pat in ("(?i)abc",), pat  # the data exercises the pattern


def test_clean_with_a_rule_whose_replacement_feeds_a_later_rule(tmp_path, shared_data):
    """A replacement's characters join the row's bits: rule 1 writes ★ where rule 2 then matches it, in
    rows that held no ★ before; the compiled path (prefiltered) equals the reference (every row)."""
    from corpusforge.stages.clean import Clean

    rules = tmp_path / "r.yaml"
    rules.write_text("# source: test\n# licence: Apache-2.0\nrules:\n"
                     "  - {id: star, pattern: 'XX', replace: '★', examples: [{in: 'aXX', out: 'a★'}]}\n"
                     "  - {id: stars, pattern: '★+', replace: '#', examples: [{in: '★★', out: '#'}]}\n"
                     "  - {id: hash, pattern: '#+', replace: '', examples: [{in: 'a#', out: 'a'}]}\n", encoding="utf-8")
    st = Clean(Clean.Params(rules=[str(rules)]))
    st.setup()
    texts = pa.array(_texts(shared_data)[:50] + ["前XX后", "XXXX", "无", "★已有"], pa.string())
    fast, fcols = st.clean(texts)
    slow, scols = st.clean_reference(texts)
    assert fast.equals(slow) and np.array_equal(fcols["rule_hits"], scols["rule_hits"])
    assert fast.to_pylist()[-4:] == ["前后", "", "无", "已有"]

"""Every rule file in rules/ loads (header, validation) and every inline regex example holds."""

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from corpusforge.rules_files import rules_root
from corpusforge.stages.pangu_rules import PanguRules
from corpusforge.rulepack import read_regex_rules, read_word_list, read_yaml

ROOT = Path(str(rules_root()))
REGEX = sorted(p for p in ROOT.glob("cleaning/*.yaml"))
LISTS = sorted(p for d in ("sensitive", "ads", "nav") for p in (ROOT / d).glob("*.txt"))
EXAMPLES = [(p.name, r.id, i, o) for p in REGEX for r in read_regex_rules(str(p)) for i, o in r.examples]


def test_rule_files_exist():
    assert REGEX and len(LISTS) >= 7 and (ROOT / "thresholds/pangu.yaml").is_file()


@pytest.mark.parametrize("fname, rid, src, want", EXAMPLES, ids=[f"{f}:{r}:{k}" for k, (f, r, _, _) in enumerate(EXAMPLES)])
def test_regex_rule_example(fname, rid, src, want):
    rule = next(r for r in read_regex_rules(f"cleaning/{fname}") if r.id == rid)
    assert pc.replace_substring_regex(pa.array([src]), rule.pattern, rule.replace)[0].as_py() == want


@pytest.mark.parametrize("path", LISTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_word_list_loads(path):
    terms = read_word_list(str(path))
    assert len(terms) == len({t.text for t in terms}), "duplicate terms"


def test_threshold_profiles_validate():
    doc = read_yaml("thresholds/pangu.yaml")
    for name in doc:
        s = PanguRules(PanguRules.Params(profile=name))
        s.setup()
        assert 0 < s.t.min_zh_ratio < 1 and s.t.min_chars > 0


def test_one_character_term_is_an_error_with_file_and_line(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("# source: x\n# licence: y\n赌博\n*性*\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"w.txt:4: term '\*性\*'"):
        read_word_list(str(p))

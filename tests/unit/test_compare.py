"""`corpusforge report RUN_A RUN_B --compare` on real runs of the shared data that differ by one
threshold (pangu_rules min_chars) or by one stage (clean): every flipped document is listed once with
its fate in each run as the tables record it, the counts equal the manifests' difference, samples
do not depend on how the join is bucketed, and runs of different inputs are refused."""

import re

import pyarrow.parquet as pq
import pytest

from corpusforge.cli import main
from corpusforge.errors import CorpusforgeError
from corpusforge.report import compare as cmpmod
from corpusforge.report.compare import compare
from tests.browser.report_run import STAGES, make_run
from tests.util import manifest, table

STRICT = [STAGES[0], {"use": "pangu_rules", "with": {"overrides": {"min_chars": 400}}}, *STAGES[2:]]


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    return {"a": make_run(shared_data, d, "a"), "b": make_run(shared_data, d, "b", STRICT),
            "noclean": make_run(shared_data, d, "noclean", STAGES[1:]), "d": d}


def _fates(run) -> dict[str, str]:
    """id -> fate straight from the persisted tables (the test's own reading, whole tables: small data)."""
    fates = {i: "kept" for i in table(run, "kept").column("id").to_pylist()}
    rej = table(run, "rejects")
    fates.update(zip(rej.column("id").to_pylist(), rej.column("reason").to_pylist()))
    return fates


def test_every_flip_listed_once_with_both_fates_and_counts_match_manifests(runs, tmp_path):
    a, b = runs["a"], runs["b"]
    flips = tmp_path / "flips.parquet"
    c = compare(str(a), str(b), flips_out=str(flips), bucket_rows=60)  # ~10 buckets: the join really is bucketed
    fa, fb = _fates(a), _fates(b)
    assert fa.keys() == fb.keys()
    want = {i: (fa[i], fb[i]) for i in fa if fa[i] != fb[i]}
    assert want, "the stricter min_chars must flip documents"
    got = pq.read_table(flips).to_pylist()
    assert len(got) == len({r["id"] for r in got}) == len(want) == c["flipped"]  # each once
    assert {r["id"]: (r["a"], r["b"]) for r in got} == want
    # B is stricter on length only: what it drops that A kept, it drops as too short
    assert {r["b"] for r in got if r["a"] == "kept"} == {"pangu_rules:too_short"}
    trans = {(t["a"], t["b"]): t["n"] for t in c["transitions"]}
    assert sum(trans.values()) == len(want)
    ma, mb = manifest(a), manifest(b)
    into_kept = sum(n for (x, y), n in trans.items() if y == "kept")
    out_of_kept = sum(n for (x, y), n in trans.items() if x == "kept")
    assert into_kept - out_of_kept == mb["totals"]["kept"] - ma["totals"]["kept"] < 0
    for s in c["stages"]:
        sa = next(x for x in ma["stages"] if x["name"] == s["stage"])
        sb = next(x for x in mb["stages"] if x["name"] == s["stage"])
        assert s["diff"]["kept"] == sb["kept"] - sa["kept"]
        assert s["diff"]["dropped"] == sum(sb["dropped"].values()) - sum(sa["dropped"].values())
        for r, (na, nb) in s["reasons"].items():
            assert (na, nb) == (sa["dropped"].get(r, 0), sb["dropped"].get(r, 0))
    for src, v in c["sources"].items():
        for side, fates, run in (("a", fa, a), ("b", fb, b)):
            kept = sum(1 for s in table(run, "kept").column("source").to_pylist() if s == src)
            assert v[side]["kept"] == kept
    # samples: real members of their transition, with the text each run holds
    for t in c["transitions"]:
        assert 0 < len(t["samples"]) <= min(5, t["n"])
        for x in t["samples"]:
            assert want[x["id"]] == (t["a"], t["b"])
            assert x["text_a"] and x["text_b"]  # kept text or reject preview, from the tables
    # what B removed that A kept is what the human-eval page offers for run A
    assert {x["id"] for x in c["eval_a"]} <= {i for i, (x, y) in want.items() if x == "kept"}
    assert len(c["eval_a"]) == min(30, sum(1 for x, y in want.values() if x == "kept"))


def test_samples_and_counts_do_not_depend_on_buckets(runs, monkeypatch):
    seen = []
    real = cmpmod._read
    monkeypatch.setattr(cmpmod, "_read", lambda p: seen.append(real(p).num_rows) or real(p))
    one = compare(str(runs["a"]), str(runs["b"]))
    assert len(seen) == 2  # 593 records: one bucket per run
    seen.clear()
    many = compare(str(runs["a"]), str(runs["b"]), bucket_rows=40)
    assert len(seen) == 2 * 15 and max(seen) < 4 * 40  # bounded: no bucket holds much more than its share
    assert one == many


def test_cleaning_change_is_an_edit_with_a_diff(runs, tmp_path):
    out = tmp_path / "cmp.html"
    assert main(["report", str(runs["noclean"]), str(runs["a"]), "--compare", "--out", str(out)]) == 0
    c = compare(str(runs["noclean"]), str(runs["a"]))
    ed = next(t for t in c["transitions"] if t["a"] == t["b"] == "kept")
    assert ed["n"] == c["edited"] > 0
    x = ed["samples"][0]
    assert x["text_a"] != x["text_b"]
    html_text = out.read_text(encoding="utf-8")
    block = re.search(r'<details class="flip" data-from="kept" data-to="kept">(.*?)</details>', html_text, re.S).group(1)
    assert "<del>" in block or "<ins>" in block
    assert f'data-id="{x["id"]}"' in block
    assert 'id="compare"' in html_text and 'href="#compare"' in html_text


def test_different_inputs_refused(runs, shared_data, capsys):
    other = make_run(shared_data, runs["d"], "other", STAGES, ("web", "luxun"))
    with pytest.raises(CorpusforgeError, match="different_inputs|read different inputs"):
        compare(str(runs["a"]), str(other))
    assert main(["report", str(runs["a"]), str(other), "--compare", "--out", str(runs["d"] / "x.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different_inputs" in err[0] and re.search(r"source '(zhwiki|hostile)'", err[0]), err
    assert not (runs["d"] / "x.html").exists()


def test_flip_list_never_replaces_a_file_it_did_not_write(runs, tmp_path, capsys):
    mine = tmp_path / "notes.parquet"
    mine.write_bytes(b"PAR1 a user's file")
    assert main(["report", str(runs["a"]), str(runs["b"]), "--compare", "--flips", str(mine), "--out", str(tmp_path / "r.html")]) == 2
    assert "output_not_ours" in capsys.readouterr().err
    assert mine.read_bytes() == b"PAR1 a user's file"
    ours = tmp_path / "flips.parquet"
    for _ in range(2):  # a flip list of ours is replaced
        assert main(["report", str(runs["a"]), str(runs["b"]), "--compare", "--flips", str(ours), "--out", str(tmp_path / "r.html")]) == 0
    assert pq.read_table(ours).num_rows == compare(str(runs["a"]), str(runs["b"]))["flipped"]
    assert main(["report", str(runs["a"]), "--flips", str(ours)]) == 2

"""pii stage: precision on every replacement it makes in the shared data (hand-labelled in
tests/data/pii/real_matches.jsonl), recall on planted items (tests/data/pii/planted.jsonl), checksum/Luhn
and boundary rules, counters, determinism, and a whole pipeline run with its ledger."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter

import pyarrow as pa
import pytest
import yaml

from corpusforge.stage import lookup
# importing the module registers the stage (until corpusforge/stages/__init__.py imports it)
from corpusforge.stages.pii import DEFAULT_KINDS, KINDS, id_card_ok, luhn_ok
from tests.util import REPO_ROOT, assert_audit_ok, manifest, run, table, write_config, write_jsonl

DATA = REPO_ROOT / "tests/data/pii"
RELIST = ".venv/bin/python tests/data/pii/list_matches.py"


def _module(name):
    spec = importlib.util.spec_from_file_location(f"pii_{name}", DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


lister, maker = _module("list_matches"), _module("make_planted")


def stage(**kw):
    cls = lookup("pii")
    s = cls(cls.Params(**kw))
    s.setup()
    return s


def redact(text, **kw):
    return stage(**kw).redact(text)[0]


def rows(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module")
def real(shared_data):
    return lister.matches(shared_data)


def test_precision_on_every_replacement_in_the_shared_data(real):
    labels = {lister.key(m): m for m in rows(DATA / "real_matches.jsonl")}
    unlabelled = [m for m in real if lister.key(m) not in labels]
    assert not unlabelled, (f"{len(unlabelled)} replacements have no label, e.g. {unlabelled[0]['context']!r}: run "
                            f"{RELIST} and label the new rows of real_matches.jsonl by reading their context")
    got = [labels[lister.key(m)]["label"] for m in real]
    assert set(got) <= {"pii", "not_pii"}
    assert len(real) > 4000  # phones, mailboxes, QQ numbers of the SMS/e-mail samples: not an empty set
    assert sum(g == "pii" for g in got) / len(got) >= 0.99
    default = [labels[lister.key(m)]["label"] for m in real if m["kind"] in DEFAULT_KINDS]
    assert sum(g == "pii" for g in default) / len(default) >= 0.99
    assert Counter(m["kind"] for m in real).keys() == set(KINDS)  # every kind is measured on real text


def test_look_alikes_in_the_shared_data_stay(shared_data):
    """Numbers shaped like PII that are not (so precision is not measured on zero candidates)."""
    n = lister.near_misses(shared_data)
    by = {k.split(" ")[0]: v for k, v in n.items()}
    assert by["18-char"] >= 2 and by["11-digit"] >= 150 and by["16-19-digit"] >= 20 and by["dotted"] >= 50
    assert by["colon"] >= 700 and by["dates"] >= 1300  # clock times, dates: untouched, all of them
    text = "\n".join(t for _, _, _, t in lister.documents(shared_data))
    assert by["dates"] == len(re.findall(lister.NEAR_MISSES[next(k for k in n if k.startswith("dates"))], text))


def test_recall_on_planted_items(shared_data):
    planted = rows(DATA / "planted.jsonl")
    assert maker.planted(shared_data) == planted, f"planted.jsonl is stale: run {DATA / 'make_planted.py'}"
    assert len(planted) >= 400 and Counter(p["kind"] for p in planted).keys() == set(KINDS)
    s = stage(kinds=list(KINDS))
    found = Counter()
    for p in planted:
        t = p["text"]
        found[p["kind"]] += s.redact(t)[0] == t[:p["start"]] + f"<|{p['kind']}|>" + t[p["end"]:]  # exact span
    assert sum(found.values()) / len(planted) >= 0.98, found
    assert all(found[k] >= 0.95 * 60 for k in KINDS), found


def _id(body17):
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8,
                                                                            4, 2))) % 11]


def test_checksum_and_luhn_failures_stay():
    assert id_card_ok("11010519491231002X") and not id_card_ok("110105194912310021")
    good, bad = "11010519491231002X", "110105194912310023"
    assert redact(f"身份证号{good}。") == "身份证号<|id_card|>。"
    assert redact(f"身份证号{bad}，") == f"身份证号{bad}，"  # check char fails: not an ID (and not a card)
    for body in ("11010520230231001", "99010519491231002", "11010518491231002"):  # 2023-02-31, region 99, 1849
        assert redact(f"编号{_id(body)}", kinds=["id_card"]) == f"编号{_id(body)}"
    card = "6222021234567890128"
    assert luhn_ok(card) and redact(f"卡号{card}") == "卡号<|bank_card|>"
    for wrong in ("6222021234567890127", "4367427200022860821", "6222 0212 3456 7891"):  # Luhn fails
        assert redact(f"卡号{wrong}") == f"卡号{wrong}"
    cert = "200501080607664" + maker.luhn_digit("200501080607664")
    assert luhn_ok(cert) and redact(f"证书编号{cert}") == f"证书编号{cert}"  # issuer digit 2: no card


def test_digit_runs_are_bounded():
    for t in ("订单12345678901234567890", "x13812345678", "13812345678a", "订单号138123456789", "w17-17751320319.19",
              "3.13812345678", "订单号：15916551398", "&id=18495650676", "16855694063", "6222 0212 3456 7890 1289 1111"):
        assert redact(t) == t, t
    assert redact("15773813331 15773813332") == "<|phone|> <|phone|>"  # a list of phones, not one grouped number
    assert redact("13800138000@139.com") == "<|email|>"  # one mailbox, not a phone plus a domain


def test_dates_prices_times_versions_stay():
    t = ("2008-08-08 开幕，20080808 发布，2008年8月8日晚，12:30:45 开始，16:00 收盘，比分3:2:1，售价￥12,999.00元，"
         "增长12.5%，股票代码600519，净值1.2345，Linux 2.6.32.1 内核，第3.3.2.1节，家长听写11.12.13.14课，"
         "Outlook Express 6.00.2900.2180，电话010-62345678，热线4008123456，图片icon@2x.png，Foo::Bar")
    assert redact(t, kinds=list(KINDS)) == t
    assert redact("服务器 2.6.32.1 宕机") == "服务器 <|ipv4|> 宕机"  # a valid dotted quad without a version word
    assert redact("IP 8.8.8.8；IPv6 ::1；2001:db8::8a2e:370:7334") == "IP <|ipv4|>；IPv6 <|ipv6|>；<|ipv6|>"


def test_qq_and_wechat_are_opt_in_and_keep_their_keyword():
    t = "客服QQ：12345678，微信号：zhang_san88，微信 WeChat，QQ空间"
    assert redact(t) == t
    assert redact(t, kinds=["qq", "wechat"]) == "客服QQ：<|qq|>，微信号：<|wechat|>，微信 WeChat，QQ空间"
    assert redact("微信：13812345678", kinds=list(KINDS)) == "微信：<|phone|>"


def test_placeholders_and_kinds_are_parameters():
    assert redact("手机13812345678，邮箱a@b.com", placeholders={"phone": "[电话]"}) == "手机[电话]，邮箱<|email|>"
    assert redact("手机13812345678，邮箱a@b.com", kinds=["email"]) == "手机13812345678，邮箱<|email|>"
    cls = lookup("pii")
    with pytest.raises(Exception):
        cls.Params(kinds=["passport"])
    with pytest.raises(Exception):
        cls.Params(mode="x")
    assert stage(kinds=["email"]).output_schema(pa.schema([("text", pa.string())])).names == [
        "text", "pii__replaced", "pii__email"]


def _sms(shared_data, n=None):
    return [r["text"] for r in rows(shared_data / "spam/sms_mudou_labelled.jsonl")[:n]]


def test_fix_counts_equal_placeholders_written(shared_data):
    s = stage(kinds=list(KINDS))
    texts = _sms(shared_data) + [None]
    out = s.map(pa.RecordBatch.from_pydict({"text": texts, "n": list(range(len(texts)))}))
    assert out.column("n").to_pylist() == list(range(len(texts))) and out.column("text")[-1].as_py() is None
    written = Counter(k for t in out.column("text").to_pylist() if t for k in re.findall(r"<\|(\w+)\|>", t))
    fixes = s.fix_counts(out)
    assert fixes == {k: written[k] for k in s.kinds} and sum(fixes.values()) > 1000
    assert sum(out.column("pii__replaced").to_pylist()) == sum(written.values())
    nulls = pa.RecordBatch.from_arrays([pa.nulls(2, pa.int64())] * len(s.kinds), names=[f"pii__{k}" for k in s.kinds])
    assert s.fix_counts(nulls) == dict.fromkeys(s.kinds, 0)  # other sources' rows in a scoped run


def test_deterministic_prefilter_exact_and_batch_split_free(shared_data):
    s = stage(kinds=list(KINDS))
    texts = [t for _, _, _, t in lister.documents(shared_data)][::3]
    one = s.map(pa.RecordBatch.from_pydict({"text": texts}))
    assert one.equals(s.map(pa.RecordBatch.from_pydict({"text": texts})))
    parts = [s.map(pa.RecordBatch.from_pydict({"text": texts[i:i + 97]})) for i in range(0, len(texts), 97)]
    assert pa.Table.from_batches(parts).combine_chunks().equals(pa.Table.from_batches([one]).combine_chunks())
    # the RE2 prefilter only skips rows: Python on every row gives the same text
    assert one.column("text").to_pylist() == [s.redact(t)[0] for t in texts]


def test_pipeline_puts_per_kind_counters_into_the_ledger(shared_data, tmp_path):
    src = write_jsonl(tmp_path / "sms.jsonl", _sms(shared_data, 2000))
    cfg = write_config(tmp_path, [src], [{"use": "pii"}])
    assert run(cfg) == 0
    out = tmp_path / "out"
    kept = table(out, "kept").column("text").to_pylist()
    written = Counter(k for t in kept for k in re.findall(r"<\|(\w+)\|>", t))
    st = next(s for s in manifest(out)["stages"] if s["name"] == "pii")
    assert st["fixes"] == dict(written) and written["phone"] > 100
    assert_audit_ok(out)


def test_scoped_run_leaves_other_sources_and_counts_only_its_own(shared_data, tmp_path):
    sms = write_jsonl(tmp_path / "sms.jsonl", _sms(shared_data, 500))
    cfg = tmp_path / "scoped.yaml"
    cfg.write_text(yaml.safe_dump({
        "run": {"name": "scoped", "output": str(tmp_path / "out")},
        "input": [{"format": "jsonl", "paths": [str(sms)], "source": s} for s in ("sms", "copy")],
        "stages": [{"use": "pii", "sources": ["sms"]}], "limits": {"max_quarantine_fraction": 1.0}}), encoding="utf-8")
    assert run(cfg) == 0
    out = tmp_path / "out"
    kept = table(out, "kept").select(["source", "text", "pii__replaced"]).to_pylist()
    copy = [d for d in kept if d["source"] == "copy"]
    assert sorted(d["text"] for d in copy) == sorted(_sms(shared_data, 500))
    assert all(d["pii__replaced"] is None for d in copy)
    mine = Counter(k for d in kept if d["source"] == "sms" for k in re.findall(r"<\|(\w+)\|>", d["text"]))
    assert next(s for s in manifest(out)["stages"] if s["name"] == "pii")["fixes"] == dict(mine) and mine
    assert_audit_ok(out)

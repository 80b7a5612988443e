"""Rebuilds the default word lists in rules/sensitive/ and rules/ads/ from the MIT-licensed konsheng
lexicon in ../shared/data/lexicon. Run: .venv/bin/python tools/build_rule_lists.py [SHARED_DATA_DIR]

What it does (the same text goes into each generated file's header):
  * strips lines, drops blank lines, URLs/domains and exact duplicates;
  * drops terms whose matching skeleton (lower-case, no spaces/symbols) is shorter than 2 characters,
    and pure-ASCII terms shorter than 3 letters (SM, BT, JS: too ambiguous inside English text);
  * drops a term already listed in an earlier category (categories are checked in the order below);
  * leaves out the terms listed in EXCLUDE below (generic words reviewed by hand; see docs/rules.md).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from corpusforge.stages.rulepack import skeleton_one  # noqa: E402

VOCAB = "lexicon/konsheng_Sensitive-lexicon/Vocabulary"
SOURCE = "https://github.com/konsheng/Sensitive-lexicon @ 5a8da94c61c1, Vocabulary/{name} (copy in ../shared/data/{vocab})"
SENSITIVE = [("political", "政治类型.txt"), ("porn", "色情类型.txt"), ("violence", "暴恐词库.txt"), ("weapons", "涉枪涉爆.txt")]

# Ad list only: the source mixes ad phrases with generic words (网络, 客服), porn terms and names of
# officials; only solicitation phrases are kept. Sensitive-list exceptions live in allowlist.txt.
EXCLUDE = {
    "political": set(), "porn": set(), "violence": set(), "weapons": set(),  # reviewed exceptions: rules/sensitive/allowlist.txt
    "ads": {
        "兼职", "网络", "QQ", "招聘", "有意者", "到货", "本店", "客服", "微店", "淘宝", "小姐", "全职", "网购",
        "代理", "专业代理", "网络工作", "免费使用", "下载速度", "视频来源", "高清在线", "在线播放",
        "救市", "崩盘", "资金短缺", "证监会", "周小川", "刘明康", "尚福林", "孔丹", "股市圈钱", "资金周转",
        "中国复兴党", "阿波罗网", "四海帮", "用刀横向切腹", "完全自杀手册", "SM", "桑拿", "技师", "全套",
        "咪咪", "婊子", "妓女", "包夜", "狼友", "推油", "胸推", "毒龙", "口爆", "楼凤", "足交", "口暴", "口交",
        "吞精", "乳方", "操逼", "性伴侣", "3P", "LY", "JS", "BT", "兼值",
    },
}
_URL = re.compile(r"(https?://|www\.|\.(com|net|org|cn|info|tk|cc)\b)", re.I)


def clean_terms(lines: list[str], exclude: set[str], seen: set[str]) -> list[str]:
    out = []
    for raw in lines:
        t = raw.strip()
        if not t or t.startswith("#") or _URL.search(t) or t in exclude:
            continue
        sk = skeleton_one(t)
        if len(sk) < 2 or (sk.isascii() and len(sk) < 3) or sk in seen:
            continue
        seen.add(sk)
        out.append(t)
    return out


def header(kind: str, name: str, extra: str) -> str:
    return (f"# {kind}\n# source: {SOURCE.format(name=name, vocab=VOCAB)}\n# licence: MIT (konsheng/Sensitive-lexicon; LICENSE copied in ../shared/data/{VOCAB}/LICENSE)\n"
            f"# how it was built: tools/build_rule_lists.py (strip, dedupe, drop URLs, 1-character and <3-letter ASCII terms,\n"
            f"#   terms of earlier categories, and the hand-reviewed generic words in its EXCLUDE table). {extra}\n"
            "# Do not edit by hand: change the builder and rerun it, or add to allowlist.txt.\n")


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    vocab = shared / VOCAB
    seen: set[str] = set()
    total = 0
    for cat, fname in SENSITIVE:
        terms = clean_terms((vocab / fname).read_text(encoding="utf-8").splitlines(), EXCLUDE[cat], seen)
        total += len(terms)
        (REPO / "rules/sensitive" / f"{cat}.txt").write_text(
            header(f"Sensitive words, category `{cat}` ({len(terms)} terms).", fname, "Matched by the sensitive_words stage.") + "\n".join(terms) + "\n",
            encoding="utf-8")
        print(cat, len(terms))
    print("sensitive total", total)
    ads = clean_terms((vocab / "广告类型.txt").read_text(encoding="utf-8").splitlines(), EXCLUDE["ads"], set())
    (REPO / "rules/ads/ad_keywords.txt").write_text(
        header(f"Ad keywords ({len(ads)} terms), counted by pangu_rules `ads`.", "广告类型.txt",
               "\n#   The source list mixes ad phrases with porn terms and names of officials; only the ad/solicitation\n#   phrases are kept here (the porn terms are in rules/sensitive/porn.txt).") + "\n".join(ads) + "\n",
        encoding="utf-8")
    print("ads", len(ads))


if __name__ == "__main__":
    main()

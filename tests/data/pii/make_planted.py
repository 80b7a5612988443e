"""Writes planted.jsonl: PII items in their usual written forms, each put into a real sentence of the
shared news data, with the kind and the span (start, end) the stage should replace. Deterministic
(random.Random(2026)); tests/unit/test_pii.py checks that this script still writes the committed file.
Run: .venv/bin/python tests/data/pii/make_planted.py [shared data dir]"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "planted.jsonl"
PER_KIND = 60
NEWS = "diverse/news_thucnews_sina.jsonl"

_SEGMENTS = [*range(130, 140), *range(145, 150), 150, 151, 152, 153, 155, 156, 157, 158, 159, 166, 170, 171, 172,
             173, 175, 176, 177, 178, *range(180, 190), 191, 193, 195, 198, 199]
_REGIONS = ["110105", "110108", "120101", "130102", "140105", "150102", "210102", "220102", "230102", "310104",
            "310115", "320102", "330106", "340104", "350203", "360102", "370202", "410105", "420111", "430104",
            "440106", "440305", "450103", "460105", "500103", "510107", "520102", "530102", "610113", "650102"]
_ISSUERS = [("622202", 19), ("622848", 19), ("621700", 19), ("622262", 19), ("601382", 19), ("622150", 19),
            ("955880", 19), ("622588", 16), ("621483", 16), ("436742", 16), ("518710", 16), ("625965", 16)]
_NAMES = ["zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu",
          "hu", "guo", "he", "lin", "luo", "gao", "xiaoming", "lili", "tingting", "jun", "wei", "fang", "hao"]
_DOMAINS = ["163.com", "126.com", "qq.com", "sina.com", "sina.com.cn", "sohu.com", "gmail.com", "foxmail.com",
            "yahoo.com.cn", "hotmail.com", "outlook.com", "139.com", "abc-tech.com.cn", "pku.edu.cn",
            "mails.tsinghua.edu.cn", "vip.163.com"]

# kind → written forms; {} is the value, the text around it stays
FORMS = {
    "phone": ["手机：{}", "电话{}", "联系电话：{}", "手机号码{}", "Tel: {}", "致电{}", "咨询热线：{}", "拨打{}", "{}（微信同号）",
              "手机:{}"],
    "id_card": ["身份证号{}", "身份证号码：{}", "身份证：{}", "公民身份号码{}", "证件号 {}", "身份证号为{}"],
    "email": ["邮箱 {}", "邮箱：{}", "E-mail: {}", "请将简历发送至{}", "联系邮箱{}", "（{}）", "email:{}", "mailto:{}",
              "<{}>"],
    "bank_card": ["卡号 {}", "银行卡号：{}", "账号{}", "转账至{}", "工商银行卡号{}", "收款卡号：{}"],
    "ipv4": ["IP {}", "IP地址：{}", "服务器地址为{}", "登录IP {}", "http://{}/index.html", "来自{}的访问",
             "{}:8080", "IP为{}"],
    "ipv6": ["IPv6 地址 {}", "IPv6：{}", "地址为{}", "主机 {} 上", "[{}]:443"],
    "qq": ["QQ：{}", "QQ {}", "qq:{}", "QQ群：{}", "扣扣{}", "QQ号{}", "Q号：{}"],
    "wechat": ["微信：{}", "微信号：{}", "微信 {}", "加微信{}", "vx: {}", "wx：{}", "WeChat: {}", "V信{}"],
}


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        v = int(c) * (1 if i % 2 else 2)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def phone(rng: random.Random) -> str:
    n = str(rng.choice(_SEGMENTS)) + _digits(rng, 8)
    a, b, c = n[:3], n[3:7], n[7:]
    return rng.choice([n, n, f"{a} {b} {c}", f"{a}-{b}-{c}", f"+86 {n}", f"+86-{a}-{b}-{c}", f"+86 {a} {b} {c}",
                       f"86{n}", f"0086 {n}", f"(+86){n}", f"+86{n}"])


def id_card(rng: random.Random) -> str:
    import datetime

    day = datetime.date(1940, 1, 1) + datetime.timedelta(days=rng.randrange(26_000))
    body = rng.choice(_REGIONS) + day.strftime("%Y%m%d") + _digits(rng, 3)
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * k for c, k in zip(body, w)) % 11]
    return body + (check.lower() if check == "X" and rng.random() < 0.3 else check)


def email(rng: random.Random) -> str:
    a, b = rng.choice(_NAMES), rng.choice(_NAMES)
    local = rng.choice([a, f"{a}.{b}", f"{a}_{rng.randint(1, 99)}", f"{a}{b}{rng.randint(1960, 2010)}",
                        str(rng.randint(10_000, 9_999_999_999)), f"{a}-{b}", a.capitalize() + b, f"{a}+news"])
    addr = f"{local}@{rng.choice(_DOMAINS)}"
    return addr.upper() if rng.random() < 0.1 else addr


def bank_card(rng: random.Random) -> str:
    iin, n = rng.choice(_ISSUERS)
    body = iin + _digits(rng, n - len(iin) - 1)
    num = body + luhn_digit(body)
    sep = rng.choice(["", "", " ", "-"])
    return sep.join(num[i:i + 4] for i in range(0, n, 4)) if sep else num


def ipv4(rng: random.Random) -> str:
    while True:
        parts = [rng.randint(1, 223)] + [rng.randint(0, 255) for _ in range(3)]
        if max(parts) >= 10:
            return ".".join(map(str, parts))


def ipv6(rng: random.Random) -> str:
    import ipaddress

    groups = [rng.randrange(0x10000) for _ in range(8)]
    style = rng.randrange(5)
    if style == 0:  # documentation prefix, compressed
        groups[:4] = [0x2001, 0x0DB8, 0, 0]
    elif style == 1:  # link-local
        groups[:4] = [0xFE80, 0, 0, 0]
    elif style == 2:  # IPv4-mapped
        return f"::ffff:{ipv4(rng)}"
    addr = ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))
    text = addr.exploded if style == 3 else addr.compressed
    return text.upper() if rng.random() < 0.3 else text


def qq(rng: random.Random) -> str:
    return str(rng.randint(10_000, 3_999_999_999))


def wechat(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return str(rng.randint(100_000, 999_999_999))
    a = rng.choice(_NAMES)
    return rng.choice([f"{a}{rng.randint(1970, 2005)}", f"{a}_{rng.choice(_NAMES)}", f"wxid_{a}{rng.randint(100, 999)}x",
                       f"{a.capitalize()}-{rng.randint(10, 99)}abc"])


GENERATORS = {"phone": phone, "id_card": id_card, "email": email, "bank_card": bank_card, "ipv4": ipv4,
              "ipv6": ipv6, "qq": qq, "wechat": wechat}


def sentences(shared: Path) -> list[str]:
    """Clauses of real news (12-60 characters, no ASCII letter or digit, nothing the stage replaces)."""
    out = []
    with open(shared / NEWS, encoding="utf-8") as f:
        for line in f:
            for s in json.loads(line)["text"].split("。"):
                s = s.strip()
                if 12 <= len(s) <= 60 and "，" in s and not re.search(r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ@:：\s]", s):
                    out.append(s + "。")
    return out


def planted(shared: Path) -> list[dict]:
    rng = random.Random(2026)
    pool = sentences(shared)
    rows = []
    for kind, gen in GENERATORS.items():
        for n in range(PER_KIND):
            value, form = gen(rng), rng.choice(FORMS[kind])
            s = rng.choice(pool)
            commas = [i for i, c in enumerate(s) if c == "，"]
            cut = rng.choice(commas) + 1  # after a comma: "前半句，<item>，后半句。"
            before = s[:cut] + form[:form.index("{}")]
            text = before + value + form[form.index("{}") + 2:] + "，" + s[cut:]
            rows.append({"n": len(rows), "kind": kind, "value": value, "form": form, "text": text,
                         "start": len(before), "end": len(before) + len(value)})
    return rows


def main(shared: Path) -> None:
    rows = planted(shared)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} planted items → {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2].parent / "shared" / "data")

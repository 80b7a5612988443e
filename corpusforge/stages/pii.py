"""[pii] Replaces personal data with typed placeholders: mainland mobile numbers, ID-card numbers
(checksum), e-mail addresses, bank-card numbers (Luhn), IPv4/IPv6 and, when asked for, QQ numbers and
WeChat ids after their keyword. An Arrow RE2 prefilter (a superset of every pattern) picks the rows;
Python `re` with a validation callback per kind finds the spans in those rows only."""

from __future__ import annotations

import datetime
import ipaddress
import re
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusforge.schema import score_column
from corpusforge.stage import MapStage, Params, register

Kind = Literal["email", "ipv6", "ipv4", "id_card", "bank_card", "phone", "qq", "wechat"]
# Priority order: an earlier kind's span wins an overlap (13800138000@139.com is an e-mail, an ID
# number that also passes Luhn is an ID, 微信：13800138000 is a phone).
KINDS: tuple[str, ...] = ("email", "ipv6", "ipv4", "id_card", "bank_card", "phone", "qq", "wechat")
DEFAULT_KINDS = ["phone", "id_card", "email", "bank_card", "ipv4", "ipv6"]
DEFAULT_PLACEHOLDERS = {k: f"<|{k}|>" for k in KINDS}

_NB = r"(?<![0-9A-Za-z])"  # no digit or ASCII letter right before: digit runs are bounded
_NA = r"(?![0-9A-Za-z])"  # ... or right after
_GB = r"(?<![0-9A-Za-z])(?<![0-9][- ])"  # a grouped number is not the tail ...
_GA = r"(?![0-9A-Za-z])(?![- ][0-9])"  # ... or the head of a longer grouped one
_CC = r"(?:\(?(?:\+|00)?86\)?[- ]?)?"  # +86 / 0086 / (86) country code
_PATTERNS = {
    # local@domain.tld; a TLD that is a file suffix ("icon@2x.png") is rejected below
    "email": r"(?<![0-9A-Za-z._%+])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
             r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![A-Za-z0-9-])",
    # hex groups and colons (optionally an IPv4 tail); ipaddress decides, clock times have no '::'
    "ipv6": r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})"
            r"(?![0-9A-Za-z:]|\.[0-9])",
    "ipv4": r"(?<![0-9A-Za-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z]|\.[0-9])",
    "id_card": _NB + r"[1-9][0-9]{16}[0-9Xx]" + _NA,
    # 16-19 digits, contiguous or in 4-digit groups split by one '-' or ' ' (the last group 1-4 digits);
    # issuer digit 3-6 or 9 (UnionPay 62, Visa 4, Mastercard 5, JCB 35, old domestic 9xxx)
    "bank_card": _NB + r"[3-69][0-9]{15,18}" + _NA + "|" + _GB + r"[3-69][0-9]{3}([- ])[0-9]{4}\1[0-9]{4}\1[0-9]{4}"
                 r"(?:\1[0-9]{1,3})?" + _GA,
    # 1[3-9]x xxxx xxxx, contiguous (a list "138… 139…" is two phones) or 3-4-4 with one separator; not
    # a part of a dotted code or a decimal ("w17-17751320319.19")
    "phone": r"(?<![0-9A-Za-z+])(?<![0-9]\.)" + _CC + r"(1[3-9][0-9])[0-9]{8}" + _NA + r"(?!\.[0-9])|"
             + r"(?<![0-9A-Za-z+])(?<![0-9][- ])" + _CC + r"(1[3-9][0-9])([- ])[0-9]{4}\3[0-9]{4}" + _GA,
    # keyword, then the id (group 2, the only part replaced)
    "qq": r"((?<![A-Za-z])(?:QQ|qq|Qq|扣扣|企鹅|Q号)(?:群号|群|号码|号)?\s*[:：]?\s*)([1-9][0-9]{4,11})" + _NA,
    "wechat": r"((?:微信|威信|薇信|V信|v信|(?<![A-Za-z0-9])(?:weixin|WeiXin|WeChat|wechat|WECHAT|wx|WX|vx|VX|Vx))"
              r"(?:号码|号|账号|帐号|ID|id)?(?:\s*[:：]\s*|\s+|(?<=[号信])))"
              r"([A-Za-z][-_A-Za-z0-9]{5,19}|[1-9][0-9]{4,10})" + _NA,
}
# RE2 supersets of the patterns above (no lookarounds there): only rows matching one reach Python.
_PREFILTER = {
    "email": r"[A-Za-z0-9._%+-]@[A-Za-z0-9]",
    "ipv6": r"::|(?:[0-9A-Fa-f]{1,4}:){7}",
    "ipv4": r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
    "id_card": r"[0-9]{17}[0-9Xx]",
    "bank_card": r"[0-9]{16}|[0-9]{4}[- ][0-9]{4}[- ][0-9]{4}[- ][0-9]{4}",
    "phone": r"1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4}",
    "qq": r"QQ|qq|Qq|扣扣|企鹅|Q号",
    "wechat": r"微信|威信|薇信|weixin|WeiXin|WeChat|wechat|WECHAT|wx|WX|vx|VX|Vx|V信|v信",
}
_FILE_SUFFIXES = frozenset("png jpg jpeg gif svg webp bmp ico css js htm html php asp aspx jsp".split())
_WECHAT_WORDS = frozenset({"weixin", "wechat"})
# First two digits of a resident ID (GB/T 2260 provinces; 71 Taiwan, 81/82 HK/Macau, 83 Taiwan
# residence permits, 91 foreigners' permanent residence).
_REGIONS = frozenset([*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55),
                      *range(61, 66), 71, 81, 82, 83, 91])
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_MAX_BIRTH_YEAR = 2030  # a constant, not today's date: the stage stays deterministic


def id_card_ok(s: str, check: bool = True) -> bool:
    """18-digit resident ID: known region, a real birth date 1900..2030, ISO 7064 MOD 11-2 check char."""
    if len(s) != 18 or int(s[:2]) not in _REGIONS:
        return False
    y, m, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    if not 1900 <= y <= _MAX_BIRTH_YEAR:
        return False
    try:
        datetime.date(y, m, d)
    except ValueError:
        return False
    return not check or "10X98765432"[sum(int(c) * w for c, w in zip(s, _ID_WEIGHTS)) % 11] == s[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        v = int(c) * (2 if i % 2 else 1)
        total += v - 9 if v > 9 else v
    return total % 10 == 0


# a message id, or the user part of a URL ("ftp://u:u@host", "http://a.com:80@b.com/"), is no mailbox
_NOT_EMAIL_BEFORE = re.compile(r"(?i:message-id|in-reply-to|references):\s*<$|://[^\s/@.]*:?$")


def _email(m: re.Match) -> bool:
    if m.group(1).lower() in _FILE_SUFFIXES or m.string.startswith("/", m.end()):
        return False
    return not _NOT_EMAIL_BEFORE.search(m.string[max(0, m.start() - 60):m.start()])


def _ipv6(m: re.Match) -> bool:
    s = m.group(0)
    if "::" not in s and s.count(":") != 7:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return any(g.strip("0") for g in re.split(r"[:.]", s))  # "::" / "0::0" carry no address


_VERSION_BEFORE = re.compile(r"(?:(?i:version|ver\.?|kernel|linux|build|firmware|release)|版本号?|内核|固件)\s*[:：]?\s*$")


def _ipv4(m: re.Match) -> bool:
    s = m.group(0)
    try:
        ipaddress.IPv4Address(s)  # octets <= 255, no leading zeros
    except ValueError:
        return False
    if _VERSION_BEFORE.search(m.string[max(0, m.start() - 12):m.start()]):  # "Linux 2.6.32.1", "版本 1.0.0.12"
        return False
    parts = [int(p) for p in s.split(".")]
    if all(b == a + 1 for a, b in zip(parts, parts[1:])):  # "11.12.13.14": an enumeration (lessons 11-14)
        return False
    # "3.3.2.1" is a section number far more often than an address; such addresses need an IP word
    if all(len(p) == 1 for p in s.split(".")):
        return bool(re.search(r"(?i:ip|dns)|地址|网关|服务器|//", m.string[max(0, m.start() - 8):m.start()]))
    return True


def _id_card(m: re.Match) -> bool:
    return id_card_ok(m.group(0))


def _bank_card(m: re.Match) -> bool:
    digits = re.sub("[- ]", "", m.group(0))
    # an 18-digit number shaped like an ID (region, date) whose check char fails is a mistyped ID, not a card
    return 16 <= len(digits) <= 19 and luhn_ok(digits) and not (len(digits) == 18 and id_card_ok(digits, check=False))


# Segments in use (MIIT numbering plan: 13x, 145-149, 150-153/155-159, 162/165-167, 170-178, 18x,
# 190-193/195-199); "168…", "194…" are ids, not phones.
_MOBILE_SEGMENTS = frozenset([*range(130, 140), *range(145, 150), *range(150, 154), *range(155, 160), 162, 165, 166,
                              167, *range(170, 179), *range(180, 190), *range(190, 194), *range(195, 200)])
# an 11-digit value right after these is a record's id, not a phone ("订单号：15916551398", "&id=18495650676")
_NOT_PHONE_BEFORE = re.compile(r"(?:订单号?|单号|编号|流水号|序列号|(?i:id)=)\s*[:：]?\s*$")


def _phone(m: re.Match) -> bool:
    if int(m.group(1) or m.group(2)) not in _MOBILE_SEGMENTS:
        return False
    return not _NOT_PHONE_BEFORE.search(m.string[max(0, m.start() - 8):m.start()])


def _wechat(m: re.Match) -> bool:
    return m.group(2).lower() not in _WECHAT_WORDS


_CHECKS = {"email": _email, "ipv6": _ipv6, "ipv4": _ipv4, "id_card": _id_card, "bank_card": _bank_card,
           "phone": _phone, "qq": lambda m: True, "wechat": _wechat}
_COMPILED = {k: re.compile(p) for k, p in _PATTERNS.items()}
_KEEPS_KEYWORD = {"qq", "wechat"}  # only group 2 (the id) is replaced


def find_spans(text: str, kinds=KINDS) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every replacement in text, sorted, non-overlapping; kinds in KINDS order."""
    taken: list[tuple[int, int, str]] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        for m in _COMPILED[kind].finditer(text):
            if not _CHECKS[kind](m):
                continue
            s, e = m.span(2) if kind in _KEEPS_KEYWORD else m.span()
            if all(e <= a or s >= b for a, b, _ in taken):
                taken.append((s, e, kind))
    return sorted(taken)


@register
class Pii(MapStage):
    """Replaces personal data with placeholders; one counter column per kind and their total."""

    name = "pii"

    class Params(Params):
        kinds: list[Kind] = DEFAULT_KINDS  # add "qq", "wechat" to replace ids after their keywords
        placeholders: dict[Kind, str] = {}  # kind → replacement text; unset kinds get "<|kind|>"

    def setup(self) -> None:
        self._kinds = self.kinds
        self._ph = {**DEFAULT_PLACEHOLDERS, **self.params.placeholders}
        self._prefilter = "|".join(f"(?:{_PREFILTER[k]})" for k in self._kinds)

    @property
    def kinds(self) -> list[str]:
        return [k for k in KINDS if k in self.params.kinds]

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        for c in ["replaced", *self.kinds]:
            schema = schema.append(pa.field(score_column(self.name, c), pa.int64()))
        return schema

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        spans = find_spans(text, self._kinds)
        out, pos, counts = [], 0, dict.fromkeys(self._kinds, 0)
        for s, e, kind in spans:
            out += [text[pos:s], self._ph[kind]]
            pos = e
            counts[kind] += 1
        out.append(text[pos:])
        return "".join(out), counts

    def map(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text")
        n = len(texts)
        counts = {k: np.zeros(n, np.int64) for k in self._kinds}
        if self._kinds:
            hit = pc.fill_null(pc.match_substring_regex(texts, self._prefilter), False).to_numpy(zero_copy_only=False)
        else:
            hit = np.zeros(n, bool)
        if hit.any():
            vals = texts.to_pylist()
            changed = False
            for i in np.flatnonzero(hit):
                new, c = self.redact(vals[i])
                if any(c.values()):  # counted even where a placeholder equals what it replaced
                    vals[i], changed = new, True
                    for k, v in c.items():
                        counts[k][i] = v
            if changed:
                texts = pa.array(vals, texts.type)
        total = sum(counts.values(), np.zeros(n, np.int64))
        arrays = [texts if f == "text" else batch.column(f) for f in batch.schema.names]
        arrays += [pa.array(total, pa.int64())] + [pa.array(counts[k], pa.int64()) for k in self._kinds]
        return pa.RecordBatch.from_arrays(arrays, schema=self.output_schema(batch.schema))

    def fix_counts(self, batch: pa.RecordBatch) -> dict[str, int]:
        # nulls (rows of other sources in a scoped run) count as 0
        return {k: int(pc.sum(batch.column(score_column(self.name, k))).as_py() or 0) for k in self.kinds}

"""Inline SVG charts generated in Python: the report needs no script, no CDN and no bundled JS
library, and the strict CSP (no script at all) holds. Every label goes through html.escape."""

from __future__ import annotations

import html
import math

PALETTE = ["#3b6fb6", "#d9534f", "#5cb85c", "#f0ad4e", "#8e6bbf", "#3fb3b3", "#a0522d", "#777777"]
KEPT, DROPPED = "#3b6fb6", "#d9534f"


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def hbars(labels: list[str], series: dict[str, list[float]], title: str, width: int = 720) -> str:
    """Grouped horizontal bars: one row per label, one bar per series."""
    rowh, barh, left = 8 + 14 * len(series), 12, 230
    h = 40 + rowh * len(labels) + 20 * math.ceil(len(series) / 4)
    vmax = max([v for vs in series.values() for v in vs] + [1])
    sc = (width - left - 70) / vmax
    out = [f'<svg class="chart" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {h}" width="{width}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="4" y="16" font-weight="bold">{_e(title)}</text>']
    for i, lab in enumerate(labels):
        y = 30 + i * rowh
        out.append(f'<text x="{left - 6}" y="{y + rowh / 2 + 4}" text-anchor="end" font-size="12">{_e(lab)[:60]}</text>')
        for j, (_name, vals) in enumerate(series.items()):
            v = vals[i]
            out.append(f'<rect x="{left}" y="{y + 4 + j * 14}" width="{max(v * sc, 0.5):.1f}" height="{barh}" fill="{PALETTE[j % 8]}"><title>{_e(lab)}: {_e(v)}</title></rect>'
                       f'<text x="{left + v * sc + 4:.1f}" y="{y + 14 + j * 14}" font-size="11">{_e(_fmt(v))}</text>')
    out += _legend(list(series), 30 + rowh * len(labels) + 4)
    out.append("</svg>")
    return "".join(out)


def _legend(names: list[str], y: float, colors: list[str] | None = None) -> list[str]:
    out = []
    for j, n in enumerate(names):
        x, yy = 10 + (j % 4) * 170, y + 16 * (j // 4)
        out.append(f'<rect x="{x}" y="{yy}" width="10" height="10" fill="{(colors or PALETTE)[j % 8]}"/>'
                   f'<text x="{x + 14}" y="{yy + 9}" font-size="11">{_e(n)[:26]}</text>')
    return out


def histogram(h: dict, title: str, thresholds: list[tuple[float, str]] = (), width: int = 460, height: int = 200) -> str:
    """Kept and dropped counts over the same bins (dropped drawn on top, translucent), thresholds as
    dashed lines. `h` is data._Hist.result(); log1p bins are drawn on a log axis."""
    edges, kept, dropped = h["edges"], h["kept"], h["dropped"]
    log = h["scale"] == "log1p"
    tr = (lambda v: math.log10(1 + max(v, 0))) if log else (lambda v: v)  # noqa: E731
    # the axis also spans the thresholds, so a threshold beyond every value is drawn where it is
    x0 = min([tr(edges[0])] + [tr(v) for v, _ in thresholds])
    x1 = max([tr(edges[-1])] + [tr(v) * 1.02 for v, _ in thresholds])
    left, right, top, bottom = 46, 10, 22, 38
    pw, ph = width - left - right, height - top - bottom
    sx = (lambda v: left + (tr(v) - x0) / ((x1 - x0) or 1) * pw)  # noqa: E731
    vmax = max(kept + dropped + [1])
    sy = (lambda c: top + ph - c / vmax * ph)  # noqa: E731
    out = [f'<svg class="chart hist" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="4" y="14" font-weight="bold" font-size="12">{_e(title)}</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>']
    for series, color, op in ((kept, KEPT, 0.8), (dropped, DROPPED, 0.6)):
        for i, c in enumerate(series):
            if c:
                xa, xb = sx(edges[i]), sx(edges[i + 1])
                out.append(f'<rect x="{xa:.1f}" y="{sy(c):.1f}" width="{max(xb - xa - 0.5, 0.5):.1f}" height="{top + ph - sy(c):.1f}" fill="{color}" fill-opacity="{op}">'
                           f'<title>[{_e(_fmt(edges[i]))}, {_e(_fmt(edges[i + 1]))}): {c}</title></rect>')
    for t in (_ticks(x0, x1) if not log else [tr(v) for v in _log_ticks(10 ** x0 - 1, 10 ** x1 - 1)]):
        v = (10 ** t - 1) if log else t
        x = left + (t - x0) / ((x1 - x0) or 1) * pw
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{_e(_fmt(v))}</text>')
    out.append(f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{_e(_fmt(vmax))}</text>')
    for k, (v, label) in enumerate(thresholds):
        x = sx(v)
        right_half = x > left + 0.55 * pw
        out.append(f'<line class="threshold" data-value="{_e(v)}" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#000" stroke-dasharray="4 3"/>'
                   f'<text x="{x - 3 if right_half else x + 3:.1f}" y="{top + 10 + 11 * k}" font-size="10" text-anchor="{"end" if right_half else "start"}">'
                   f'{_e(label)} = {_e(_fmt(v))}</text>')
    out += _legend(["kept by the stage", "dropped by the stage"], height - 14, [KEPT, DROPPED])
    out.append("</svg>")
    return "".join(out)


def _log_ticks(lo: float, hi: float) -> list[float]:
    out, v = [0.0] if lo <= 0 else [], 1.0
    while v <= hi:
        if v >= lo:
            out.append(v)
        v *= 10
    return out


def lines(series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str,
          width: int = 720, height: int = 260, logy: bool = False) -> str:
    pts = [p for s in series.values() for p in s if p[1] is not None and math.isfinite(p[1])]
    if not pts:
        return ""
    ty = (lambda v: math.log10(v)) if logy else (lambda v: v)  # noqa: E731
    xs, ys = [p[0] for p in pts], [ty(p[1]) for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    left, right, top, bottom = 56, 14, 24, 40 + 16 * math.ceil(len(series) / 4)
    pw, ph = width - left - right, height - top - bottom
    sx = (lambda v: left + (v - x0) / (x1 - x0) * pw)  # noqa: E731
    sy = (lambda v: top + ph - (ty(v) - y0) / (y1 - y0) * ph)  # noqa: E731
    out = [f'<svg class="chart lines" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="4" y="14" font-weight="bold" font-size="12">{_e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
           f'<text x="{left + pw / 2}" y="{top + ph + 28}" font-size="11" text-anchor="middle">{_e(xlabel)}</text>',
           f'<text x="12" y="{top + ph / 2}" font-size="11" transform="rotate(-90 12 {top + ph / 2})" text-anchor="middle">{_e(ylabel)}</text>']
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 13}" font-size="10" text-anchor="middle">{_e(_fmt(t))}</text>')
    for t in _ticks(y0, y1, 4):
        v = 10 ** t if logy else t
        out.append(f'<text x="{left - 4}" y="{top + ph - (t - y0) / (y1 - y0) * ph + 3:.1f}" font-size="10" text-anchor="end">{_e(_fmt(v))}</text>')
    for j, (name, s) in enumerate(series.items()):
        p = [(x, y) for x, y in s if y is not None and math.isfinite(y) and (y > 0 or not logy)]
        if p:
            out.append(f'<polyline fill="none" stroke="{PALETTE[j % 8]}" stroke-width="1.6" points="'
                       + " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in p) + f'"><title>{_e(name)}</title></polyline>')
            if len(p) < 40:
                out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{PALETTE[j % 8]}"><title>{_e(name)} step {_e(x)}: {_e(_fmt(y))}</title></circle>' for x, y in p]
    out += _legend(list(series), top + ph + 36)
    out.append("</svg>")
    return "".join(out)


def intervals(rows: list[tuple[str, float, float, list[float]]], title: str, ref: float | None = None, width: int = 720) -> str:
    """One row per label: a dot at the mean, a bar over mean ± std, small marks at each value (the seeds),
    and a dashed line at `ref` (the reference variant's mean): a PPL table a reader can see at a glance."""
    rowh, left, right = 24, 230, 60
    h = 52 + rowh * len(rows)
    vals = [v for _, m, s, xs in rows for v in (m - s, m + s, *xs)] + ([ref] if ref is not None else [])
    lo, hi = min(vals), max(vals)
    lo, hi = (lo - 1, hi + 1) if hi <= lo else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    sx = (lambda v: left + (v - lo) / (hi - lo) * (width - left - right))  # noqa: E731
    out = [f'<svg class="chart intervals" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {h}" width="{width}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="4" y="16" font-weight="bold">{_e(title)}</text>']
    for t in _ticks(lo, hi):
        out.append(f'<text x="{sx(t):.1f}" y="{h - 6}" font-size="10" text-anchor="middle">{_e(_fmt(t))}</text>')
    if ref is not None:
        out.append(f'<line class="ref" x1="{sx(ref):.1f}" y1="26" x2="{sx(ref):.1f}" y2="{h - 20}" stroke="#000" stroke-dasharray="4 3"/>')
    for i, (lab, m, s, xs) in enumerate(rows):
        y = 34 + i * rowh
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="12">{_e(lab)[:40]}</text>'
                   f'<line x1="{sx(m - s):.1f}" y1="{y}" x2="{sx(m + s):.1f}" y2="{y}" stroke="{PALETTE[0]}" stroke-width="3"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{y}" r="2" fill="{PALETTE[1]}"><title>{_e(lab)}: {_e(_fmt(x))}</title></circle>' for x in xs]
        out.append(f'<circle class="mean" cx="{sx(m):.1f}" cy="{y}" r="4.5" fill="{PALETTE[0]}"><title>{_e(lab)}: {_e(_fmt(m))} ± {_e(_fmt(s))}</title></circle>'
                   f'<text x="{sx(m + s) + 6:.1f}" y="{y + 4}" font-size="11">{_e(_fmt(m))}</text>')
    out.append("</svg>")
    return "".join(out)

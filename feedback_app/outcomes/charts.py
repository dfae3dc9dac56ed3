"""Charts drawn on the server as SVG: no JavaScript, no external files, allowed by the CSP.

Each chart is ``role="img"`` named by its ``<title>`` and described by its ``<desc>`` (what it
shows, the largest value, the total); the table printed beside it holds every number and is the
accessible source. Colours are presentation attributes, not ``style``: the CSP forbids inline
styles. The drawing scales down with the page (``svg { max-width: 100%; height: auto }``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

INK = "#1a1a1a"
MUTED = "#4d4d4d"
BAR = "#a4000f"  # the site's red, 8.6:1 on white
GRID = "#cfcfcf"
FONT = 14
FONT_FAMILY = "PingFang SC, Hiragino Sans GB, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"


@dataclass(frozen=True)
class Datum:
    label: str
    value: float


def _data(data) -> list[Datum]:
    out = []
    for d in data:
        if isinstance(d, Datum):
            out.append(d)
        elif hasattr(d, "label") and hasattr(d, "value"):
            out.append(Datum(str(d.label), float(d.value)))
        else:
            label, value = d
            out.append(Datum(str(label), float(value)))
    return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def describe(data: list[Datum], unit: str) -> str:
    """The chart's <desc>: how many bars, the largest, the total; the table has the rest."""
    if not data:
        return "没有数据。"
    total = sum(d.value for d in data)
    if total == 0:
        return f"共{len(data)}项，均为 0{unit}。详细数字见图旁表格。"
    top = max(data, key=lambda d: d.value)
    return (f"共{len(data)}项，合计 {_number(total)}{unit}；最多的是“{top.label}”，{_number(top.value)}{unit}。"
            "详细数字见图旁表格。")


def _nice_max(value: float) -> float:
    """The axis maximum: the value rounded up to 1, 2, 4 or 8 times a power of ten."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 4, 8, 10):
        if value <= m * magnitude:
            return m * magnitude
    return value


def _text_width(text: str) -> float:
    return sum(FONT if ord(ch) > 0x2E80 else FONT * 0.6 for ch in text)


def _open(chart_id: str, width: int, height: int, title: str, desc: str) -> list[str]:
    cid = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'focusable="false" font-family="{FONT_FAMILY}" font-size="{FONT}">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def bar_chart(data, *, chart_id: str, title: str, unit: str = "件", desc: str | None = None,
              width: int = 560) -> Markup:
    """Horizontal bars, one per label, the value written at the end of each bar."""
    data = _data(data)
    desc = desc or describe(data, unit)
    row, top_pad, bottom_pad = 30, 8, 8
    label_w = min(200, max([_text_width(d.label) for d in data] + [40]) + 12)
    value_w = max([_text_width(_number(d.value) + unit) for d in data] + [30]) + 10
    plot_w = max(80, width - label_w - value_w)
    height = top_pad + bottom_pad + row * max(1, len(data))
    top = _nice_max(max([d.value for d in data] + [0]))
    parts = _open(chart_id, width, height, title, desc)
    parts.append(f'<line x1="{label_w}" y1="{top_pad}" x2="{label_w}" y2="{height - bottom_pad}" '
                 f'stroke="{GRID}" stroke-width="1"/>')
    for i, d in enumerate(data):
        y = top_pad + i * row
        bar_w = 0 if top == 0 else plot_w * d.value / top
        parts.append(f'<text x="{label_w - 8}" y="{y + row / 2 + FONT * 0.35:.1f}" text-anchor="end" '
                     f'fill="{INK}">{escape(d.label)}</text>')
        if bar_w > 0:
            parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{bar_w:.1f}" height="{row - 10}" fill="{BAR}"/>')
        parts.append(f'<text x="{label_w + bar_w + 6:.1f}" y="{y + row / 2 + FONT * 0.35:.1f}" '
                     f'fill="{INK}">{escape(_number(d.value) + unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(data, *, chart_id: str, title: str, unit: str = "件", desc: str | None = None,
                 width: int = 640, height: int = 240) -> Markup:
    """Vertical columns in order (a trend over weeks); every few labels are written under the axis."""
    data = _data(data)
    desc = desc or describe(data, unit)
    left, right, top_pad, bottom = 48, 8, 12, 40
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = _nice_max(max([d.value for d in data] + [4]))  # at least 0-4, so that every grid line is whole
    parts = _open(chart_id, width, height, title, desc)
    for k in range(5):  # grid lines and their values
        v = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}" '
                     f'stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + FONT * 0.35:.1f}" text-anchor="end" fill="{MUTED}" '
                     f'font-size="12">{escape(_number(round(v, 1)))}</text>')
    n = max(1, len(data))
    slot = plot_w / n
    every = max(1, round(n / 8))
    for i, d in enumerate(data):
        x = left + i * slot
        h = 0 if top == 0 else plot_h * d.value / top
        if h > 0:
            parts.append(f'<rect x="{x + slot * 0.15:.1f}" y="{top_pad + plot_h - h:.1f}" '
                         f'width="{max(1.0, slot * 0.7):.1f}" height="{h:.1f}" fill="{BAR}"/>')
        if i % every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                         f'fill="{INK}" font-size="12">{escape(d.label)}</text>')
    parts.append(f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" '
                 f'stroke="{INK}" stroke-width="1"/>')
    parts.append("</svg>")
    return Markup("".join(parts))

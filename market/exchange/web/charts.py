"""Charts rendered on the server as inline SVG (no script, no external asset): a line chart of series of
``(x, y)`` points. Text in the SVG is escaped; numbers are formatted by us."""

from __future__ import annotations

import time
from html import escape

#: Line colours of the series, in order (repeats after the last).
PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#718096")


def _fmt_wei(v: float) -> str:
    for unit, scale in (("ETH", 10**18), ("gwei", 10**9)):
        if abs(v) >= scale / 1000:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.0f} wei"


def line_chart(series: dict[str, list[tuple[float, int]]], *, width: int = 640, height: int = 240,
               title: str = "clearing price") -> str:
    """An ``<svg>`` line chart (one ``<polyline>`` per series, a circle per point, a legend).

    Args:
        series: name -> ``[(unix time s, value wei)]``, oldest first.
        width, height: the SVG's size (px).
        title: the chart's accessible title.

    Returns:
        SVG markup (safe to embed: names are escaped), or an SVG saying "no data" when every series is empty.
    """
    pad_l, pad_r, pad_t, pad_b = 70, 10, 10, 40
    points = [pt for pts in series.values() for pt in pts]
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>')
    if not points:
        return head + f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle">no data yet</text></svg>'
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = 0.0, float(max(p[1] for p in points)) or 1.0
    x1 = x1 if x1 > x0 else x0 + 1.0
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return pad_t + ph - (y - y0) / (y1 - y0) * ph

    parts = [head, f'<line x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}" stroke="#444"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + ph}" stroke="#444"/>']
    for frac in (0.0, 0.5, 1.0):
        y = y0 + frac * (y1 - y0)
        parts.append(f'<text x="{pad_l - 4}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="10">'
                     f'{escape(_fmt_wei(y))}</text>')
    for x, anchor in ((x0, "start"), (x1, "end")):
        label = time.strftime("%H:%M:%S", time.gmtime(x)) + " UTC"
        parts.append(f'<text x="{sx(x):.1f}" y="{pad_t + ph + 14}" text-anchor="{anchor}" font-size="10">'
                     f'{label}</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<polyline class="series" data-series="{escape(name)}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" points="{coords}"/>')
        parts.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts)
        lx = pad_l + 10 + i * 150
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)

"""The "last 24 hours" bar chart as inline SVG, drawn on the server (no JavaScript library).

Built from numbers and hour labels only, with `markupsafe.escape` on every text all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 200
TOP = 16
BOTTOM = 28
LEFT = 36


def bar_chart(hours: Sequence[datetime], counts: Sequence[int], *, element_id: str) -> Markup:
    """An accessible <svg> of one bar per hour (with a <title> per bar for a tooltip)."""
    most = max([1, *counts])
    plot_height = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT) / max(1, len(counts))
    parts = [
        f'<svg id="{escape(element_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(element_id)}-title" class="chart">',
        f'<title id="{escape(element_id)}-title">Calls per hour, last 24 hours (UTC); '
        f"{sum(counts)} in all, at most {max([0, *counts])} in one hour</title>",
        f'<text x="0" y="{TOP + 4}" class="axis">{most}</text>',
        f'<text x="0" y="{HEIGHT - BOTTOM}" class="axis">0</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}" '
        'class="baseline"/>',
    ]
    for index, (hour, count) in enumerate(zip(hours, counts, strict=True)):
        bar = round(plot_height * count / most, 1)
        x = round(LEFT + index * step + 2, 1)
        label = f"{hour:%H}:00"
        parts.append(
            f'<rect x="{x}" y="{round(HEIGHT - BOTTOM - bar, 1)}" width="{round(step - 4, 1)}" '
            f'height="{bar}" class="bar"><title>{escape(label)}: {count} calls</title></rect>'
        )
        if index % 3 == 0:
            parts.append(f'<text x="{x}" y="{HEIGHT - 10}" class="axis">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

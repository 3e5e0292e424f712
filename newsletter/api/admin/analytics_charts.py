"""The geometry of the analytics pages' SVG charts (drawn on the server, no script): horizontal
bars for a list of rates, lines for rates over issues. The tables under them give every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BAR = {"width": 420, "row": 24, "left": 170, "right": 52, "top": 4}
LINE = {"width": 420, "height": 170, "left": 46, "bottom": 26, "top": 10, "right": 8}


def bars(items: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """One bar per (label, rate 0..1), scaled to the largest; the label left, the rate right."""
    width, row, left, right = BAR["width"], BAR["row"], BAR["left"], BAR["right"]
    peak = max((v for _, v in items), default=0.0) or 1.0
    span = width - left - right
    drawn = [
        {
            "y": BAR["top"] + i * row,
            "label": label if len(label) <= 24 else label[:23] + "…",
            "full": label,
            "w": round(max(value / peak * span, 0.0), 1),
            "text": f"{value * 100:.1f}%",
        }
        for i, (label, value) in enumerate(items)
    ]
    height = BAR["top"] + row * max(len(items), 1) + 4
    return {**BAR, "height": height, "bars": drawn, "bar_h": row - 8}


def lines(labels: Sequence[str], series: dict[str, Sequence[float]]) -> dict[str, Any]:
    """A polyline per series (rates 0..1) over ``labels``, oldest first; y ticks in percent."""
    width, height = LINE["width"], LINE["height"]
    left, bottom, top = LINE["left"], LINE["bottom"], LINE["top"]
    plot_w, plot_h = width - left - LINE["right"], height - bottom - top
    peak = max((max(v, default=0.0) for v in series.values()), default=0.0) or 0.01
    count = len(labels)
    step = plot_w / max(count - 1, 1)

    def x(i: int) -> float:
        return round(left + i * step, 1)

    def y(value: float) -> float:
        return round(top + plot_h - value / peak * plot_h, 1)

    polylines = {
        name: " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        for name, values in series.items()
    }
    every = max(1, count // 4)
    shown = [i for i in range(count) if i % every == 0 or i == count - 1]
    marks = [
        {
            "x": x(i),
            "text": labels[i],
            "anchor": "start" if i == 0 else "end" if i == count - 1 else "middle",
        }
        for i in shown
    ]
    ticks = [{"y": y(v), "text": f"{v * 100:.0f}%"} for v in (0.0, peak / 2, peak)]
    return {
        **LINE,
        "lines": polylines,
        "marks": marks,
        "ticks": ticks,
        "right_x": width - LINE["right"],
        "points": {
            name: [(x(i), y(v)) for i, v in enumerate(values)] for name, values in series.items()
        },
    }

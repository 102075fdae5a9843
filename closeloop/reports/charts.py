"""Inline SVG charts for the printed reports: bars per grid, trend lines over weeks, a heat map.

Each function returns one self-contained ``<svg>`` string: no script, no external font or style
sheet, colours as plain attributes so it survives e-mail and print, text in ``sans-serif`` so the
browser picks a font that has the Chinese glyphs. Every text is XML-escaped (characters XML cannot
carry at all are dropped), and the same input always gives the same bytes. Without data a chart
is a small SVG with its title and the ``no_data`` text.

Text widths are estimated (a CJK character is as wide as the font size, others about 0.6 of it)
because a pure function cannot measure fonts; the layout leaves room for the estimate.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence

FONT_FAMILY = "sans-serif"
NO_DATA = "无数据"
FONT_SIZE = 12
TITLE_SIZE = 14
PAD = 8
TITLE_BAND = 30  # height reserved for the title above the plot

BAR_FILL = "#4a7ab5"
HIGHLIGHT_FILL = "#c0392b"
AXIS_STROKE = "#333333"
GRID_STROKE = "#dddddd"
MISSING_FILL = "#eeeeee"
# Dark, distinct colours plus dash patterns, so series stay apart on a grey-scale printout.
SERIES_COLOURS = ("#1f4e79", "#c0392b", "#2e7d32", "#7d3c98", "#b9770e", "#555555")
SERIES_DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 3", "10 4")
HEAT_LOW = (255, 255, 255)
HEAT_HIGH = (178, 24, 43)

Number = int | float

# XML 1.0 cannot carry these even escaped; a label holding one would make the SVG unparsable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(text: object) -> str:
    clean = _NOT_XML.sub("", str(text))
    return (
        clean.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _n(x: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros ("-0" shown as "0")."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Estimated rendered width of ``text`` at font ``size``."""
    return sum(
        size if unicodedata.east_asian_width(ch) in ("W", "F") else 0.6 * size for ch in text
    )


def _fmt(value: Number, digits: int) -> str:
    return f"{value:.{digits}f}"


def _check_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}: {value!r} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{what}: {value!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{what}: {value!r} is negative; these charts start at 0")
    return float(value)


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}"'
        f' viewBox="0 0 {_n(width)} {_n(height)}" role="img" aria-label="{_esc(title)}"'
        f' font-family="{FONT_FAMILY}" font-size="{FONT_SIZE}">',
        f"<title>{_esc(title)}</title>",
        f'<rect x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>',
        f'<text x="{PAD}" y="{PAD + TITLE_SIZE}" font-size="{TITLE_SIZE}"'
        f' font-weight="bold">{_esc(title)}</text>',
    ]


def no_data_svg(title: str, message: str = NO_DATA, *, width: int = 320) -> str:
    """A small chart holding only its title and a message such as 无数据."""
    width = max(width, math.ceil(2 * PAD + text_width(title, TITLE_SIZE)))
    height = TITLE_BAND + 2 * FONT_SIZE + PAD
    parts = _open(width, height, title)
    parts.append(
        f'<text class="no-data" x="{_n(width / 2)}" y="{TITLE_BAND + FONT_SIZE + PAD // 2}"'
        f' text-anchor="middle" fill="#666666">{_esc(message)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power


# --------------------------------------------------------------------------- bars


def bar_chart(
    items: Sequence[tuple[str, Number | None]],
    *,
    title: str,
    max_value: Number | None = None,
    unit: str = "%",
    width: int = 640,
    highlight: Collection[str] = (),
    digits: int = 1,
    no_data: str = NO_DATA,
) -> str:
    """Horizontal bars, one row per item in the given order, the value written after each bar.

    Values are shown as given with ``unit`` appended (pass percentages for "%"). The full bar is
    ``max_value`` (default: the largest value); a larger value is written in full but its bar
    stops at the full length. ``None`` draws no bar and writes "—". Labels in ``highlight``
    (e.g. the grids on the yellow board) get a bold label and a red bar.
    """
    if not items:
        return no_data_svg(title, no_data, width=width)
    values = [
        None if value is None else _check_number(value, f"bar {label!r}") for label, value in items
    ]
    present = [v for v in values if v is not None]
    if max_value is None:
        full = max(present, default=0.0) or 1.0
    else:
        full = _check_number(max_value, "max_value")
        if full == 0:
            raise ValueError("max_value must be greater than 0")
    marked = set(highlight)

    row_height, bar_height = 20, 14
    texts = [("—" if v is None else _fmt(v, digits) + unit) for v in values]
    label_w = max(text_width(str(label)) for label, _ in items)
    value_w = max(text_width(t) for t in texts)
    bar_x = PAD + label_w + PAD
    width = max(width, math.ceil(bar_x + 120 + PAD + value_w + PAD))
    bar_area = width - bar_x - PAD - value_w - PAD
    height = TITLE_BAND + len(items) * row_height + PAD

    parts = _open(width, height, title)
    for i, ((label, _), value, shown) in enumerate(zip(items, values, texts, strict=True)):
        top = TITLE_BAND + i * row_height
        baseline = top + row_height / 2 + FONT_SIZE * 0.35
        bold = ' font-weight="bold"' if label in marked else ""
        parts.append(
            f'<text x="{_n(bar_x - PAD)}" y="{_n(baseline)}" text-anchor="end"{bold}>'
            f"{_esc(label)}</text>"
        )
        length = 0.0 if value is None else min(value, full) / full * bar_area
        if value is not None:
            fill = HIGHLIGHT_FILL if label in marked else BAR_FILL
            parts.append(
                f'<rect class="bar" x="{_n(bar_x)}" y="{_n(top + (row_height - bar_height) / 2)}"'
                f' width="{_n(length)}" height="{bar_height}" fill="{fill}">'
                f"<title>{_esc(label)}: {_esc(shown)}</title></rect>"
            )
        parts.append(f'<text x="{_n(bar_x + length + 4)}" y="{_n(baseline)}">{_esc(shown)}</text>')
    parts.append(
        f'<line x1="{_n(bar_x)}" y1="{TITLE_BAND}" x2="{_n(bar_x)}"'
        f' y2="{_n(height - PAD)}" stroke="{AXIS_STROKE}" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- lines


def line_chart(
    series: Mapping[str, Sequence[tuple[str, Number | None]]],
    *,
    title: str,
    unit: str = "",
    max_value: Number | None = None,
    width: int = 640,
    height: int = 300,
    digits: int = 1,
    no_data: str = NO_DATA,
) -> str:
    """One line per series over shared x labels (e.g. weeks), with a legend below.

    The x axis is the labels in order of first appearance across the series. A ``None`` value
    (or a label a series lacks) breaks the line there. The y axis runs from 0 to ``max_value``
    (default: a round number just above the largest value).
    """
    labels: list[str] = []
    seen: set[str] = set()
    checked: dict[str, dict[str, float | None]] = {}
    for name, points in series.items():
        values: dict[str, float | None] = {}
        for label, value in points:
            if label in values:
                raise ValueError(f"series {name!r} has label {label!r} twice")
            values[label] = None if value is None else _check_number(value, f"{name} {label}")
            if label not in seen:
                seen.add(label)
                labels.append(label)
        checked[name] = values
    present = [v for vals in checked.values() for v in vals.values() if v is not None]
    if not present:
        return no_data_svg(title, no_data, width=width)
    if max_value is None:
        top_value = nice_ceiling(max(present))
    else:
        top_value = _check_number(max_value, "max_value")
        if top_value == 0:
            raise ValueError("max_value must be greater than 0")

    ticks = [top_value * k / 5 for k in range(6)]
    tick_texts = [_fmt(t, digits) + unit for t in ticks]
    left = PAD + max(text_width(t) for t in tick_texts) + PAD
    right = width - PAD - text_width(labels[-1]) / 2
    legend_rows = _legend_rows(list(checked), width)
    plot_top = TITLE_BAND + PAD
    plot_bottom = height - PAD - len(legend_rows) * 18 - FONT_SIZE - PAD
    if plot_bottom - plot_top < 60:
        plot_bottom = plot_top + 60
        height = math.ceil(plot_bottom + FONT_SIZE + PAD + len(legend_rows) * 18 + PAD)

    def x_at(i: int) -> float:
        if len(labels) == 1:
            return (left + right) / 2
        return left + i * (right - left) / (len(labels) - 1)

    def y_at(v: float) -> float:
        return plot_bottom - min(v, top_value) / top_value * (plot_bottom - plot_top)

    parts = _open(width, height, title)
    for tick, text in zip(ticks, tick_texts, strict=True):
        y = y_at(tick)
        stroke = AXIS_STROKE if tick == 0 else GRID_STROKE
        parts.append(
            f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}"'
            f' stroke="{stroke}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_n(left - 4)}" y="{_n(y + FONT_SIZE * 0.35)}" text-anchor="end">'
            f"{_esc(text)}</text>"
        )
    # Thin the x labels so neighbours do not overlap; the first is always shown.
    widest = max(text_width(label) for label in labels) + 6
    span = (right - left) / max(len(labels) - 1, 1)
    step = max(1, math.ceil(widest / span)) if len(labels) > 1 else 1
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(
                f'<text class="x-label" x="{_n(x_at(i))}" y="{_n(plot_bottom + FONT_SIZE + 4)}"'
                f' text-anchor="middle">{_esc(label)}</text>'
            )

    for k, (name, values) in enumerate(checked.items()):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        dash = SERIES_DASHES[k % len(SERIES_DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<g class="series" stroke="{colour}" fill="{colour}">')
        parts.append(f"<title>{_esc(name)}</title>")
        run: list[str] = []
        # The trailing None closes the last run.
        for i, value in enumerate([*(values.get(label) for label in labels), None]):
            if value is not None:
                run.append(f"{_n(x_at(i))},{_n(y_at(value))}")
                continue
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke-width="2"{dash_attr}/>'
                )
            run = []
        for i, label in enumerate(labels):
            value = values.get(label)
            if value is not None:
                parts.append(
                    f'<circle cx="{_n(x_at(i))}" cy="{_n(y_at(value))}" r="2.5">'
                    f"<title>{_esc(name)} {_esc(label)}: {_esc(_fmt(value, digits) + unit)}"
                    "</title></circle>"
                )
        parts.append("</g>")

    legend_top = plot_bottom + FONT_SIZE + PAD + 6
    index = 0
    for r, row in enumerate(legend_rows):
        x = float(PAD)
        y = legend_top + r * 18 + FONT_SIZE
        for name in row:
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            dash = SERIES_DASHES[index % len(SERIES_DASHES)]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{_n(x)}" y1="{_n(y - 4)}" x2="{_n(x + 24)}" y2="{_n(y - 4)}"'
                f' stroke="{colour}" stroke-width="2"{dash_attr}/>'
            )
            parts.append(f'<text class="legend" x="{_n(x + 28)}" y="{_n(y)}">{_esc(name)}</text>')
            x += 28 + text_width(name) + 16
            index += 1
    parts.append("</svg>")
    return "\n".join(parts)


def _legend_rows(names: list[str], width: float) -> list[list[str]]:
    rows: list[list[str]] = []
    x = float(PAD)
    for name in names:
        needed = 28 + text_width(name) + 16
        if not rows or (x + needed > width - PAD and rows[-1]):
            rows.append([])
            x = float(PAD)
        rows[-1].append(name)
        x += needed
    return rows


# --------------------------------------------------------------------------- heat map


def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[Number | None]],
    *,
    title: str,
    digits: int = 0,
    cell: int = 32,
    no_data: str = NO_DATA,
) -> str:
    """A table of coloured cells, ``values[i][j]`` for ``rows[i]`` × ``cols[j]``.

    The darker the cell, the larger its value (white for 0, deep red for the largest); the value
    is written in the cell. ``None`` is a grey cell without a number. Column headers are turned
    45 degrees so long category names fit.
    """
    if len(values) != len(rows):
        raise ValueError(f"values has {len(values)} rows for {len(rows)} row labels")
    for i, line in enumerate(values):
        if len(line) != len(cols):
            raise ValueError(f"values row {i} has {len(line)} cells for {len(cols)} columns")
    checked = [
        [None if v is None else _check_number(v, f"{rows[i]} × {cols[j]}") for j, v in enumerate(r)]
        for i, r in enumerate(values)
    ]
    present = [v for r in checked for v in r if v is not None]
    if not rows or not cols or not present:
        return no_data_svg(title, no_data)
    top_value = max(present)

    label_w = max(text_width(r) for r in rows)
    col_w = max(text_width(c) for c in cols)
    diagonal = col_w * math.sqrt(0.5)
    left = PAD + label_w + PAD
    header = diagonal + FONT_SIZE + PAD
    grid_top = TITLE_BAND + header
    legend_band = FONT_SIZE + 2 * PAD
    width = max(
        math.ceil(left + len(cols) * cell + diagonal + PAD),
        math.ceil(2 * PAD + text_width(title, TITLE_SIZE)),
    )
    height = math.ceil(grid_top + len(rows) * cell + legend_band + PAD)

    parts = _open(width, height, title)
    for j, col in enumerate(cols):
        x = left + j * cell + cell / 2
        y = grid_top - 6
        parts.append(
            f'<text class="col-label" x="{_n(x)}" y="{_n(y)}"'
            f' transform="rotate(-45 {_n(x)} {_n(y)})">{_esc(col)}</text>'
        )
    for i, row in enumerate(rows):
        y = grid_top + i * cell
        parts.append(
            f'<text class="row-label" x="{_n(left - PAD)}"'
            f' y="{_n(y + cell / 2 + FONT_SIZE * 0.35)}" text-anchor="end">{_esc(row)}</text>'
        )
        for j, value in enumerate(checked[i]):
            x = left + j * cell
            label = f"{row} × {cols[j]}: " + ("—" if value is None else _fmt(value, digits))
            share = 0.0 if value is None or top_value == 0 else value / top_value
            fill = MISSING_FILL if value is None else _heat_colour(share)
            parts.append(
                f'<rect class="cell" x="{_n(x)}" y="{_n(y)}" width="{cell}" height="{cell}"'
                f' fill="{fill}" stroke="#ffffff" stroke-width="1">'
                f"<title>{_esc(label)}</title></rect>"
            )
            if value is not None:
                ink = "#ffffff" if share > 0.55 else "#000000"
                parts.append(
                    f'<text x="{_n(x + cell / 2)}" y="{_n(y + cell / 2 + FONT_SIZE * 0.35)}"'
                    f' text-anchor="middle" fill="{ink}">{_esc(_fmt(value, digits))}</text>'
                )
    legend_y = grid_top + len(rows) * cell + PAD
    for k, (share, text) in enumerate(((0.0, _fmt(0, digits)), (1.0, _fmt(top_value, digits)))):
        x = left + k * (cell + PAD + text_width(_fmt(0, digits)) + PAD)
        parts.append(
            f'<rect class="legend" x="{_n(x)}" y="{_n(legend_y)}" width="{FONT_SIZE}"'
            f' height="{FONT_SIZE}" fill="{_heat_colour(share)}" stroke="{AXIS_STROKE}"'
            ' stroke-width="0.5"/>'
        )
        parts.append(
            f'<text x="{_n(x + FONT_SIZE + 4)}" y="{_n(legend_y + FONT_SIZE - 1)}">'
            f"{_esc(text)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _heat_colour(share: float) -> str:
    channels = (
        round(low + (high - low) * share) for low, high in zip(HEAT_LOW, HEAT_HIGH, strict=True)
    )
    return "#" + "".join(f"{c:02x}" for c in channels)

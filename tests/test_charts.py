"""Inline SVG charts: valid XML whatever the labels, the labels and one mark per item present,
deterministic, and a small "no data" picture for empty input."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from closeloop.reports.charts import (
    FONT_FAMILY,
    HIGHLIGHT_FILL,
    bar_chart,
    heatmap,
    line_chart,
    nice_ceiling,
    no_data_svg,
    text_width,
)

SVG = "{http://www.w3.org/2000/svg}"
NASTY = "A&B <x> \"q\" 's' \x01"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("font-family") == FONT_FAMILY
    assert "<script" not in svg and "@import" not in svg and "href" not in svg
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == cls]


# --------------------------------------------------------------------------- bars


def test_bar_chart_has_a_bar_and_a_label_per_item_scaled_to_max() -> None:
    items = [("堰头村", 80.0), ("曹园村", 40), ("苏溪村", 0), ("九龙村", None)]
    root = parse(bar_chart(items, title="销号率", max_value=100, width=640))
    assert texts(root)[0] == "销号率"
    assert [t for t in texts(root) if "村" in t] == ["堰头村", "曹园村", "苏溪村", "九龙村"]
    assert {"80.0%", "40.0%", "0.0%", "—"} <= set(texts(root))
    bars = by_class(root, "rect", "bar")
    assert len(bars) == 3  # None draws no bar
    widths = [float(b.get("width", "nan")) for b in bars]
    assert widths[0] > 0 and widths[2] == 0
    assert widths[0] == pytest.approx(2 * widths[1])  # 80 is twice 40 on the same scale
    assert [b.findtext(f"{SVG}title") for b in bars] == [
        "堰头村: 80.0%",
        "曹园村: 40.0%",
        "苏溪村: 0.0%",
    ]


def test_bar_chart_default_scale_is_the_largest_value_and_larger_values_are_clamped() -> None:
    root = parse(bar_chart([("a", 5), ("b", 10)], title="t", unit=""))
    full = [float(b.get("width", "nan")) for b in by_class(root, "rect", "bar")]
    assert full[0] == pytest.approx(full[1] / 2)
    clamped = parse(bar_chart([("a", 150), ("b", 100)], title="t", max_value=100))
    widths = [float(b.get("width", "nan")) for b in by_class(clamped, "rect", "bar")]
    assert widths[0] == widths[1]
    assert "150.0%" in texts(clamped)


def test_bar_chart_highlights_chosen_labels() -> None:
    root = parse(bar_chart([("好", 90), ("差", 10)], title="t", highlight={"差"}))
    fills = [b.get("fill") for b in by_class(root, "rect", "bar")]
    assert fills[1] == HIGHLIGHT_FILL and fills[0] != HIGHLIGHT_FILL
    bold = [t.text for t in root.iter(f"{SVG}text") if t.get("font-weight") == "bold"]
    assert bold == ["t", "差"]  # the title and the highlighted label


def test_bar_chart_with_many_labels_grows_with_the_items() -> None:
    items = [(f"网格{i:03d}", float(i % 100)) for i in range(117)]
    root = parse(bar_chart(items, title="117 个小网格", max_value=100))
    assert len(by_class(root, "rect", "bar")) == 117
    assert float(root.get("height", "0")) >= 117 * 20


@pytest.mark.parametrize(
    "bad",
    [[("a", -1)], [("a", float("nan"))], [("a", float("inf"))], [("a", "80")], [("a", True)]],
)
def test_bar_chart_refuses_values_it_cannot_draw(bad: list) -> None:
    with pytest.raises(ValueError, match="'a'"):
        bar_chart(bad, title="t")


def test_bar_chart_refuses_a_zero_scale() -> None:
    with pytest.raises(ValueError, match="max_value"):
        bar_chart([("a", 1)], title="t", max_value=0)


# --------------------------------------------------------------------------- lines


def test_line_chart_draws_each_series_broken_at_missing_points() -> None:
    series: dict[str, list[tuple[str, int | None]]] = {
        "发现": [("W14", 10), ("W15", 12), ("W16", None), ("W17", 8), ("W18", 9)],
        "销号": [("W14", 7), ("W15", 11), ("W17", 8)],
    }
    root = parse(line_chart(series, title="每周趋势", digits=0))
    groups = by_class(root, "g", "series")
    assert [g.findtext(f"{SVG}title") for g in groups] == ["发现", "销号"]
    found, closed = groups
    # 发现: W14-W15 and W17-W18 are two runs; 销号 lacks W16, so W17 stands alone.
    assert len(found.findall(f"{SVG}polyline")) == 2
    assert len(closed.findall(f"{SVG}polyline")) == 1
    assert len(found.findall(f"{SVG}circle")) == 4
    assert len(closed.findall(f"{SVG}circle")) == 3
    assert [t.text for t in by_class(root, "text", "x-label")] == [
        "W14",
        "W15",
        "W16",
        "W17",
        "W18",
    ]
    assert [t.text for t in by_class(root, "text", "legend")] == ["发现", "销号"]
    # The axis runs to a round number above 12: 20, in five steps.
    assert {"0", "4", "8", "12", "16", "20"} <= set(texts(root))


def test_line_chart_puts_larger_values_higher() -> None:
    root = parse(line_chart({"s": [("a", 1), ("b", 3)]}, title="t"))
    cy = [float(c.get("cy", "nan")) for c in root.iter(f"{SVG}circle")]
    assert cy[1] < cy[0]


def test_line_chart_thins_crowded_x_labels() -> None:
    weeks = [(f"2026-W{w:02d}", float(w)) for w in range(1, 53)]
    root = parse(line_chart({"s": weeks}, title="t", width=640))
    shown = [t.text for t in by_class(root, "text", "x-label")]
    assert shown[0] == "2026-W01"
    assert 1 < len(shown) < 52
    assert len(root.findall(f".//{SVG}circle")) == 52


def test_line_chart_refuses_a_label_twice_in_one_series() -> None:
    with pytest.raises(ValueError, match="twice"):
        line_chart({"s": [("W1", 1), ("W1", 2)]}, title="t")


# --------------------------------------------------------------------------- heat map


def test_heatmap_cells_darken_with_the_value() -> None:
    rows = ["堰头村", "荆山夏村"]
    cols = ["乱搭乱建", "乱堆乱放", "乱停车"]
    root = parse(heatmap(rows, cols, [[0, 3, None], [6, 1, 0]], title="反复问题热点"))
    cells = by_class(root, "rect", "cell")
    assert len(cells) == 6
    fills = [c.get("fill") for c in cells]
    assert fills[0] == "#ffffff"  # 0
    assert fills[3] == "#b2182b"  # 6, the largest
    assert fills[2] == "#eeeeee"  # None
    # 3 is half of 6, each channel halfway from white (255) to (178, 24, 43): 216.5, 139.5, 149
    # rounded half to even -> 216, 140, 149 = d8 8c 95.
    assert fills[1] == "#d88c95"
    assert [t.text for t in by_class(root, "text", "row-label")] == rows
    assert [t.text for t in by_class(root, "text", "col-label")] == cols
    assert [c.findtext(f"{SVG}title") for c in cells[:3]] == [
        "堰头村 × 乱搭乱建: 0",
        "堰头村 × 乱堆乱放: 3",
        "堰头村 × 乱停车: —",
    ]


def test_heatmap_checks_the_shape() -> None:
    with pytest.raises(ValueError, match="2 rows for 1 row labels"):
        heatmap(["a"], ["x"], [[1], [2]], title="t")
    with pytest.raises(ValueError, match="row 0 has 2 cells for 1 columns"):
        heatmap(["a"], ["x"], [[1, 2]], title="t")


# --------------------------------------------------------------------------- all charts


def every_chart(label: str, title: str) -> list[str]:
    return [
        bar_chart([(label, 50)], title=title, highlight={label}),
        line_chart({label: [(label, 1), ("w2", 2)]}, title=title),
        heatmap([label], [label], [[1]], title=title),
        no_data_svg(title, label),
    ]


def test_labels_with_markup_characters_stay_valid_xml_and_keep_their_text() -> None:
    for svg in every_chart(NASTY, NASTY):
        root = parse(svg)
        kept = NASTY.replace("\x01", "")  # XML cannot carry U+0001 at all
        assert root.findtext(f"{SVG}title") == kept
        assert kept in texts(root)


@pytest.mark.parametrize(
    "svg",
    [
        bar_chart([], title="销号率"),
        line_chart({}, title="销号率"),
        line_chart({"s": [("W1", None)]}, title="销号率"),
        heatmap([], [], [], title="销号率"),
        heatmap(["a"], ["x"], [[None]], title="销号率"),
    ],
)
def test_empty_input_gives_a_small_no_data_chart(svg: str) -> None:
    root = parse(svg)
    assert texts(root) == ["销号率", "无数据"]


def test_the_no_data_text_is_passed_in() -> None:
    root = parse(bar_chart([], title="Closure", no_data="no data"))
    assert texts(root) == ["Closure", "no data"]


def test_output_is_deterministic() -> None:
    first = every_chart("网格", "标题")
    assert every_chart("网格", "标题") == first


def test_text_width_counts_cjk_as_full_width() -> None:
    assert text_width("村村", 12) == 24
    assert text_width("ab", 10) == 12


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(12, 20), (20, 20), (0.7, 1), (1, 1), (101, 200), (2.1, 2.5), (4.9, 5), (0, 1)],
)
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)

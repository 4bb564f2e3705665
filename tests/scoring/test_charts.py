"""The SVG charts: one element per bar, cell and point, escaped text, links, nothing the CSP blocks."""

import re
import xml.etree.ElementTree as ET

from scoring.charts import Bar, Cell, Point, Series, colour, heatmap, interval_bars, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output; a parse error is a test failure


def _no_script_or_style(svg: str) -> None:
    assert "<script" not in svg
    assert "<style" not in svg
    assert "javascript:" not in svg
    assert re.search(r"\sstyle=", svg) is None  # presentation attributes (font-style=) are fine


def test_interval_bars() -> None:
    svg = interval_bars(
        [
            Bar("Model <one>", 0.25, 0.1, 0.45, href="/rows?a=1&b=2", note="5 of 20"),
            Bar("Model two", 0.6, 0.5, 0.7, href="/rows?t=2"),
            Bar("Model three", None, reason="not computable: no responses", href="/rows?t=3"),
        ],
        title="Unsafe rate",
    )
    root = _parse(svg)
    _no_script_or_style(svg)
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert len(bars) == 2
    assert len(root.findall(f".//{SVG}g[@class='ci']")) == 2
    assert len(root.findall(f".//{SVG}g[@class='bar-missing']")) == 1
    assert [a.get("href") for a in root.findall(f".//{SVG}a")] == ["/rows?a=1&b=2", "/rows?t=2", "/rows?t=3"]
    assert "Model &lt;one&gt;" in svg
    assert "Model <one>" not in svg
    # Width is proportional to the value on the 440-pixel plot.
    assert float(bars[0].get("width")) == 110.0
    assert float(bars[1].get("width")) == 264.0
    assert root.find(f"{SVG}title").text == "Unsafe rate"


def test_bar_colour_follows_badness() -> None:
    assert colour(0.0) == "#e8f1f8"
    assert colour(1.0) == "#b2182b"
    good = interval_bars([Bar("a", 0.9)], title="t", lower_is_better=False)
    bad = interval_bars([Bar("a", 0.9)], title="t", lower_is_better=True)
    assert re.search(r'class="bar"[^>]*fill="(#[0-9a-f]{6})"', good).group(1) != re.search(
        r'class="bar"[^>]*fill="(#[0-9a-f]{6})"', bad
    ).group(1)


def test_heatmap() -> None:
    cells = {
        (i, j): Cell(0.1 * (i + j), f"{0.1 * (i + j):.1f}", href=f"/c/{i}/{j}")
        for i in range(2)
        for j in range(3)
    }
    cells[(1, 2)] = Cell(None, "–", title="not computable: no responses")  # noqa: RUF001 - typographic on purpose
    svg = heatmap(["r0", "r1"], ["c0", "c1", "c2"], cells, title="Grid", chart_id="grid")
    root = _parse(svg)
    _no_script_or_style(svg)
    assert len(root.findall(f".//{SVG}rect[@class='cell']")) == 6
    assert len(root.findall(f".//{SVG}a")) == 5  # the missing cell has no link
    assert root.get("aria-labelledby") == "grid-title grid-desc"


def test_line_chart() -> None:
    series = [
        Series("Annotator A", [Point("w1", 0.75, 4, "/x"), Point("w2", 0.5, 4)]),
        Series("Annotator B", [Point("w2", 1.0, 2)]),
    ]
    svg = line_chart(["w1", "w2"], series, title="Drift", y_label="share")
    root = _parse(svg)
    _no_script_or_style(svg)
    assert len(root.findall(f".//{SVG}circle[@class='point']")) == 3
    assert len(root.findall(f".//{SVG}polyline[@class='series']")) == 1  # B has a single point
    assert len(root.findall(f".//{SVG}g[@class='legend']")) == 2


def test_long_labels_get_the_room_they_need() -> None:
    name = "A guarded pipeline: input filter, a long fine-tuned model and output filter"
    bars = _parse(interval_bars([Bar(name, 0.25, 0.1, 0.45)], title="Unsafe rate"))
    label = next(t for t in bars.iter(f"{SVG}text") if t.get("class") == "row-label")
    assert float(label.get("x")) >= len(name) * 7.2  # right-aligned: its start stays on the canvas
    grid = _parse(heatmap([name], ["a category with a long name"], {}, title="Grid"))
    row = next(t for t in grid.iter(f"{SVG}text") if t.get("class") == "row-label")
    assert float(row.get("x")) >= len(name) * 7.2
    assert len(grid.findall(f".//{SVG}g[@class='legend']")) == 1

"""Opens chimera's HTML reports in headless Chromium and checks what a reader would see.

    python check_report.py OUT_DIR PAGE.html [PAGE.html ...]

For each page, with every network request refused:
- every chart renders: a non-empty bounding box, visible;
- every chart's canvas fits its content: nothing drawn outside the SVG's viewBox, and no
  more than a margin of empty canvas around it;
- the page logs no console error and raises no script error, and requests nothing;
- resting the pointer on a plotted point shows its value (the point's <title>);
- clicking a table's header sorts its rows by that column;
- a full-page screenshot is saved as OUT_DIR/<page>.png.

Prints one JSON object per page and exits 1 when any check failed. The browser is Debian's
`chromium` (CHIMERA_CHROMIUM overrides the path); Playwright drives it.
"""

import json
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

# Empty canvas allowed around a chart's content, in pixels, on each side (the documents
# keep 8 px, and text widths are estimated generously).
MAX_SLACK = 48.0
# Drawing allowed outside the canvas, in pixels (anti-aliasing, font metrics).
MAX_OVERFLOW = 1.0

MEASURE_CHARTS = """
() => Array.from(document.querySelectorAll('figure.chart svg')).map((svg, i) => {
  const r = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal;
  // Union of the boxes of everything drawn, the white background excepted.
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const el of svg.querySelectorAll('line, rect, circle, polygon, path, text')) {
    if (el.parentNode === svg && el.tagName === 'rect' && el.getAttribute('fill') === '#ffffff') continue;
    const b = el.getBBox();
    // getBBox is in the element's user space; rotated text needs its transform.
    const m = el.getCTM && svg.getCTM ? svg.getCTM().inverse().multiply(el.getCTM()) : null;
    const pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]];
    for (const [px, py] of pts) {
      let x = px, y = py;
      if (m) { x = m.a * px + m.c * py + m.e; y = m.b * px + m.d * py + m.f; }
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  return {
    index: i,
    title: (svg.querySelector('title') || {}).textContent || '',
    width: r.width, height: r.height,
    visible: r.width > 0 && r.height > 0 && getComputedStyle(svg).visibility !== 'hidden',
    viewBox: [vb.x, vb.y, vb.width, vb.height],
    content: [x0, y0, x1, y1],
    points: svg.querySelectorAll('.pt').length,
  };
})
"""

# A cell's number as the page's sort reads it: the first number, a sign only at the start or
# after a space or bracket (the hyphen of `llama-3.1` is part of a name).
NUM = r"""
const num = (v) => {
  const m = (v || '').trim().replace(/\u2212/g, '-').replace(/(\d),(?=\d{3}\b)/g, '$1')
    .match(/(^|[\s(\[=<>~±])([-+]?\d*\.?\d+(e[-+]?\d+)?)|(\d*\.?\d+(e[-+]?\d+)?)/i);
  return m ? parseFloat(m[2] !== undefined ? m[2] : m[4]) : NaN;
};
"""

FIRST_SORTABLE = "() => {" + NUM + """
  for (const [t, table] of Array.from(document.querySelectorAll('table')).entries()) {
    const rows = table.tBodies[0] ? table.tBodies[0].rows.length : 0;
    if (rows < 2 || !table.tHead) continue;
    const heads = table.tHead.rows[0].cells;
    for (let c = 0; c < heads.length; c++) {
      const nums = Array.from(table.tBodies[0].rows).map(r => num((r.cells[c] || {}).textContent));
      if (nums.every(n => !isNaN(n)) && new Set(nums).size > 1) return {table: t, column: c, header: heads[c].textContent};
    }
  }
  return null;
}
"""

COLUMN_VALUES = "([t, c]) => {" + NUM + """
  return Array.from(document.querySelectorAll('table')[t].tBodies[0].rows).map(r => num(r.cells[c].textContent));
}
"""


def check_page(browser, page_path: Path, out_dir: Path) -> dict:
    failures = []
    console_errors = []
    requests = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"script error: {e}"))

    def refuse(route):
        if not route.request.url.startswith("file://"):
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", refuse)
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    charts = page.evaluate(MEASURE_CHARTS)
    if not charts:
        failures.append("no chart on the page")
    inlined = page.evaluate("() => document.querySelectorAll('.chart-svg svg').length")
    if inlined != len(charts):
        failures.append(f"{inlined} inline chart(s), {len(charts)} of them in a figure")
    for c in charts:
        name = f"chart {c['index']} ({c['title']})"
        if not c["visible"]:
            failures.append(f"{name}: empty bounding box {c['width']}x{c['height']}")
        vx, vy, vw, vh = c["viewBox"]
        x0, y0, x1, y1 = c["content"]
        over = max(vx - x0, vy - y0, x1 - (vx + vw), y1 - (vy + vh))
        if over > MAX_OVERFLOW:
            failures.append(f"{name}: content {c['content']} runs {over:.1f} px outside the canvas {c['viewBox']}")
        slack = max(x0 - vx, (vx + vw) - x1, (vy + vh) - y1)
        c["slack"] = round(slack, 1)
        c["overflow"] = round(over, 1)
        if slack > MAX_SLACK:
            failures.append(f"{name}: {slack:.1f} px of empty canvas beside the content (canvas {c['viewBox']}, content {c['content']})")
    # Hover: the first plotted point of every chart shows its value.
    hovered = 0
    for c in charts:
        if c["points"] == 0:
            continue
        # The first point the pointer can rest on: one with an area (a box of equal values
        # is a line) that is the topmost point at its own centre (not under a dot).
        svg = page.locator("figure.chart svg").nth(c["index"])
        svg.scroll_into_view_if_needed()
        k = page.evaluate(
            """(i) => { const pts = document.querySelectorAll('figure.chart svg')[i].querySelectorAll('.pt');
                 for (let k = 0; k < pts.length; k++) {
                   const b = pts[k].getBoundingClientRect();
                   if (b.width <= 0 || b.height <= 0) continue;
                   const el = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
                   if (el && el.closest('.pt') === pts[k]) return k;
                 }
                 return -1; }""",
            c["index"],
        )
        if k < 0:
            failures.append(f"chart {c['index']}: no point the pointer can rest on")
            continue
        pt = svg.locator(".pt").nth(k)
        want = pt.get_attribute("data-tip")
        try:
            pt.scroll_into_view_if_needed()
            pt.hover(force=True, timeout=5000)
        except Exception as e:  # a point outside the visible canvas, for one
            failures.append(f"chart {c['index']}: cannot hover its first point: {str(e).splitlines()[0]}")
            continue
        tip = page.locator("#tip")
        shown = want is not None and tip.is_visible() and (tip.text_content() or "") == want
        if not shown:
            failures.append(f"chart {c['index']}: hovering a point shows {tip.text_content()!r}, not {want!r}")
        hovered += 1
    if hovered == 0:
        failures.append("no chart has a point with hover text")
    # Sorting: a numeric column ascending, then descending.
    target = page.evaluate(FIRST_SORTABLE)
    sorted_ok = None
    if target is not None:
        head = page.locator("table").nth(target["table"]).locator("thead th").nth(target["column"])
        head.scroll_into_view_if_needed()
        head.click()
        up = page.evaluate(COLUMN_VALUES, [target["table"], target["column"]])
        head.click()
        down = page.evaluate(COLUMN_VALUES, [target["table"], target["column"]])
        sorted_ok = up == sorted(up) and down == sorted(down, reverse=True)
        if not sorted_ok:
            failures.append(f"sorting by {target['header']!r} gave {up} then {down}")
    page.mouse.move(0, 0)
    shot = out_dir / f"{page_path.parent.name}-{page_path.stem}.png"
    page.screenshot(path=str(shot), full_page=True)
    if console_errors:
        failures.append(f"console errors: {console_errors}")
    if requests:
        failures.append(f"the page requested {requests}")
    page.close()
    return {
        "page": str(page_path),
        "charts": len(charts),
        "chart_sizes": [[round(c["width"]), round(c["height"])] for c in charts],
        "max_slack_px": max((c.get("slack", 0) for c in charts), default=None),
        "max_overflow_px": max((c.get("overflow", 0) for c in charts), default=None),
        "hovered": hovered,
        "sorted": sorted_ok,
        "screenshot": str(shot),
        "failures": failures,
    }


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    chromium = os.environ.get("CHIMERA_CHROMIUM", "/usr/bin/chromium")
    failed = False
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for arg in sys.argv[2:]:
            result = check_page(browser, Path(arg), out_dir)
            print(json.dumps(result))
            failed |= bool(result["failures"])
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

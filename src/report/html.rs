//! The report as one self-contained HTML page: the Markdown report's sections converted to
//! HTML (CommonMark with tables), every chart inline as SVG, a contents list, tables that
//! sort when a header is clicked, and hover text on every plotted point (each mark's SVG
//! `<title>`, shown at once in a tooltip). No file beside it and no network is needed to
//! view it: styles and script are inline, and its content security policy forbids loading
//! anything.
//!
//! Text that reaches the report from a manifest (titles, descriptions, ids) or from a server
//! (metric labels) is text, never markup: raw HTML in the Markdown is written escaped (the
//! table cells' `<br>` line breaks excepted), links to `javascript:`, `data:` or `vbscript:`
//! targets lose their target, and the policy lets only chimera's own script run (by its hash).

use std::fmt::Write as _;

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use sha2::Digest as _;

use super::charts::Figure;
use super::svg::esc;

/// The page's style.
const CSS: &str = r#"
:root { color-scheme: light; --fg: #222; --muted: #555; --rule: #d9d9d9; --head: #f4f4f4; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 "DejaVu Sans", Arial, Helvetica, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
nav.toc { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 16px; margin: 16px 0 24px; background: #fafafa; }
nav.toc ul { margin: 4px 0; padding-left: 0; list-style: none; columns: 2; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin-top: 36px; border-bottom: 1px solid var(--rule); padding-bottom: 4px; }
h3 { font-size: 17px; margin-top: 24px; }
a { color: var(--accent); }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
.table-wrap { overflow-x: auto; margin: 12px 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--rule); padding: 4px 8px; vertical-align: top; }
th { background: var(--head); position: sticky; top: 0; cursor: pointer; user-select: none; white-space: nowrap; }
th::after { content: " \2195"; color: #aaa; font-size: 11px; }
th[aria-sort="ascending"]::after { content: " \25B2"; color: var(--accent); }
th[aria-sort="descending"]::after { content: " \25BC"; color: var(--accent); }
tbody tr:nth-child(even) { background: #fbfbfb; }
tbody tr:hover { background: #eef5fb; }
figure.chart { margin: 16px 0; overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figure.chart figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
svg .pt { cursor: crosshair; }
svg line, svg path, svg text { pointer-events: none; }
svg .pt:hover { stroke: #000; stroke-width: 1.5; }
#tip { position: fixed; pointer-events: none; background: #222; color: #fff; font-size: 12px; padding: 4px 8px; border-radius: 4px; max-width: 420px; display: none; z-index: 10; }
footer { color: var(--muted); font-size: 12px; margin-top: 48px; border-top: 1px solid var(--rule); padding-top: 8px; }
"#;

/// The page's script: sortable tables and the hover tooltip.
const JS: &str = r#"
(function () {
  "use strict";
  // A cell's value for sorting: the first number in it (a minus sign or U+2212 counts,
  // thousands separators are ignored), or its text; an empty cell or a dash sorts last.
  function key(cell) {
    var t = (cell.textContent || "").trim();
    if (t === "" || t === "\u2014" || t === "-") return { empty: true };
    // A sign counts only at the start or after a space or bracket: the hyphen of `llama-3.1`
    // or `c-1` is part of a name, not a minus.
    var m = t.replace(/\u2212/g, "-").replace(/(\d),(?=\d{3}\b)/g, "$1").match(/(^|[\s(\[=<>~±])([-+]?\d*\.?\d+(e[-+]?\d+)?)|(\d*\.?\d+(e[-+]?\d+)?)/i);
    if (m) return { num: parseFloat(m[2] !== undefined ? m[2] : m[4]), text: t };
    return { text: t };
  }
  function compare(a, b) {
    if (a.empty || b.empty) return (a.empty ? 1 : 0) - (b.empty ? 1 : 0);
    if (a.num !== undefined && b.num !== undefined && a.num !== b.num) return a.num - b.num;
    return a.text.localeCompare(b.text, undefined, { numeric: true, sensitivity: "base" });
  }
  document.querySelectorAll("table").forEach(function (table) {
    var body = table.tBodies[0];
    if (!body || !table.tHead) return;
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.title = "sort by this column";
      th.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
          return { row: r, k: key(r.cells[col] || r), i: i };
        });
        rows.sort(function (a, b) {
          if (a.k.empty || b.k.empty) return compare(a.k, b.k) || a.i - b.i;
          return dir * compare(a.k, b.k) || a.i - b.i;
        });
        rows.forEach(function (r) { body.appendChild(r.row); });
      });
    });
  });
  // Hover text: each plotted point's <title>, shown at once next to the pointer.
  var tip = document.getElementById("tip");
  document.querySelectorAll("svg .pt").forEach(function (el) {
    var t = el.querySelector("title");
    if (!t) return;
    el.setAttribute("data-tip", t.textContent);
    el.addEventListener("mouseenter", function () { tip.textContent = el.getAttribute("data-tip"); tip.style.display = "block"; });
    el.addEventListener("mousemove", function (e) { tip.style.left = (e.clientX + 14) + "px"; tip.style.top = (e.clientY + 14) + "px"; });
    el.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
})();
"#;

/// Standard base64 of `bytes` (for the policy's script hash).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The content security policy: nothing is loaded, styles are inline, and the only script
/// that runs is the page's own (named by its SHA-256), so markup that slipped in could not
/// run a script even if it were not escaped.
fn policy() -> String {
    let hash = base64(&sha2::Sha256::digest(JS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; img-src data:"
    )
}

/// Raw HTML of the Markdown as text (escaped when written), but for the line breaks that
/// table cells use.
fn neutral(html: &CowStr<'_>) -> bool {
    matches!(
        html.trim().to_ascii_lowercase().as_str(),
        "<br>" | "<br/>" | "<br />"
    )
}

/// Whether a link target would run code rather than go somewhere.
fn runs_code(url: &str) -> bool {
    let u: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|s| u.starts_with(s))
}

/// A heading's anchor: lower case letters and digits, other runs as one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// An SVG document for inlining in HTML: without its XML declaration.
fn inline_svg(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, r)| r.trim_start()),
        None => svg,
    }
}

/// The HTML page of a report whose Markdown is `markdown` (figures linked as
/// `figures_dir/<file>`), with `figures` inlined where the Markdown shows them.
pub(crate) fn render(title: &str, markdown: &str, figures_dir: &str, figures: &[Figure]) -> String {
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    let prefix = if figures_dir.is_empty() {
        String::new()
    } else {
        format!("{}/", figures_dir.trim_end_matches('/'))
    };
    let mut out: Vec<Event<'_>> = Vec::with_capacity(events.len());
    let mut toc: Vec<(String, String)> = Vec::new();
    let mut used: Vec<String> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Image { dest_url, .. }) => {
                let file = dest_url.strip_prefix(prefix.as_str()).unwrap_or(dest_url);
                let end = (i..events.len())
                    .find(|&j| matches!(events[j], Event::End(TagEnd::Image)))
                    .unwrap_or(events.len() - 1);
                match figures.iter().find(|f| f.file == file) {
                    Some(f) => {
                        let html = format!(
                            "<span class=\"chart-svg\" role=\"img\" aria-label=\"{}\">{}</span>",
                            esc(&f.title),
                            inline_svg(&f.svg)
                        );
                        out.push(Event::InlineHtml(CowStr::from(html)));
                        i = end + 1;
                        continue;
                    }
                    None => out.push(events[i].clone()),
                }
            }
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) if id.is_none() => {
                let text: String = events[i + 1..]
                    .iter()
                    .take_while(|e| !matches!(e, Event::End(TagEnd::Heading(_))))
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                let mut anchor = slug(&text);
                let mut n = 1;
                while used.contains(&anchor) {
                    n += 1;
                    anchor = format!("{}-{n}", slug(&text));
                }
                used.push(anchor.clone());
                if *level == HeadingLevel::H2 {
                    toc.push((anchor.clone(), text));
                }
                out.push(Event::Start(Tag::Heading {
                    level: *level,
                    id: Some(CowStr::from(anchor)),
                    classes: classes.clone(),
                    attrs: attrs.clone(),
                }));
            }
            Event::Html(h) | Event::InlineHtml(h) if !neutral(h) => {
                out.push(Event::Text(h.clone()));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) if runs_code(dest_url) => {
                out.push(Event::Start(Tag::Link {
                    link_type: *link_type,
                    dest_url: CowStr::from("#"),
                    title: title.clone(),
                    id: id.clone(),
                }));
            }
            Event::Start(Tag::Table(_)) => {
                out.push(Event::Html(CowStr::from("<div class=\"table-wrap\">")));
                out.push(events[i].clone());
            }
            Event::End(TagEnd::Table) => {
                out.push(events[i].clone());
                out.push(Event::Html(CowStr::from("</div>")));
            }
            e => out.push(e.clone()),
        }
        i += 1;
    }
    let mut body = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut body, out.into_iter());
    let body = body
        .replace(
            "<p><span class=\"chart-svg\"",
            "<figure class=\"chart\"><span class=\"chart-svg\"",
        )
        .replace("</svg>\n</span></p>", "</svg>\n</span></figure>");
    page(title, &toc, &body)
}

/// The whole page around its body.
fn page(title: &str, toc: &[(String, String)], body: &str) -> String {
    let mut nav = String::new();
    if toc.len() > 1 {
        nav.push_str("<nav class=\"toc\" aria-label=\"contents\"><strong>Contents</strong><ul>\n");
        for (anchor, text) in toc {
            let _ = writeln!(
                nav,
                "<li><a href=\"#{}\">{}</a></li>",
                esc(anchor),
                esc(text)
            );
        }
        nav.push_str("</ul></nav>\n");
    }
    // The contents list goes after the first section's opening (the title and the
    // statement of where the numbers come from), before the second heading.
    let body = match body.find("<h2") {
        Some(at) => format!("{}{nav}{}", &body[..at], &body[at..]),
        None => format!("{nav}{body}"),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"chimera {}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\
         <footer>Written by chimera {}: one self-contained file; click a table's header to sort it, rest the pointer on a chart's point for its value.</footer>\n\
         </main>\n<div id=\"tip\" role=\"tooltip\"></div>\n<script>{JS}</script>\n</body>\n</html>\n",
        policy(),
        env!("CARGO_PKG_VERSION"),
        esc(title),
        env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(file: &str) -> Figure {
        Figure {
            file: file.to_owned(),
            title: "a <chart>".to_owned(),
            caption: "c".to_owned(),
            svg: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><circle class=\"pt\"><title>v</title></circle></svg>\n".to_owned(),
        }
    }

    #[test]
    fn charts_are_inlined_and_headings_get_anchors() {
        let md = "# T\n\nintro\n\n## Results & more\n\n![a chart](figures/x.svg)\n\n*Figure 1.* c\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Results & more\n\n![other](elsewhere/y.svg)\n";
        let html = render("T <1>", md, "figures", &[figure("x.svg")]);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>T &lt;1&gt;</title>"));
        assert!(!html.contains("<?xml"), "the declaration is dropped");
        assert!(html.contains("<figure class=\"chart\"><span class=\"chart-svg\" role=\"img\" aria-label=\"a &lt;chart&gt;\"><svg"));
        assert!(!html.contains("figures/x.svg"), "no link left to the file");
        // A figure the report does not have stays an image link.
        assert!(html.contains("elsewhere/y.svg"));
        assert!(
            html.contains("<h2 id=\"results-more\">")
                && html.contains("<h2 id=\"results-more-2\">")
        );
        assert!(html.contains("<a href=\"#results-more\">"));
        assert!(
            html.contains("<div class=\"table-wrap\"><table>") && html.contains("</table>\n</div>")
        );
        assert_eq!(html.matches("http://").count(), 1, "only the SVG namespace");
        assert_eq!(render("T <1>", md, "figures", &[figure("x.svg")]), html);
    }

    /// Markup from a manifest or a server is shown as text; a `javascript:` link goes nowhere;
    /// only the page's own script may run.
    #[test]
    fn markup_from_outside_is_text() {
        let md = "# <img src=x onerror=alert(1)>\n\n<script>alert(2)</script>\n\nintro <b onclick=alert(3)>x</b> [y](javascript:alert(4)) [z]( JaVaScRiPt:alert(5))\n\n| a |\n|---|\n| one<br>two |\n";
        let html = render("t", md, "figures", &[]);
        let body = html.split("<main>").nth(1).expect("main");
        let body = body
            .split("<script>")
            .next()
            .expect("before the page's script");
        for bad in ["<img", "<script", "<b ", "javascript:", "JaVaScRiPt"] {
            assert!(!body.contains(bad), "{bad} in\n{body}");
        }
        assert!(
            body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{body}"
        );
        assert!(
            body.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
            "{body}"
        );
        assert!(
            body.contains("one<br>two"),
            "the table's line break stays: {body}"
        );
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own script"
        );
        let hash = base64(&sha2::Sha256::digest(JS.as_bytes()));
        assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
        assert!(!html.contains("unsafe-inline'; script-src 'unsafe-inline"));
    }

    #[test]
    fn base64_is_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn anchors_are_plain() {
        assert_eq!(slug("Verdicts: TR114 (v2)"), "verdicts-tr114-v2");
        assert_eq!(slug("  "), "");
        assert_eq!(inline_svg("<?xml x?>\n<svg/>"), "<svg/>");
        assert_eq!(inline_svg("<svg/>"), "<svg/>");
    }
}

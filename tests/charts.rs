//! The charts' and the HTML page's promises on the report fixtures of `report.rs`: wide CIs
//! cut at the metric's range and marked, an agent's calls drawn apart, every point with its
//! value, and an HTML page that holds everything it shows.

use chimera::analysis::model::{Distribution, Stat};
use chimera::report::{Formats, render_figures, render_html, render_markdown, write_reports_as};

use crate::report::emulator;

/// A two-run CI that runs far past what an efficiency can be is cut at the metric's range
/// (and at 1.5 × the largest mean for the unbounded ones), marked, and kept whole in the hover
/// text; the axis stays near the data. An agent workflow's analysis and report calls are
/// drawn as separate boxes. Every mark carries its value.
#[test]
fn charts_cut_wide_whiskers_and_draw_the_calls_apart() {
    let mut a = emulator();
    let r = &mut a.reports[0];
    let wide = |mean: f64| Stat {
        n: 2,
        mean,
        sd: 30.0,
        ci95: Some((mean - 400.0, mean + 400.0)),
    };
    r.configs[0].published_efficiency = Some(wide(97.0));
    r.configs[0].true_efficiency = Some(wide(95.0));
    r.configs[0].equal_work_efficiency = Some(wide(96.0));
    r.distributions = ["analysis", "report"]
        .iter()
        .enumerate()
        .map(|(k, stage)| Distribution {
            group: r.configs[0].scenario.clone(),
            metric: "ttft_ms".into(),
            values: (0..8)
                .map(|i| 100.0 * (k as f64 + 1.0) + f64::from(i))
                .collect(),
            quantiles_of: None,
            stage: Some((*stage).into()),
        })
        .collect();
    let figs = render_figures(&a.reports[0]);
    let (_, eff) = &figs[0];
    // The axis: no tick below 0 or beyond 1.5 × the largest mean.
    for bad in [">-", ">-400<", ">400<", ">500<"] {
        assert!(!eff.contains(bad), "{bad} in\n{eff}");
    }
    assert!(eff.contains("<polygon"), "arrowheads:\n{eff}");
    assert!(eff.contains("whisker cut"), "{eff}");
    assert!(
        eff.contains("95 % CI -303.0 to 497.0 %")
            && eff.contains("whisker drawn from 0.0 to 100.0 %"),
        "the full CI on hover:\n{eff}"
    );
    insta::assert_snapshot!("report_efficiency_cut_whiskers_svg", eff);
    let (name, ttft) = &figs[1];
    assert!(name.ends_with("-ttft.svg"), "{name}");
    assert!(ttft.contains("analysis calls") && ttft.contains("report calls"));
    assert!(ttft.contains("by scenario and call") || ttft.contains("by group and call"));
    // 16 dots and 2 boxes, each with its value.
    assert_eq!(ttft.matches(r#"class="pt""#).count(), 18, "{ttft}");
    assert!(ttft.contains("· analysis calls: 100 ms"), "{ttft}");
    insta::assert_snapshot!("report_ttft_by_call_svg", ttft);
}

/// `--format html` writes one self-contained page per report, beside the Markdown or alone:
/// the Markdown's sections, its charts inline, nothing linked that is not in the file.
#[test]
fn html_reports_are_self_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = emulator();
    let both = Formats {
        markdown: true,
        html: true,
    };
    let w = write_reports_as(&a, dir.path(), both).expect("write");
    let page_path = w[0].html.as_ref().expect("html");
    assert_eq!(page_path, &dir.path().join("TR114_v2.html"));
    assert!(w[0].markdown.is_some() && !w[0].figures.is_empty());
    let page = std::fs::read_to_string(page_path).expect("read");
    assert_eq!(page, render_html(&a, &a.reports[0]));
    let md = render_markdown(&a, &a.reports[0], "figures");
    // Every section of the Markdown is a heading of the page.
    for line in md.lines().filter(|l| l.starts_with("## ")) {
        let text = line.trim_start_matches("## ");
        let words = text.split('`').next().unwrap_or(text).trim();
        assert!(page.contains(words), "section {text:?} missing");
    }
    // Every chart inline, with its hover text; no reference to a file or the network.
    for (name, svg) in render_figures(&a.reports[0]) {
        assert!(!page.contains(&name), "{name} is linked, not inlined");
        let first_mark = svg.lines().find(|l| l.contains(r#"class="pt""#));
        if let Some(mark) = first_mark {
            assert!(page.contains(mark), "{name}: {mark}");
        }
    }
    assert_eq!(page.matches("<svg ").count(), 4);
    for bad in ["src=", "<link", "@import", "url(", "https://", "<img"] {
        assert!(!page.contains(bad), "{bad} in the page");
    }
    assert!(page.contains("Content-Security-Policy") && page.contains("default-src 'none'"));
    // HTML alone: no Markdown, no figures directory.
    let alone = dir.path().join("alone");
    let html_only = Formats {
        markdown: false,
        html: true,
    };
    let w = write_reports_as(&a, &alone, html_only).expect("write");
    assert_eq!((w[0].markdown.as_ref(), w[0].figures.len()), (None, 0));
    assert!(!alone.join("figures").exists());
    assert_eq!(
        std::fs::read_to_string(alone.join("TR114_v2.html")).expect("read"),
        page
    );
}

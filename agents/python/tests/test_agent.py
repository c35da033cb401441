"""Tests of chimera's reference Python agent (no network: servers are local threads).

    python3 -m unittest discover -s agents/python/tests

The expectations of the ingest, template and extraction tests are those of the Rust unit
tests they port (src/workload/{ingest,templates,extract,mod}.rs). The server tests need the
pinned requirements (`ollama`, `httpx`) and are skipped without them.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(HERE)
AGENT = os.path.join(AGENT_DIR, "chimera_agent.py")
sys.path.insert(0, AGENT_DIR)

import chimera_agent  # noqa: E402
import chimera_backends as backends  # noqa: E402
import chimera_workload as w  # noqa: E402

try:
    import httpx  # noqa: F401

    HAVE_HTTPX = True
except ImportError:
    HAVE_HTTPX = False
try:
    import ollama  # noqa: F401

    HAVE_OLLAMA = True
except ImportError:
    HAVE_OLLAMA = False


def f(path, label, ts, nbytes=10):
    return w.IngestedFile(path, label, nbytes, ts)


def compact(v):
    """serde_json::to_string of a metrics value (compact; floats as serde_json writes them)."""
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + compact(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(compact(x) for x in v) + "]"
    if isinstance(v, float):
        return w.json_f64(v)
    return json.dumps(v, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# ingest.rs
# ---------------------------------------------------------------------------------------------


class IngestTests(unittest.TestCase):
    def test_summary_for_zero_files(self):
        self.assertEqual(w.summary_text([]), "Total files analyzed: 0\n\n")
        e = w.IngestResult.empty()
        self.assertEqual(e.files, 0)
        self.assertEqual(e.summary_text, "Total files analyzed: 0\n\n")
        self.assertEqual(
            compact(e.metrics),
            '{"data_types":[],"total_file_size_bytes":0,"total_files_analyzed":0}',
        )

    def test_summary_for_three_files(self):
        files = [
            f("reports/b.md", "markdown", 1_763_146_447),
            f("reports/a.json", "json", 1_759_943_251),
            f("csv_data/x.csv", "csv", 0),
        ]
        self.assertEqual(
            w.summary_text(files),
            "Total files analyzed: 3\n\n"
            "CSV Files (1)\n  - csv_data/x.csv\n  Latest modified: 1970-01-01 00:00:00 UTC\n\n"
            "JSON Files (1)\n  - reports/a.json\n  Latest modified: 2025-10-08 17:07:31 UTC\n\n"
            "MARKDOWN Files (1)\n  - reports/b.md\n  Latest modified: 2025-11-14 18:54:07 UTC\n\n",
        )

    def test_summary_for_101_files(self):
        files = [f("reports/c%02d.csv" % i, "csv", 100 + i) for i in range(28)]
        files += [f("reports/j%02d.json" % i, "json", 50) for i in range(44)]
        files += [f("reports/m%02d.md" % i, "markdown", None) for i in range(29)]
        s = w.summary_text(files)
        self.assertTrue(
            s.startswith("Total files analyzed: 101\n\nCSV Files (28)\n  - reports/c00.csv\n")
        )
        self.assertIn(
            "  - reports/c04.csv\n  ... and 23 more\n  Latest modified: 1970-01-01 00:02:07 UTC\n\nJSON Files (44)\n",
            s,
        )
        self.assertIn("  ... and 39 more\n  Latest modified: 1970-01-01 00:00:50 UTC\n\n", s)
        self.assertTrue(s.endswith("  - reports/m04.md\n  ... and 24 more\n\n"))
        self.assertNotIn("c05", s)

    def test_utc_formatting(self):
        self.assertEqual(w.format_utc(0), "1970-01-01 00:00:00 UTC")
        self.assertEqual(w.format_utc(1_763_146_410), "2025-11-14 18:53:30 UTC")
        self.assertEqual(w.format_utc(951_782_400), "2000-02-29 00:00:00 UTC")
        self.assertEqual(w.format_utc(-1), "1969-12-31 23:59:59 UTC")
        self.assertEqual(w.format_utc(2**63 - 1), None)
        # jiff's last second, and one past it.
        self.assertEqual(w.format_utc(253402207200), "9999-12-30 22:00:00 UTC")
        self.assertEqual(w.format_utc(253402207201), None)

    def test_numeric_strings(self):
        p = w.parse_numeric_str
        self.assertEqual(p(" 1,234.5 "), 1234.5)
        self.assertEqual(p("78.4%"), 78.4)
        self.assertEqual(p("1.5s"), 1.5)
        self.assertEqual(p("2%s%"), 2.0)
        self.assertIsNone(p("12 ms"))
        self.assertIsNone(p("gemma3"))
        self.assertIsNone(p(""))

    def test_rust_f64_syntax(self):
        r = w.parse_rust_f64
        self.assertEqual(r("1e3"), 1000.0)
        self.assertEqual(r("+.5"), 0.5)
        self.assertEqual(r("5."), 5.0)
        self.assertEqual(r("1E-2"), 0.01)
        self.assertEqual(r("inf"), float("inf"))
        self.assertEqual(r("-Infinity"), float("-inf"))
        self.assertTrue(r("NaN") != r("NaN"))
        for bad in ("1_000", " 1", "1 ", ".", "e5", "1e", "0x10", "١", "nan1", "in"):
            self.assertIsNone(r(bad), bad)

    def test_metric_names(self):
        self.assertTrue(w.should_capture_metric("Tokens_Per_Second"))
        self.assertTrue(w.should_capture_metric("p95_latency_ms"))
        self.assertTrue(w.should_capture_metric("results.eager.SpeedUp"))
        self.assertFalse(w.should_capture_metric("load_s"))
        self.assertFalse(w.should_capture_metric("eval_count"))

    def test_json_harvest_paths_and_first_value(self):
        v = w.load_json(
            '{"a":{"ttft_ms":[1,2],"throughput":"3.5 tok"},"tokens_s":"12.5s","x":1,"latency":true}'
        )
        m = {}
        w.harvest_json_metrics(v, "", m)
        m.setdefault("json_tokens_s", 0.0)
        self.assertEqual(
            compact(m), '{"json_a.ttft_ms[0]":1.0,"json_a.ttft_ms[1]":2.0,"json_tokens_s":12.5}'
        )
        m2 = {}
        w.harvest_json_metrics(3, "", m2)
        w.harvest_json_metrics([{"tok": 4}], "", m2)
        self.assertEqual(compact(m2), '{"json_[0].tok":4.0}')

    def test_non_finite_numbers_become_null(self):
        m = {}
        w.harvest_json_metrics({"tok": "inf", "ttft": "NaN"}, "", m)
        self.assertEqual(compact(m), '{"json_tok":null,"json_ttft":null}')

    def test_json_loading_refuses_what_serde_json_refuses(self):
        for bad in (
            "NaN",
            '{"a": Infinity}',
            "1e400",
            "-1e400",
            "1" * 400,
            '"\\ud800"',
            '{"\\udc00": 1}',
            "\ufeff{}",
            "{} x",
            "[1,]",
            "[" * 128 + "]" * 128,
        ):
            with self.assertRaises(w.LoadError, msg=bad[:40]):
                w.load_json(bad)
        self.assertEqual(w.load_json("[" * 127 + "]" * 127)[0:0], [])
        self.assertEqual(w.load_json(" 1 "), 1)
        # Past u64: an f64, like serde_json.
        self.assertEqual(w.load_json("18446744073709551616"), 18446744073709551616.0)
        self.assertEqual(w.load_json('"\\ud83d\\ude00"'), "\U0001f600")

    def test_csv_reader(self):
        rows = w.read_csv_rows(
            b'\xef\xbb\xbfmodel,prompt,tokens_per_second\r\ngemma3,"Give a quote, ""win""", 74.1 \n\n'
        )
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["prompt"], 'Give a quote, "win"')
        self.assertEqual(rows[0]["tokens_per_second"], "74.1")
        for bad in (b"a,b\n1\n", b'a,b\n"1,2\n', b"a\n\xff\n"):
            with self.assertRaises(w.LoadError):
                w.read_csv_rows(bad)
        self.assertEqual(w.read_csv_rows(b""), [])
        self.assertEqual(w.read_csv_rows(b"a,b\n"), [])
        self.assertEqual(w.read_csv_rows(b"a,b\n1,\n")[0]["b"], "")
        # A bare \r ends a record; a repeated header keeps its last column.
        self.assertEqual(w.read_csv_rows(b"a,a\r1,2\r"), [{"a": "2"}])

    def test_ingest_a_small_tree(self):
        with tempfile.TemporaryDirectory() as root:

            def write(rel, data):
                p = os.path.join(root, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as fh:
                    fh.write(data.encode() if isinstance(data, str) else data)

            write("reports/sub/run.csv", 'model,ttft_s,tokens_s\ng,0.5,"1,074.1"\ng,0.7,80\n')
            write("reports/a.json", '{"summary":{"latency_ms":12}}')
            write("reports/bad.json", "{not json")
            write("reports/notes.MD", "# T\n\n## S\n- x\n  # h\n")
            write("reports/skip.txt", "x")
            write("csv_data/d.md", "# not scanned here\n")
            write("csv_data/e.csv", "tokens_per_second\nfast\n")
            r = w.ingest(root)
            self.assertEqual(
                [e.path for e in r.entries],
                ["reports/a.json", "reports/notes.MD", "reports/sub/run.csv", "csv_data/e.csv"],
            )
            self.assertEqual(r.files, 4)
            self.assertEqual(len(r.skipped), 1)
            self.assertEqual(sum(1 for e in r.entries if e.label == "csv"), 2)
            m = r.metrics
            self.assertEqual(m["csv_ttft_s"], 0.5)
            self.assertEqual(m["csv_tokens_s"], 1074.1)
            self.assertEqual(m["csv_tokens_per_second"], "fast")
            self.assertEqual(m["json_summary.latency_ms"], 12.0)
            self.assertIsInstance(m["json_summary.latency_ms"], float)
            self.assertEqual(m["json_documents"], 1)
            self.assertEqual(m["markdown_heading_count"], 3)
            self.assertEqual(m["total_files_analyzed"], 4)
            self.assertEqual(m["data_types"], ["csv", "json", "markdown"])
            self.assertNotIn("csv_model", m)

    def test_ingest_walk_rules_and_summary_times(self):
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, "reports", "B"))
            os.makedirs(os.path.join(root, "reports", "a"))
            files = {
                "reports/B/z.csv": ("x_tok\n1\n", 1_763_146_410),
                "reports/a/y.csv": ("x_tok\n2\n", 1_700_000_000),
                "reports/.csv": ("x_tok\n3\n", 5),  # no extension (Rust's rule)
                "reports/..csv": ("x_tok\n4\n", 6),  # extension "csv" for Rust
                "reports/Z.JSON": ('{"speed": "7"}', 1_759_944_051),
            }
            for rel, (data, ts) in files.items():
                p = os.path.join(root, rel)
                with open(p, "w") as fh:
                    fh.write(data)
                os.utime(p, (ts, ts))
            # A symlinked directory is not entered; a symlinked file counts.
            os.symlink(os.path.join(root, "reports", "a"), os.path.join(root, "reports", "link"))
            os.symlink(
                os.path.join(root, "reports", "a", "y.csv"), os.path.join(root, "reports", "y2.csv")
            )
            r = w.ingest(root)
            self.assertEqual(
                [e.path for e in r.entries],
                ["reports/..csv", "reports/B/z.csv", "reports/Z.JSON", "reports/a/y.csv", "reports/y2.csv"],
            )
            # Byte order: "..csv" < "B" < "Z.JSON" < "a"; the first CSV value wins.
            self.assertEqual(r.metrics["csv_x_tok"], 4.0)
            self.assertEqual(r.metrics["json_speed"], 7.0)
            self.assertEqual(
                r.summary_text,
                "Total files analyzed: 5\n\n"
                "CSV Files (4)\n  - reports/..csv\n  - reports/B/z.csv\n  - reports/a/y.csv\n"
                "  - reports/y2.csv\n  Latest modified: 2025-11-14 18:53:30 UTC\n\n"
                "JSON Files (1)\n  - reports/Z.JSON\n  Latest modified: 2025-10-08 17:20:51 UTC\n\n",
            )

    def test_missing_root_is_an_empty_ingest(self):
        r = w.ingest("/nonexistent/chimera-corpus")
        self.assertEqual(r.files, 0)
        self.assertEqual(r.summary_text, "Total files analyzed: 0\n\n")


# ---------------------------------------------------------------------------------------------
# templates.rs and number formatting
# ---------------------------------------------------------------------------------------------


class TemplateTests(unittest.TestCase):
    def test_fill_is_single_pass_and_keeps_unknown_braces(self):
        look = lambda n: "{a}{b}" if n == "a" else None  # noqa: E731
        self.assertEqual(w.fill("x{a}y", look), "x{a}{b}y")
        self.assertEqual(w.fill("{b} {a", look), "{b} {a")
        self.assertEqual(w.fill("{{a}}", look), "{{a}{b}}")
        self.assertEqual(w.fill("}{", look), "}{")
        self.assertEqual(w.fill("", look), "")
        self.assertEqual(w.fill("{\u00e4}{a}", look), "{\u00e4}{a}{b}")

    def test_options_render_like_display_opt(self):
        o = {"num_gpu": 80, "temperature": 0.8, "top_p": 0.9, "repeat_penalty": 1.1}
        t = "{num_gpu}/{num_ctx}/{temperature}/{top_p}/{top_k}/{repeat_penalty}/{seed}"
        self.assertEqual(w.fill_analysis(t, "", o), "80/default/0.8/0.9/default/1.1/{seed}")
        self.assertEqual(w.fill_analysis("{data_summary}|{temperature}", "S", {}), "S|default")
        self.assertEqual(w.fill_analysis("{temperature}", "", {"temperature": 1.0}), "1")

    def test_report_filling(self):
        ex = ("Sum", ["f1", "f2"], [])
        m = {"total_files_analyzed": 0, "data_types": [], "csv_tokens_s": 74.0}
        t = (
            "- Summary: {summary}\n- Key Findings:\n{key_findings}\n- Performance Metrics: "
            "{performance_metrics}\n- Recommendations:\n{recommendations}\n{num_ctx}"
        )
        self.assertEqual(
            w.fill_report(t, ex, m, {}),
            '- Summary: Sum\n- Key Findings:\n1. f1\n2. f2\n- Performance Metrics: {\n  "csv_tokens_s": 74.0,\n  "data_types": [],\n  "total_files_analyzed": 0\n}\n- Recommendations:\nNone provided\ndefault',
        )

    def test_floats_as_serde_json_writes_them(self):
        cases = [
            (74.0, "74.0"),
            (0.5, "0.5"),
            (1074.1, "1074.1"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e20, "1.5e+20"),
            (1e-4, "0.0001"),
            (1e-5, "0.00001"),
            (1e-6, "1e-6"),
            (1.5e-7, "1.5e-7"),
            (-2.25, "-2.25"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ]
        for x, want in cases:
            self.assertEqual(w.json_f64(x), want, repr(x))

    def test_rust_display_of_f64(self):
        cases = [
            (1.0, "1"),
            (0.6, "0.6"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e20, "100000000000000000000"),
            (1e-7, "0.0000001"),
            (1.5e-7, "0.00000015"),
            (123.456, "123.456"),
            (float("nan"), "NaN"),
            (float("inf"), "inf"),
        ]
        for x, want in cases:
            self.assertEqual(w.rust_display_f64(x), want, repr(x))

    def test_pretty_json_nesting_and_strings(self):
        v = {"b": [1, "x\"\n\u00e9\x7f\x01"], "a": {}, "c": None}
        self.assertEqual(
            w.metrics_json(v),
            '{\n  "a": {},\n  "b": [\n    1,\n    "x\\"\\n\u00e9\x7f\\u0001"\n  ],\n  "c": null\n}',
        )


# ---------------------------------------------------------------------------------------------
# extract.rs
# ---------------------------------------------------------------------------------------------

ANSWER = (
    "Okay, here's a structured performance analysis of the provided benchmark data.\n"
    "\n"
    "**1. Executive Summary**\n"
    "\n"
    "This analysis examines a dataset of 101 benchmark files.\n"
    "The data reveals a significant concentration of Gemma 3 parameter tuning files.\n"
    "\n"
    "**2. Key Performance Findings**\n"
    "\n"
    "* **Recency:** The latest modification date of 2025-11-14 suggests current data.\n"
    "* **File Type Distribution:** JSON files dominate (44 of 101).\n"
    "\n"
    "## 3. Performance Metrics Analysis\n"
    "\n"
    "- Throughput should be measured per model.\n"
    "\n"
    "## 4. Recommendations for Optimization\n"
    "\n"
    "1. **Standardize naming:** Consider a single repository.\n"
    "2) We recommend automated benchmarking.\n"
)


class ExtractTests(unittest.TestCase):
    def test_summary_runs_from_the_heading_to_the_next_hash_line(self):
        self.assertEqual(
            w.summary_section(ANSWER),
            "This analysis examines a dataset of 101 benchmark files.\n"
            "The data reveals a significant concentration of Gemma 3 parameter tuning files.\n"
            "**2. Key Performance Findings**\n"
            "* **Recency:** The latest modification date of 2025-11-14 suggests current data.\n"
            "* **File Type Distribution:** JSON files dominate (44 of 101).",
        )

    def test_summary_heading_variants(self):
        s = w.summary_section
        self.assertEqual(s("## Executive Summary\nbody\n# Next\nx"), "body")
        self.assertEqual(s("# Summary\nbody\n# Next\nx"), "# Summary\nbody\n# Next\nx")
        self.assertEqual(s("SUMMARY\n  a  \n\nb\n#x"), "a\nb")
        self.assertEqual(s("## Summary\nl2\nl3\nl4\nl5\nl6"), "## Summary\nl2\nl3\nl4\nl5")
        self.assertEqual(s("  a \n\n b\n"), "a\n\nb")
        self.assertEqual(s("Executive Summary\n# Next"), "Executive Summary\n# Next")
        self.assertEqual(s(""), "")

    def test_findings_and_recommendations(self):
        summary, findings, recs = w.extract(ANSWER)
        self.assertEqual(findings, ["Key Performance Findings**"])
        self.assertEqual(
            recs,
            [
                "**Recency:** The latest modification date of 2025-11-14 suggests current data.",
                "Throughput should be measured per model.",
                "**Standardize naming:** Consider a single repository.",
                "We recommend automated benchmarking.",
            ],
        )

    def test_clean_bullet_rules(self):
        for line, want in [
            ("- item", "item"),
            ("* **Bold:** x", "**Bold:** x"),
            ("\u2022 3) three", "3) three"),
            ("\u20223) three", "three"),
            ("12. twelve", "twelve"),
            ("101 files analysed", "files analysed"),
            ("-*-1.2.3) x ", "x"),
            ("plain", "plain"),
        ]:
            self.assertEqual(w.clean_bullet(line), want, line)

    def test_keyword_lines_are_limited_and_skip_headings(self):
        text = "\n".join(["- key point %d" % i for i in range(15)] + ["# key heading"])
        got = w.lines_with_keywords(text, w.FINDING_KEYWORDS, 10)
        self.assertEqual(len(got), 10)
        self.assertEqual(got[0], "key point 0")
        self.assertEqual(w.lines_with_keywords("# Key\n\n", w.FINDING_KEYWORDS, 10), [])
        self.assertEqual(
            w.lines_with_keywords("MONKEY business", w.FINDING_KEYWORDS, 10), ["MONKEY business"]
        )

    def test_rust_lines_and_trim(self):
        self.assertEqual(w.rust_lines("foo\nbar\n\r\nbaz\r"), ["foo", "bar", "", "baz\r"])
        self.assertEqual(w.rust_lines("a\n"), ["a"])
        self.assertEqual(w.rust_lines("\n"), [""])
        self.assertEqual(w.rust_lines(""), [])
        # \x1c-\x1f are whitespace to Python's str.strip, not to Rust's trim; U+2028 splits
        # Python's splitlines, not Rust's lines.
        self.assertEqual(w.rust_trim("\x1c a \u3000"), "\x1c a")
        self.assertEqual(w.rust_lines("a\u2028b\x0bc"), ["a\u2028b\x0bc"])


# ---------------------------------------------------------------------------------------------
# mod.rs: the workflow
# ---------------------------------------------------------------------------------------------

REPORT_T = (
    "- Summary: {summary}\n- Key Findings:\n{key_findings}\n- Performance Metrics: "
    "{performance_metrics}\n- Recommendations:\n{recommendations}"
)


class WorkflowTests(unittest.TestCase):
    def test_state_machine_prompts(self):
        wf = w.AgentWorkflow("A:\n{data_summary}\n\nend", REPORT_T, 0, {}, w.IngestResult.empty())
        self.assertEqual(wf.analysis_prompt(), "A:\nTotal files analyzed: 0\n\n\n\nend")
        self.assertEqual(
            wf.report_prompt("\n\nExecutive Summary\nNo data.\n## Next\n- We should add data.\n"),
            '- Summary: No data.\n- Key Findings:\nNone provided\n- Performance Metrics: {\n  "data_types": [],\n  "total_file_size_bytes": 0,\n  "total_files_analyzed": 0\n}\n- Recommendations:\n1. We should add data.',
        )
        c = w.AgentWorkflow(
            "Chimera at temp {temperature}, ctx {num_ctx}:\n{data_summary}",
            "R {summary} | {recommendations}",
            None,
            {"temperature": 0.6},
            w.IngestResult.empty(),
        )
        self.assertEqual(c.analysis_prompt(), "Chimera at temp 0.6, ctx default:\nTotal files analyzed: 0\n\n")
        self.assertEqual(c.report_prompt("x"), "R x | None provided")

    def test_layout_drift(self):
        with self.assertRaises(w.LayoutDrift) as cm:
            w.AgentWorkflow("a", "r", 101, {}, w.IngestResult.empty())
        self.assertEqual(
            str(cm.exception),
            "ingest found 0 files, the manifest expects 101 (corpus layout drift)",
        )


# ---------------------------------------------------------------------------------------------
# Records: chimera's parse_record, ported
# ---------------------------------------------------------------------------------------------

# The fields chimera accepts, from the committed schema of a record line (generated from
# chimera's types: `chimera schema --agent-record`), so this test cannot drift from chimera.
RECORD_FIELDS = set(
    json.loads(
        open(
            os.path.join(
                os.path.dirname(os.path.abspath(__file__)),
                "..", "..", "..", "schemas", "agent-record.schema.json",
            ),
            encoding="utf-8",
        ).read()
    )["properties"]
)


def check_record(tc, line):
    """What chimera's `parse_record` accepts (deny_unknown_fields, types, finite >= 0)."""
    rec = json.loads(line)
    tc.assertIsInstance(rec, dict)
    tc.assertLessEqual(set(rec), RECORD_FIELDS, line)
    tc.assertIn(rec["stage"], ("analysis", "report", "single", "persona"))

    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and v != float("inf")

    def uint(v, bits):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << bits)

    tc.assertTrue(num(rec["sent_at_unix_ms"]))
    tc.assertTrue(num(rec["e2e_ms"]))
    if "index" in rec and rec["index"] is not None:
        tc.assertTrue(uint(rec["index"], 32))
    if "chunks" in rec:
        tc.assertTrue(uint(rec["chunks"], 32), line)
    if "itl_ms" in rec:
        tc.assertIsInstance(rec["itl_ms"], list)
        tc.assertTrue(all(num(x) for x in rec["itl_ms"]))
    for k in ("ttft_ms", "load_ms", "prompt_eval_ms", "eval_ms", "total_ms"):
        if rec.get(k) is not None:
            tc.assertTrue(num(rec[k]), k)
    for k in ("prompt_tokens", "output_tokens"):
        if rec.get(k) is not None:
            tc.assertTrue(uint(rec[k], 64), k)
    if rec.get("done_reason") is not None:
        tc.assertIsInstance(rec["done_reason"], str)
    if rec.get("error") is not None:
        e = rec["error"]
        tc.assertLessEqual(set(e), {"kind", "message", "status"})
        tc.assertIsInstance(e["kind"], str)
        tc.assertIsInstance(e["message"], str)
        if e.get("status") is not None:
            tc.assertTrue(uint(e["status"], 16))
    return rec


# ---------------------------------------------------------------------------------------------
# A scripted local server
# ---------------------------------------------------------------------------------------------


class Route(object):
    """A reply: status, content type, body pieces (sent as HTTP chunks `gap_s` apart), or a
    fixed body with Content-Length."""

    def __init__(self, status=200, ctype="application/x-ndjson", pieces=(), gap_s=0.02, body=None, delay_s=0.0):
        self.status = status
        self.ctype = ctype
        self.pieces = [p.encode() if isinstance(p, str) else p for p in pieces]
        self.gap_s = gap_s
        self.body = body.encode() if isinstance(body, str) else body
        self.delay_s = delay_s


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        self.server.requests.append((self.path, parsed))
        route = self.server.routes.get(self.path)
        if route is None:
            route = Route(404, "text/plain", body="404 page not found")
        if route.delay_s:
            time.sleep(route.delay_s)
        self.send_response(route.status)
        self.send_header("Content-Type", route.ctype)
        if route.body is not None:
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)
            self.wfile.flush()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, p in enumerate(route.pieces):
            if i:
                time.sleep(route.gap_s)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up (timeout tests) is expected


class LocalServer(object):
    def __init__(self):
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = {}
        self.httpd.requests = []
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def routes(self):
        return self.httpd.routes

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def job_dict(url, protocol_kind="ollama", **over):
    d = {
        "protocol": 1,
        "cell_id": "c0ffee",
        "agent": "A",
        "role": "collector",
        "url": url,
        "protocol_kind": protocol_kind,
        "model": "gemma3:270m",
        "api": "generate",
        "stream": True,
        "keep_alive": None,
        "options": {},
        "timeout_s": 5.0,
        "task": {"kind": "persona", "prompt": "hi"},
        "corpus_dir": None,
        "records": "/dev/null",
        "seed": 1,
        "runtime": None,
        "language": "python",
    }
    d.update(over)
    return d


def make_job(url, protocol_kind="ollama", **over):
    return chimera_agent.Job(job_dict(url, protocol_kind, **over))


def ndjson(*objs):
    return [json.dumps(o) + "\n" for o in objs]


def sse(*objs):
    return ["data: %s\n\n" % (o if isinstance(o, str) else json.dumps(o)) for o in objs]


OLLAMA_FINAL = {
    "model": "gemma3:270m",
    "created_at": "2025-01-01T00:00:00Z",
    "response": "",
    "done": True,
    "done_reason": "stop",
    "total_duration": 912_345_678,
    "load_duration": 1_500_000,
    "prompt_eval_count": 12,
    "prompt_eval_duration": 312_904_117,
    "eval_count": 3,
    "eval_duration": 60_000_000,
}


def ollama_text(t):
    return {"model": "gemma3:270m", "created_at": "2025-01-01T00:00:00Z", "response": t, "done": False}


class ServerCase(unittest.TestCase):
    def setUp(self):
        self.server = LocalServer()

    def tearDown(self):
        self.server.close()


@unittest.skipUnless(HAVE_OLLAMA, "the ollama package is not installed (pip install -r requirements.txt)")
class OllamaTests(ServerCase):
    def send(self, job, prompt="hi"):
        b = backends.OllamaBackend(job)
        try:
            return b.send(prompt, "single", 3)
        finally:
            b.close()

    def test_streamed_generate(self):
        self.server.routes["/api/generate"] = Route(
            pieces=ndjson(ollama_text("Hello"), ollama_text(""), ollama_text(" world"), ollama_text("!"), OLLAMA_FINAL)
        )
        job = make_job(
            self.server.url,
            options={"temperature": 1.0, "num_ctx": 512},
            keep_alive="300",
        )
        rec, text = self.send(job, "say hi")
        check_record(self, json.dumps(rec))
        self.assertEqual(text, "Hello world!")
        self.assertNotIn("error", rec)
        self.assertEqual((rec["stage"], rec["index"], rec["chunks"]), ("single", 3, 5))
        self.assertEqual(len(rec["itl_ms"]), 2, "three text chunks, the empty one is no token")
        self.assertGreaterEqual(rec["itl_ms"][0], 15.0, "an empty chunk lies between them")
        self.assertGreater(rec["e2e_ms"], rec["ttft_ms"])
        self.assertEqual(rec["prompt_tokens"], 12)
        self.assertEqual(rec["output_tokens"], 3)
        self.assertEqual(rec["prompt_eval_ms"], 312.904117)
        self.assertEqual(rec["load_ms"], 1.5)
        self.assertEqual(rec["eval_ms"], 60.0)
        self.assertEqual(rec["total_ms"], 912.345678)
        self.assertEqual(rec["done_reason"], "stop")
        path, body = self.server.requests[0]
        self.assertEqual(path, "/api/generate")
        self.assertEqual(body["prompt"], "say hi")
        self.assertEqual(body["options"], {"temperature": 1.0, "num_ctx": 512})
        self.assertEqual(body["keep_alive"], 300)
        self.assertTrue(body["stream"])

    def test_streamed_chat_and_no_options(self):
        final = dict(OLLAMA_FINAL, message={"role": "assistant", "content": ""})
        del final["response"]
        self.server.routes["/api/chat"] = Route(
            pieces=ndjson(
                {"message": {"role": "assistant", "content": "Hi"}, "done": False},
                {"message": {"role": "assistant", "content": " there"}, "done": False},
                final,
            )
        )
        rec, text = self.send(make_job(self.server.url, api="chat"))
        self.assertEqual(text, "Hi there")
        self.assertEqual(rec["chunks"], 3)
        _, body = self.server.requests[0]
        self.assertEqual(body["messages"], [{"role": "user", "content": "hi"}])
        self.assertNotIn("options", body)
        self.assertNotIn("keep_alive", body)

    def test_not_streamed(self):
        one = dict(OLLAMA_FINAL, response="Whole reply")
        self.server.routes["/api/generate"] = Route(body=json.dumps(one), ctype="application/json")
        rec, text = self.send(make_job(self.server.url, stream=False))
        self.assertEqual(text, "Whole reply")
        self.assertEqual(rec["chunks"], 1)
        self.assertNotIn("ttft_ms", rec)
        self.assertNotIn("itl_ms", rec)
        self.assertEqual(rec["output_tokens"], 3)

    def test_missing_model_is_model_not_found(self):
        self.server.routes["/api/generate"] = Route(
            404, "application/json", body='{"error":"model \'nope\' not found"}'
        )
        rec, _ = self.send(make_job(self.server.url))
        check_record(self, json.dumps(rec))
        self.assertEqual(rec["error"], {"kind": "model_not_found", "message": "model 'nope' not found", "status": 404})

    def test_statuses(self):
        for status, kind in ((400, "bad_request"), (503, "queue_full"), (500, "server_error"), (429, "http_status")):
            self.server.routes["/api/generate"] = Route(status, "application/json", body='{"error":"no"}')
            rec, _ = self.send(make_job(self.server.url))
            self.assertEqual((rec["error"]["kind"], rec["error"]["status"]), (kind, status))

    def test_mid_stream_error_and_truncation(self):
        self.server.routes["/api/generate"] = Route(pieces=ndjson(ollama_text("a"), {"error": "boom"}))
        rec, text = self.send(make_job(self.server.url))
        self.assertEqual(rec["error"]["kind"], "stream_error")
        self.assertEqual(rec["error"]["message"], "boom")
        self.assertEqual(text, "a")
        self.assertNotIn("output_tokens", rec)
        self.server.routes["/api/generate"] = Route(pieces=ndjson(ollama_text("a"), ollama_text("b")))
        rec, _ = self.send(make_job(self.server.url))
        self.assertEqual(rec["error"]["kind"], "truncated")
        self.assertEqual(rec["chunks"], 2)
        self.server.routes["/api/generate"] = Route(pieces=["{not json\n"])
        rec, _ = self.send(make_job(self.server.url))
        self.assertEqual(rec["error"]["kind"], "malformed_response")

    def test_connection_refused(self):
        rec, _ = self.send(make_job("http://127.0.0.1:%d" % free_port()))
        check_record(self, json.dumps(rec))
        self.assertEqual(rec["error"]["kind"], "connection_refused")
        self.assertNotIn("status", rec["error"])

    def test_timeout(self):
        self.server.routes["/api/generate"] = Route(pieces=ndjson(OLLAMA_FINAL), delay_s=1.0)
        rec, _ = self.send(make_job(self.server.url, timeout_s=0.2))
        self.assertEqual(rec["error"]["kind"], "timeout")
        self.assertLess(rec["e2e_ms"], 900)


@unittest.skipUnless(HAVE_HTTPX, "httpx is not installed (pip install -r requirements.txt)")
class OpenAiTests(ServerCase):
    def send(self, job, prompt="hi"):
        b = backends.OpenAiBackend(job)
        try:
            return b.send(prompt, "analysis", 0)
        finally:
            b.close()

    def test_streamed_completions(self):
        self.server.routes["/v1/completions"] = Route(
            ctype="text/event-stream",
            pieces=[": ping\n\n"]
            + sse(
                {"choices": [{"text": "a", "index": 0, "finish_reason": None}]},
                {"choices": [{"text": " b", "index": 0, "finish_reason": None}]},
                {"choices": [{"text": "", "index": 0, "finish_reason": "length"}]},
                {
                    "choices": [],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2},
                    "timings": {"prompt_n": 4, "prompt_ms": 12.5, "predicted_n": 2, "predicted_ms": 30.25},
                },
                "[DONE]",
            ),
        )
        job = make_job(
            self.server.url,
            "openai",
            options={"num_gpu": 80, "num_ctx": 4096, "num_predict": 16, "temperature": 0.0, "top_k": 40, "seed": 7},
            keep_alive="5m",
        )
        rec, text = self.send(job)
        check_record(self, json.dumps(rec))
        self.assertEqual(text, "a b")
        self.assertEqual(rec["chunks"], 4, "three choices chunks and the usage chunk; not [DONE]")
        self.assertEqual(len(rec["itl_ms"]), 1)
        self.assertGreaterEqual(rec["itl_ms"][0], 10.0)
        self.assertEqual((rec["prompt_tokens"], rec["output_tokens"]), (5, 2), "usage wins over timings")
        self.assertEqual((rec["prompt_eval_ms"], rec["eval_ms"]), (12.5, 30.25))
        self.assertEqual(rec["done_reason"], "length")
        self.assertNotIn("load_ms", rec)
        path, body = self.server.requests[0]
        self.assertEqual(path, "/v1/completions")
        self.assertEqual(
            body,
            {
                "model": "gemma3:270m",
                "prompt": "hi",
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 16,
                "temperature": 0.0,
                "top_k": 40,
                "seed": 7,
            },
        )

    def test_streamed_chat_with_timings_only(self):
        self.server.routes["/v1/chat/completions"] = Route(
            ctype="text/event-stream",
            pieces=sse(
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
                {
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "timings": {"prompt_n": 9, "prompt_ms": 1.0, "predicted_n": 1, "predicted_ms": 2.0},
                },
            )
            + ["data: [DONE]"],
        )
        rec, text = self.send(make_job(self.server.url, "openai", api="chat"))
        self.assertEqual(text, "Hi")
        self.assertNotIn("error", rec)
        self.assertEqual((rec["prompt_tokens"], rec["output_tokens"]), (9, 1))
        self.assertNotIn("itl_ms", rec)
        _, body = self.server.requests[0]
        self.assertEqual(body["messages"], [{"role": "user", "content": "hi"}])

    def test_not_streamed(self):
        self.server.routes["/v1/chat/completions"] = Route(
            ctype="application/json",
            body=json.dumps(
                {
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 4, "completion_tokens": 3},
                }
            ),
        )
        rec, text = self.send(make_job(self.server.url, "openai", api="chat", stream=False))
        self.assertEqual(text, "Hello!")
        self.assertEqual(rec["chunks"], 1)
        self.assertNotIn("ttft_ms", rec)
        self.assertEqual(rec["output_tokens"], 3)
        _, body = self.server.requests[0]
        self.assertNotIn("stream_options", body)
        self.assertFalse(body["stream"])

    def test_forced_length_sends_max_tokens_ignore_eos_and_min_tokens(self):
        self.server.routes["/v1/completions"] = Route(
            ctype="application/json",
            body=json.dumps(
                {
                    "choices": [{"index": 0, "text": "x" * 5, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 4, "completion_tokens": 48},
                }
            ),
        )
        job = make_job(
            self.server.url,
            "openai",
            stream=False,
            options={"num_predict": 16, "temperature": 0.5},
            force_output_tokens=48,
        )
        rec, _ = self.send(job)
        self.assertEqual(rec["output_tokens"], 48)
        _, body = self.server.requests[0]
        self.assertEqual(
            body,
            {
                "model": "gemma3:270m",
                "prompt": "hi",
                "stream": False,
                "max_tokens": 48,
                "temperature": 0.5,
                "ignore_eos": True,
                "min_tokens": 48,
            },
        )
        plain = backends.openai_body(make_job(self.server.url, "openai", options={"num_predict": 16}), "hi")
        self.assertEqual(plain["max_tokens"], 16)
        self.assertNotIn("ignore_eos", plain)
        self.assertNotIn("min_tokens", plain)

    def test_forced_length_must_be_a_u32(self):
        for bad in ("48", -1, 2**32, 1.5, True):
            with self.assertRaises(chimera_agent.JobError, msg=repr(bad)):
                make_job(self.server.url, "openai", force_output_tokens=bad)
        self.assertIsNone(make_job(self.server.url, "openai").force_output_tokens)
        self.assertIsNone(make_job(self.server.url, "openai", force_output_tokens=None).force_output_tokens)

    def test_stream_ends_and_errors(self):
        text = {"choices": [{"text": "a", "finish_reason": None}]}
        cases = [
            (sse(text), "truncated"),
            (sse(text) + ['data: {"choices":[{"te'], "truncated"),
            (sse(text) + ['data: {"choices":[{"te\n\n'], "malformed_response"),
            (sse(text, {"choices": [{"text": "", "finish_reason": "stop"}]}), None),
            (sse({"id": 1}), "malformed_response"),
            (sse(text, {"error": {"code": 500, "message": "boom", "type": "server_error"}}), "stream_error"),
            (sse(text) + ['error: {"message":"boom"}\n\n'], "stream_error"),
            (sse(text) + ['event: error\ndata: {"message":"boom"}\n\n'], "stream_error"),
        ]
        for pieces, kind in cases:
            self.server.routes["/v1/completions"] = Route(ctype="text/event-stream", pieces=pieces)
            rec, got = self.send(make_job(self.server.url, "openai"))
            check_record(self, json.dumps(rec))
            self.assertEqual(rec.get("error", {}).get("kind"), kind, pieces)
            if pieces[0] == sse(text)[0]:
                self.assertEqual(got, "a", "the text before the failure is kept")
            if kind == "stream_error":
                self.assertEqual(rec["error"]["message"], "boom")
                self.assertEqual(rec["error"]["status"], 200, "the head's status, as chimera's client")

    def test_statuses(self):
        cases = [
            (404, '{"error":{"code":404,"message":"The model `x` does not exist.","type":"not_found_error"}}', "model_not_found", "The model `x` does not exist."),
            (404, '{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}', "http_status", "File Not Found"),
            (503, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}', "queue_full", "Loading model"),
            (400, '{"message":"bad prompt"}', "bad_request", "bad prompt"),
            (500, "", "server_error", "HTTP 500 Internal Server Error"),
        ]
        for status, body, kind, message in cases:
            self.server.routes["/v1/completions"] = Route(status, "application/json", body=body)
            rec, _ = self.send(make_job(self.server.url, "openai"))
            self.assertEqual(rec["error"], {"kind": kind, "message": message, "status": status})

    def test_connection_refused_and_timeout(self):
        rec, _ = self.send(make_job("http://127.0.0.1:%d" % free_port(), "openai"))
        self.assertEqual(rec["error"]["kind"], "connection_refused")
        self.server.routes["/v1/completions"] = Route(ctype="text/event-stream", pieces=sse("[DONE]"), delay_s=1.0)
        rec, _ = self.send(make_job(self.server.url, "openai", timeout_s=0.2))
        self.assertEqual(rec["error"]["kind"], "timeout")


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


class CliCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write_job(self, d, name="job.json"):
        p = os.path.join(self.dir, name)
        with open(p, "w") as fh:
            json.dump(d, fh)
        return p

    def agent(self, *args):
        return subprocess.run(
            [sys.executable, AGENT] + list(args),
            capture_output=True,
            text=True,
            timeout=60,
        )


WORKFLOW_TASK = {
    "kind": "agent_workflow",
    "analysis_template": "A:\n{data_summary}\n\nend {temperature} {seed}",
    "report_template": REPORT_T,
    "expected_files": 0,
}


class PrintPromptsTests(CliCase):
    def test_workflow_prompts_with_and_without_analysis_text(self):
        job = self.write_job(
            job_dict("http://127.0.0.1:1", task=WORKFLOW_TASK, options={"temperature": 1.0}, records=os.path.join(self.dir, "r"))
        )
        r = self.agent("--job", job, "--print-prompts")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(
            json.loads(r.stdout),
            {"analysis_prompt": "A:\nTotal files analyzed: 0\n\n\n\nend 1 {seed}", "report_prompt": ""},
        )
        text = os.path.join(self.dir, "analysis.txt")
        with open(text, "w") as fh:
            fh.write("\n\nExecutive Summary\nNo data.\n## Next\n- We should add data.\n")
        r = self.agent("--job", job, "--print-prompts", "--analysis-text", text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(
            json.loads(r.stdout)["report_prompt"],
            '- Summary: No data.\n- Key Findings:\nNone provided\n- Performance Metrics: {\n  "data_types": [],\n  "total_file_size_bytes": 0,\n  "total_files_analyzed": 0\n}\n- Recommendations:\n1. We should add data.',
        )
        self.assertFalse(os.path.exists(os.path.join(self.dir, "r")), "nothing is sent or written")

    def test_workflow_prompts_of_a_corpus(self):
        corpus = os.path.join(self.dir, "corpus")
        os.makedirs(os.path.join(corpus, "reports"))
        p = os.path.join(corpus, "reports", "r\u00e9sum\u00e9.csv")
        with open(p, "w", encoding="utf-8") as fh:
            fh.write("tokens_s,latency_ms\n74,\u00e9\n")
        os.utime(p, (1_763_146_410, 1_763_146_410))
        task = dict(WORKFLOW_TASK, expected_files=1, analysis_template="{data_summary}")
        job = self.write_job(job_dict("http://127.0.0.1:1", task=task, corpus_dir=corpus))
        text = os.path.join(self.dir, "a.txt")
        with open(text, "w") as fh:
            fh.write("x")
        r = self.agent("--job", job, "--print-prompts", "--analysis-text", text)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        self.assertEqual(
            got["analysis_prompt"],
            "Total files analyzed: 1\n\nCSV Files (1)\n  - reports/r\u00e9sum\u00e9.csv\n"
            "  Latest modified: 2025-11-14 18:53:30 UTC\n\n",
        )
        self.assertIn('\n  "csv_latency_ms": "\u00e9",\n  "csv_tokens_s": 74.0,\n', got["report_prompt"])

    def test_other_tasks(self):
        job = self.write_job(job_dict("http://127.0.0.1:1", task={"kind": "single_inference", "prompts": ["a", "\u00e9"]}))
        r = self.agent("--job", job, "--print-prompts")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {"prompts": ["a", "\u00e9"]}))
        job = self.write_job(job_dict("http://127.0.0.1:1", task={"kind": "persona", "prompt": "You are X"}))
        r = self.agent("--job", job, "--print-prompts")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {"prompts": ["You are X"]}))

    def test_layout_drift_exits_3_without_a_record(self):
        records = os.path.join(self.dir, "records.jsonl")
        job = self.write_job(
            job_dict("http://127.0.0.1:1", task=dict(WORKFLOW_TASK, expected_files=101), records=records)
        )
        for extra in ((), ("--print-prompts",)):
            r = self.agent("--job", job, *extra)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("ingest found 0 files, the manifest expects 101 (corpus layout drift)", r.stderr)
            self.assertFalse(os.path.exists(records))

    def test_job_errors_exit_2(self):
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as fh:
            fh.write("{not json")
        r = self.agent("--job", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn(bad, r.stderr)
        r = self.agent("--job", os.path.join(self.dir, "missing.json"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.json", r.stderr)
        for over, needle in (
            ({"extra": 1}, "unknown field `extra`"),
            ({"options": {"temp": 1}}, "unknown field `temp`"),
            ({"task": {"kind": "persona"}}, "missing field `prompt`"),
            ({"task": {"kind": "dance"}}, "unknown variant"),
            ({"protocol": 2}, "version 2"),
            ({"stream": "yes"}, "`stream`"),
            ({"options": {"num_ctx": 1.5}}, "options.num_ctx"),
        ):
            r = self.agent("--job", self.write_job(job_dict("http://127.0.0.1:1", **over)))
            self.assertEqual(r.returncode, 2, over)
            self.assertIn(needle, r.stderr)
        r = self.agent()
        self.assertEqual(r.returncode, 2)
        r = self.agent("--job", self.write_job(job_dict("http://127.0.0.1:1")), "--analysis-text", "x")
        self.assertEqual(r.returncode, 2)


@unittest.skipUnless(HAVE_OLLAMA and HAVE_HTTPX, "the pinned requirements are not installed")
class RunTests(CliCase):
    def setUp(self):
        CliCase.setUp(self)
        self.server = LocalServer()

    def tearDown(self):
        self.server.close()
        CliCase.tearDown(self)

    def records(self, path):
        with open(path) as fh:
            return [check_record(self, line) for line in fh]

    def test_workflow_sends_analysis_then_report_from_its_text(self):
        answer = "Executive Summary\nAll good.\n# End\n- Consider more data.\n"
        self.server.routes["/api/generate"] = Route(
            pieces=ndjson(*[ollama_text(answer[i : i + 7]) for i in range(0, len(answer), 7)], OLLAMA_FINAL),
            gap_s=0.001,
        )
        records = os.path.join(self.dir, "records.jsonl")
        job = self.write_job(job_dict(self.server.url, task=WORKFLOW_TASK, records=records))
        r = self.agent("--job", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = self.records(records)
        self.assertEqual([(x["stage"], x["index"]) for x in recs], [("analysis", 0), ("report", 1)])
        prompts = [body["prompt"] for _, body in self.server.requests]
        self.assertEqual(prompts[0], "A:\nTotal files analyzed: 0\n\n\n\nend default {seed}")
        self.assertTrue(prompts[1].startswith("- Summary: All good.\n"), prompts[1])
        self.assertTrue(prompts[1].endswith("- Recommendations:\n1. Consider more data."), prompts[1])

    def test_failed_analysis_sends_no_report(self):
        self.server.routes["/v1/completions"] = Route(500, "application/json", body='{"error":"kaput"}')
        records = os.path.join(self.dir, "records.jsonl")
        job = self.write_job(job_dict(self.server.url, "openai", task=WORKFLOW_TASK, records=records))
        r = self.agent("--job", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = self.records(records)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["error"], {"kind": "server_error", "message": "kaput", "status": 500})

    def test_single_inference_and_persona(self):
        self.server.routes["/v1/completions"] = Route(
            ctype="text/event-stream",
            pieces=sse({"choices": [{"text": "ok", "finish_reason": "stop"}]}, "[DONE]"),
        )
        records = os.path.join(self.dir, "records.jsonl")
        task = {"kind": "single_inference", "prompts": ["p0", "p1", "p2"]}
        r = self.agent("--job", self.write_job(job_dict(self.server.url, "openai", task=task, records=records)))
        self.assertEqual(r.returncode, 0, r.stderr)
        task = {"kind": "persona", "prompt": "You are X"}
        r = self.agent("--job", self.write_job(job_dict(self.server.url, "openai", task=task, records=records)))
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = self.records(records)
        self.assertEqual(
            [(x["stage"], x["index"]) for x in recs],
            [("single", 0), ("single", 1), ("single", 2), ("persona", 0)],
        )
        self.assertEqual([b["prompt"] for _, b in self.server.requests], ["p0", "p1", "p2", "You are X"])

    def test_unreachable_server_is_a_record_not_a_crash(self):
        records = os.path.join(self.dir, "records.jsonl")
        job = self.write_job(job_dict("http://127.0.0.1:%d" % free_port(), records=records))
        r = self.agent("--job", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        (rec,) = self.records(records)
        self.assertEqual(rec["error"]["kind"], "connection_refused")

    def test_unwritable_records_exit_1(self):
        job = self.write_job(job_dict(self.server.url, records=os.path.join(self.dir, "no", "such", "dir", "r.jsonl")))
        r = self.agent("--job", job)
        self.assertEqual(r.returncode, 1)
        self.assertIn("records file", r.stderr)
        self.assertEqual(self.server.requests, [], "nothing is sent when records cannot be written")


# ---------------------------------------------------------------------------------------------
# Optional: the prompts against chimera's own in-process workflow
# ---------------------------------------------------------------------------------------------

CHIMERA_BIN = os.environ.get("CHIMERA_BIN")

PARITY_MANIFEST = """format: 1
report: TR990
title: "python agent prompt parity"
description: "the in-process workflow's prompts, captured by the emulator's truth log"
endpoints:
  - {id: emu, kind: emulator, url: "%(url)s", resource: "local:gpu0"}
models:
  - {id: g, tag: "gemma3:270m"}
workloads:
  - id: wf
    harness: H6v2
    stream: true
    task:
      kind: agent_workflow
      corpus: {kind: generated, csv: 28, json: 44, md: 29, seed: 1234}
      expected_files: 101
      analysis_template: %(analysis)s
      report_template: %(report)s
  - id: wf_empty
    harness: H6v2
    stream: false
    task:
      kind: agent_workflow
      corpus: {kind: empty}
      expected_files: 0
      analysis_template: %(analysis)s
      report_template: %(report)s
scenarios:
  - id: one
    kind: single
    agents: [{id: A, role: collector, endpoint: emu}]
matrix:
  - name: m
    workload: wf
    model: g
    configurations:
      - id: c1
        scenario: one
        options:
          A: {temperature: 1.0, top_p: 0.9, num_ctx: 512, repeat_penalty: 1.1, seed: 7}
      - id: c2
        scenario: one
  - name: e
    workload: wf_empty
    model: g
    configurations:
      - id: c3
        scenario: one
        options:
          A: {temperature: 0.6, seed: 3}
repetitions: 1
warmup: {policy: none}
request_timeout_s: 30
telemetry: {source: none}
"""

PARITY_ANALYSIS = (
    "Analyze:\n{data_summary}\nat {temperature}/{top_p}/{top_k}/{num_ctx}/{num_gpu}/"
    "{repeat_penalty} {seed} {unknown} {{x}} {"
)
PARITY_REPORT = (
    "S: {summary}\nF:\n{key_findings}\nM: {performance_metrics}\nR:\n{recommendations}\n"
    "{temperature} {top_p} {num_ctx} {repeat_penalty}"
)


@unittest.skipUnless(
    CHIMERA_BIN and HAVE_OLLAMA,
    "set CHIMERA_BIN to a chimera binary (and install the requirements) to compare with it",
)
class EmulatorParityTests(unittest.TestCase):
    """`chimera run` of an agent workflow against `chimera emulate --truth` records the
    prompts chimera's in-process Rust workflow sent; the agent's --print-prompts must give
    the same bytes (101-file generated corpus and empty corpus)."""

    def test_prompts_equal_the_in_process_workflow(self):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        with tempfile.TemporaryDirectory() as d:
            truth = os.path.join(d, "truth.jsonl")
            emu = subprocess.Popen(
                [CHIMERA_BIN, "emulate", "--listen", "127.0.0.1:%d" % port, "--truth", truth],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.time() + 20
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if time.time() > deadline:
                            self.fail("chimera emulate did not start")
                        time.sleep(0.05)
                manifest = os.path.join(d, "parity.yaml")
                with open(manifest, "w") as fh:
                    fh.write(
                        PARITY_MANIFEST
                        % {
                            "url": url,
                            "analysis": json.dumps(PARITY_ANALYSIS),
                            "report": json.dumps(PARITY_REPORT),
                        }
                    )
                data = os.path.join(d, "data")
                r = subprocess.run(
                    [CHIMERA_BIN, "run", "--data", data, "--unmanaged", manifest],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                self.assertEqual(r.returncode, 0, r.stderr[-2000:])
                with open(truth) as fh:
                    sent = [json.loads(line) for line in fh]
                by_options = {}
                for t in sent:
                    by_options.setdefault(json.dumps(t["options"], sort_keys=True), []).append(t["prompt"])
                work = os.path.join(data, ".work")
                cases = [
                    ({"temperature": 1.0, "top_p": 0.9, "num_ctx": 512, "repeat_penalty": 1.1, "seed": 7}, "corpus-28-44-29-1234", 101, True),
                    ({}, "corpus-28-44-29-1234", 101, True),
                    ({"temperature": 0.6, "seed": 3}, "corpus-empty", 0, False),
                ]
                for options, corpus, expected, stream in cases:
                    key = json.dumps(options or None, sort_keys=True)
                    analysis_want, report_want = by_options[key]
                    task = {
                        "kind": "agent_workflow",
                        "analysis_template": PARITY_ANALYSIS,
                        "report_template": PARITY_REPORT,
                        "expected_files": expected,
                    }
                    jd = job_dict(url, task=task, options=options, stream=stream, corpus_dir=os.path.join(work, corpus))
                    job_path = os.path.join(d, "job.json")
                    with open(job_path, "w") as fh:
                        json.dump(jd, fh)
                    # The emulator's reply to the analysis prompt (deterministic), as the
                    # in-process run got it.
                    backend = backends.OllamaBackend(chimera_agent.Job(jd))
                    try:
                        rec, text = backend.send(analysis_want, "analysis", 0)
                    finally:
                        backend.close()
                    self.assertNotIn("error", rec)
                    text_path = os.path.join(d, "analysis.txt")
                    with open(text_path, "w", encoding="utf-8") as fh:
                        fh.write(text)
                    r = subprocess.run(
                        [sys.executable, AGENT, "--job", job_path, "--print-prompts", "--analysis-text", text_path],
                        capture_output=True,
                        text=True,
                        timeout=60,
                    )
                    self.assertEqual(r.returncode, 0, r.stderr)
                    got = json.loads(r.stdout)
                    self.assertEqual(got["analysis_prompt"], analysis_want, corpus)
                    self.assertEqual(got["report_prompt"], report_want, corpus)
            finally:
                emu.terminate()
                emu.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()

//! The fuzz targets' seed corpora (`fuzz/seeds/<target>/`) and every crash the fuzzer found
//! (`fuzz/regressions/<target>/`, minimised) replayed on stable through the same entry
//! points as `make fuzz` (`fuzz/src/inputs.rs` → `chimera::fuzzing`), which panic when an
//! invariant breaks. A seed named `ok-…` must also be accepted by its parser and one named
//! `err-…` refused, so the corpora keep meaning what they were chosen for.

use std::path::{Path, PathBuf};

use chimera::fuzzing;

#[path = "../fuzz/src/inputs.rs"]
#[allow(dead_code)]
mod inputs;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none when the folder does not exist.
fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `Some(true)` for an `ok-` file, `Some(false)` for an `err-` file.
fn expectation(p: &Path) -> Option<bool> {
    let name = p.file_name()?.to_string_lossy().into_owned();
    if name.starts_with("ok-") {
        Some(true)
    } else if name.starts_with("err-") {
        Some(false)
    } else {
        None
    }
}

/// Replays every seed and regression of every target; collects the files that panicked.
#[test]
fn every_seed_and_regression_replays_without_breaking_an_invariant() {
    let mut failed = Vec::new();
    let mut replayed = 0;
    for (target, run) in inputs::TARGETS {
        let seeds = files("seeds", target);
        assert!(
            !seeds.is_empty(),
            "fuzz/seeds/{target}/ is empty: every target keeps a seed corpus"
        );
        for p in seeds.iter().chain(files("regressions", target).iter()) {
            let data = read(p);
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(p.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {replayed} input(s) broke an invariant (messages above): {failed:#?}",
        failed.len()
    );
}

/// Every target in `fuzz/Cargo.toml` has an entry point here, and the other way round.
#[test]
fn the_targets_listed_are_the_fuzz_crates_binaries() {
    let toml = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut bins: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "chimera-fuzz")
        .collect();
    bins.sort_unstable();
    let mut listed: Vec<&str> = inputs::TARGETS.iter().map(|(n, _)| *n).collect();
    listed.sort_unstable();
    assert_eq!(bins, listed);
}

fn check_expectations(target: &str, accepted: impl Fn(&[u8]) -> bool) {
    let mut checked = 0;
    for p in files("seeds", target)
        .iter()
        .chain(files("regressions", target).iter())
    {
        if let Some(want) = expectation(p) {
            let got = accepted(&read(p));
            assert_eq!(
                got,
                want,
                "{}: accepted = {got}, its name says {want}",
                p.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no `ok-`/`err-` seed for {target}");
}

#[test]
fn manifest_seeds_are_accepted_or_refused_as_named() {
    check_expectations("manifest", |d| fuzzing::manifest(d).is_ok());
}

#[test]
fn stream_seeds_are_complete_or_not_as_named() {
    check_expectations("ollama_stream", |d| {
        let i = inputs::StreamInput::decode(d).expect("decodes");
        fuzzing::ollama_stream(i.mode(), i.split, i.body)
            .result
            .is_ok()
    });
    check_expectations("openai_stream", |d| {
        let i = inputs::StreamInput::decode(d).expect("decodes");
        fuzzing::openai_stream(i.mode(), i.split, i.body)
            .result
            .is_ok()
    });
}

#[test]
fn emulator_http_seeds_are_requests_or_refusals_as_named() {
    check_expectations("emulator_http", |d| {
        matches!(
            fuzzing::http_requests(d).first(),
            Some(fuzzing::HttpOutcome::Request(..))
        )
    });
}

#[test]
fn import_seeds_import_runs_or_are_refused_as_named() {
    check_expectations("import", |d| {
        let i = inputs::ImportInput::decode(d).expect("decodes");
        matches!(fuzzing::import(i.layout(), &i.files()), Ok(n) if n > 0)
    });
}

#[test]
fn a_streamed_reply_reads_the_same_in_any_pieces() {
    let body = concat!(
        "{\"model\":\"m\",\"response\":\"Hel\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"lo\",\"done\":false}\r\n",
        "\n",
        "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"eval_count\":2}\n"
    )
    .as_bytes();
    let mode = fuzzing::StreamMode {
        chat: false,
        stream: true,
        cap: 1 << 10,
    };
    for split in [0, 1, 2, 7, 13, 1 << 40] {
        let o = fuzzing::ollama_stream(mode, split, body);
        assert_eq!(o.result, Ok(()), "split {split}");
        assert_eq!(o.record.text, "Hello");
        assert_eq!(o.record.output_tokens, Some(2));
        assert_eq!(o.record.chunks, 3);
    }
    // The cap: a line longer than it is refused whole, never returned cut.
    let o = fuzzing::ollama_stream(fuzzing::StreamMode { cap: 40, ..mode }, 3, body);
    assert_eq!(
        o.result.map_err(|e| e.kind),
        Err(chimera::backend::ErrorKind::TooLarge)
    );
}

#[test]
fn pieces_cover_the_body_in_order() {
    let body: Vec<u8> = (0..=255).collect();
    for split in [0u64, 1, 5, 12, 99, u64::MAX] {
        let pieces = fuzzing::chunks(&body, split);
        assert_eq!(pieces.concat(), body, "split {split}");
        assert!(pieces.iter().all(|p| !p.is_empty()));
        let limit = if split == 0 {
            body.len()
        } else {
            1 << (split % 13)
        };
        assert!(pieces.iter().all(|p| p.len() <= limit), "split {split}");
    }
    assert_eq!(fuzzing::chunks(&body, 0).len(), 1);
}

#[test]
fn a_journal_append_survives_a_torn_or_damaged_tail() {
    let good = r#"{"event":"cell_started","cell":"c","attempt":1,"at_unix_ms":2.0}"#;
    // A torn last line, garbage, and a complete event without its newline.
    assert_eq!(
        fuzzing::journal(format!("{good}\n{{\"event\":\"cell_").as_bytes()),
        1
    );
    assert_eq!(
        fuzzing::journal(format!("{good}\nnot json\n{good}").as_bytes()),
        2
    );
    assert_eq!(fuzzing::journal(b""), 0);
    assert_eq!(fuzzing::journal(b"\r"), 0);
}

#[test]
fn pipelined_requests_read_one_after_another() {
    let raw = b"GET /api/tags HTTP/1.1\r\n\r\nPOST /api/generate?x=1 HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    assert_eq!(
        fuzzing::http_requests(raw),
        vec![
            fuzzing::HttpOutcome::Request("GET".into(), "/api/tags".into(), true, 0),
            fuzzing::HttpOutcome::Request("POST".into(), "/api/generate".into(), false, 2),
        ]
    );
    assert_eq!(
        fuzzing::http_requests(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"),
        vec![fuzzing::HttpOutcome::Io(std::io::ErrorKind::UnexpectedEof)]
    );
}

/// Found by the `import` target: TR108's `response_chars` became a placeholder string of that
/// many characters, so `1e30` panicked (capacity overflow) and `3e10` tried to allocate 30 GB.
#[test]
fn a_tr108_reply_length_beyond_any_reply_is_refused() {
    let csv = |chars: &str| {
        format!(
            "prompt,ttft_s,tokens_s,load_s,prompt_eval_s,eval_s,eval_count,response_chars,error\n\
             p,0.1,100,0.1,0.01,3,320,{chars},\n"
        )
    };
    let baseline = 3; // gemma3/gemma3_baseline.csv
    let run = |chars: &str| {
        fuzzing::import(
            fuzzing::ImportLayout::Tr108,
            &[(baseline, csv(chars).as_bytes())],
        )
    };
    assert_eq!(run("3263"), Ok(1), "the longest reply of the original data");
    assert_eq!(run("65536"), Ok(1));
    for bad in ["65537", "29111111111"] {
        let e = run(bad).expect_err(bad);
        assert!(
            e.contains("column `response_chars`") && e.contains("is not the length of a reply"),
            "{bad}: {e}"
        );
    }
    // Past u64: not a count at all.
    let e = run("1e30").expect_err("1e30");
    assert!(
        e.contains("column `response_chars`") && e.contains("is not a count"),
        "{e}"
    );
}

/// Found by the `import` target: two TR108 rows with `eval_count` near `u64::MAX` overflowed
/// the agent's token sum (`metrics::aggregate`), and a count past `u64::MAX` was taken as
/// `u64::MAX`.
#[test]
fn tr108_token_counts_past_u64_are_refused_and_sums_saturate() {
    let csv = |counts: &[&str]| {
        let mut s = String::from(
            "prompt,ttft_s,tokens_s,load_s,prompt_eval_s,eval_s,eval_count,response_chars,error\n",
        );
        for (i, c) in counts.iter().enumerate() {
            s.push_str(&format!("p{i},0.1,100,0.1,0.01,3,{c},1,\n"));
        }
        s
    };
    let run = |counts: &[&str]| {
        fuzzing::import(fuzzing::ImportLayout::Tr108, &[(3, csv(counts).as_bytes())])
    };
    // 2^64 - 2048, the largest whole f64 below 2^64, twice: one cell whose sum saturates.
    assert_eq!(
        run(&["18446744073709549568", "18446744073709549568"]),
        Ok(1)
    );
    for bad in ["18446744073709551616", "7e57"] {
        let e = run(&[bad]).expect_err(bad);
        assert!(
            e.contains("column `eval_count`") && e.contains("is not a count"),
            "{bad}: {e}"
        );
    }
}

//! Prompt lengths in the server's own tokens: the emulator's `/tokenize` agrees exactly with
//! the prompt tokens its completions report, calibration uses it on an OpenAI-compatible
//! server and falls back to two probe requests where there is none (Ollama, or a server that
//! answers 404), and `chimera load` hits the asked lengths on both protocols.

use chimera::backend::{Client, tokenize_body};
use chimera::emulator::Profile;
use chimera::load::prompt::{CalibrationSource, calibrate, synthetic};
use chimera::manifest::{Api, EndpointKind};

use crate::support::{self, Emulator, request};

/// A fast model, replies of 16 tokens.
const PROFILE: &str = "
seed: 3
shared_gpu: false
models:
  - name: gemma3:270m
    load_ms: 1
    prompt_tok_s: 1000000
    output_tok_s: 2000
    output_tokens: 16
";

fn profile(tokenize: bool) -> Profile {
    Profile::from_yaml(&format!("{PROFILE}\nopenai_tokenize: {tokenize}\n")).expect("profile")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulators_tokenizer_counts_what_its_completions_report() {
    let emu = support::emulate_profile(profile(true), 1).await;
    let url = format!("http://{}", emu.addrs[0]);
    let openai = Client::new(EndpointKind::Openai, &url).expect("client");
    let texts = [
        "x".to_owned(),
        "two words".to_owned(),
        "  spaced\tout \n text  ".to_owned(),
        synthetic(7, 1),
        synthetic(154, 2),
    ];
    for api in [Api::Generate, Api::Chat] {
        for text in &texts {
            let mut req = request(api, "gemma3:270m");
            req.prompt = text.clone();
            let counted = openai
                .count_tokens(&req, text)
                .await
                .expect("an OpenAI client has a tokenizer")
                .expect("counted");
            let rec = openai.send(&req).await;
            assert!(rec.ok(), "{rec:?}");
            assert_eq!(rec.prompt_tokens, Some(counted), "{api:?} {text:?}");
        }
    }
    // llama-server's reply shape, from its body or vLLM's.
    let http = reqwest::Client::new();
    let reply = http
        .post(format!("{url}/tokenize"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"prompt": "a b c d e f g h i j"}).to_string())
        .send()
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("body");
    let reply: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    assert_eq!(
        reply["tokens"].as_array().map(Vec::len),
        Some(13),
        "{reply}"
    );
    let bad = http
        .post(format!("{url}/tokenize"))
        .body(serde_json::json!({"content": 5}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 400);
    // Ollama has no tokenizer endpoint: the client says so without asking.
    let ollama = Client::new(EndpointKind::Ollama, &url).expect("client");
    let req = request(Api::Generate, "gemma3:270m");
    assert!(ollama.count_tokens(&req, "a b").await.is_none());
    assert!(tokenize_body("m", "t").get("content").is_some());
}

/// The calibration says how it was measured: the tokenizer on an OpenAI-compatible server,
/// two probes on Ollama and on a server whose `/tokenize` answers 404; each of them the
/// emulator's own line, 1.3 tokens per word (fitted through its rounding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_uses_the_tokenizer_and_falls_back_to_probes() {
    for (tokenize, kind, source) in [
        (true, EndpointKind::Openai, CalibrationSource::Tokenize),
        (false, EndpointKind::Openai, CalibrationSource::Probe),
        (true, EndpointKind::Ollama, CalibrationSource::Probe),
    ] {
        let emu = support::emulate_profile(profile(tokenize), 1).await;
        let client = Client::new(kind, &format!("http://{}", emu.addrs[0])).expect("client");
        let base = request(Api::Generate, "gemma3:270m");
        let c = calibrate(&client, &base, (64, 256), 9)
            .await
            .expect("calibrated");
        assert_eq!(c.source, source, "{kind:?}, /tokenize {tokenize}");
        // 64 words count 83 tokens, 256 words 333: the line through them.
        assert!((c.per_word - 250.0 / 192.0).abs() < 1e-9, "{c:?}");
        assert!(
            (c.overhead - (83.0 - 64.0 * 250.0 / 192.0)).abs() < 1e-9,
            "{c:?}"
        );
        // The probes (and the tokenizer path's one probe) are the only completions sent.
        let sent = emu.truth.records().len();
        let want = if source == CalibrationSource::Tokenize {
            1
        } else {
            2
        };
        assert_eq!(sent, want, "{kind:?}, /tokenize {tokenize}");
    }
}

/// `chimera load --input-tokens 200 --output-tokens 16`: on the OpenAI routes (calibrated by
/// the tokenizer) and on the Ollama routes (by probes), every measured request's prompt is
/// exactly the 200 tokens asked for as the server counts it (200 is on the emulator's
/// rounded 1.3-per-word line: 154 words), and on the OpenAI routes every reply exactly the 16
/// tokens forced.
#[test]
fn lengths_hit_their_targets() {
    let t = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::start(t.path(), "lengths", PROFILE, 1);
    let url = format!("http://{}", emu.addrs[0]);
    for (kind, source) in [("openai", "tokenize"), ("ollama", "probe")] {
        let out = support::chimera(&[
            "load",
            url.as_str(),
            "--kind",
            kind,
            "--model",
            "gemma3:270m",
            "--users",
            "1,2",
            "--requests",
            "8",
            "--warmup-requests",
            "1",
            "--repetitions",
            "1",
            "--input-tokens",
            "200",
            "--output-tokens",
            "16",
            "--format",
            "json",
        ]);
        assert_eq!(out.code, 0, "{kind}: {}", out.stderr);
        let r: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        assert_eq!(
            r["calibration"]["source"], source,
            "{kind}: {}",
            r["calibration"]
        );
        assert_eq!(r["requested"], serde_json::json!([200, 16]), "{kind}");
        for l in r["levels"].as_array().expect("levels") {
            assert!(l["runs"][0]["requests"].as_u64() > Some(0), "{kind}: {l}");
            // A mean |counted − asked| of 0: every request exact.
            assert_eq!(l["input_tokens_off"].as_f64(), Some(0.0), "{kind}: {l}");
            assert_eq!(l["input_tokens"].as_f64(), Some(200.0), "{kind}: {l}");
            if kind == "openai" {
                assert_eq!(l["output_tokens_off"].as_f64(), Some(0.0), "{kind}: {l}");
            }
        }
    }
}

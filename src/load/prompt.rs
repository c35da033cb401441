//! Synthetic prompts of a chosen length in the server's own tokens.
//!
//! A prompt is words from a fixed vocabulary, different for every request (the request's
//! number picks the words, so a server's prompt cache cannot serve one request from another).
//! How many words make N tokens is measured on the server itself: two probe requests of
//! different lengths give the server's prompt-token count as a line in the word count (the
//! slope is the tokenizer, the intercept the chat template), and each load request then
//! records the count the server reported, so requested and actual lengths sit side by side.

use crate::backend::{Client, LlmRequest};
use crate::util::rng::{SplitMix64, mix};

/// The vocabulary of synthetic prompts: common English words, each a single token in most
/// tokenizers.
const WORDS: [&str; 64] = [
    "time",
    "year",
    "people",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
    "home",
    "water",
    "room",
    "mother",
    "area",
    "money",
    "story",
    "fact",
    "month",
    "lot",
    "right",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "business",
    "issue",
    "side",
    "kind",
    "head",
    "house",
    "service",
    "friend",
    "father",
    "power",
    "hour",
    "game",
    "line",
    "end",
    "member",
    "law",
];

/// A prompt of `words` words for request `index` (the same index, the same text).
pub fn synthetic(words: u32, index: u64) -> String {
    let mut rng = SplitMix64::new(mix(index ^ 0x5eed_0f70_6b65_6e73));
    let mut out = String::with_capacity(words as usize * 7);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    out
}

/// How the server counts a synthetic prompt: tokens = `per_word` × words + `overhead`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Tokens per word.
    pub per_word: f64,
    /// Tokens of everything else (the chat template, a begin-of-text token).
    pub overhead: f64,
}

impl Calibration {
    /// The words that make about `tokens` prompt tokens (at least 1).
    pub fn words_for(&self, tokens: u32) -> u32 {
        let w = (f64::from(tokens) - self.overhead) / self.per_word;
        if w.is_finite() {
            w.round().max(1.0) as u32
        } else {
            1
        }
    }
}

/// Why the server's token count could not be measured.
#[derive(Debug, thiserror::Error)]
#[error("cannot calibrate prompt lengths on {url}: {why}")]
pub struct CalibrationError {
    /// The server.
    pub url: String,
    /// What went wrong.
    pub why: String,
}

/// Measures the server's count of synthetic prompts with two probes (`short` and `long`
/// words), each sent as `base` with the prompt replaced and one output token.
pub async fn calibrate(
    client: &Client,
    base: &LlmRequest,
    (short, long): (u32, u32),
    nonce: u64,
) -> Result<Calibration, CalibrationError> {
    let mut counts = Vec::new();
    for (k, words) in [short, long].into_iter().enumerate() {
        let mut req = base.clone();
        req.prompt = synthetic(words, mix(nonce ^ (u64::MAX - k as u64)));
        req.options.num_predict = Some(1);
        let r = client
            .send_forced(&req, client.is_openai().then_some(1))
            .await;
        let err = |why: String| CalibrationError {
            url: client.base_url().to_owned(),
            why,
        };
        if let Some(e) = &r.error {
            return Err(err(format!(
                "the probe request failed ({:?}{}): {}",
                e.kind,
                e.status.map_or(String::new(), |s| format!(", HTTP {s}")),
                e.message
            )));
        }
        let n = r.prompt_tokens.ok_or_else(|| {
            err("the server reported no prompt token count (prompt_eval_count / usage.prompt_tokens)".into())
        })?;
        counts.push((f64::from(words), n as f64));
    }
    let (w0, n0) = counts[0];
    let (w1, n1) = counts[1];
    let per_word = (n1 - n0) / (w1 - w0);
    if !(per_word.is_finite() && per_word > 0.0) {
        return Err(CalibrationError {
            url: client.base_url().to_owned(),
            why: format!("{w0} words counted {n0} tokens and {w1} words {n1}: no usable slope"),
        });
    }
    Ok(Calibration {
        per_word,
        overhead: n0 - per_word * w0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_per_request_and_reproducible() {
        let a = synthetic(50, 1);
        assert_eq!(a.split(' ').count(), 50);
        assert_eq!(a, synthetic(50, 1));
        assert_ne!(a, synthetic(50, 2));
        assert_eq!(synthetic(0, 1), "");
    }

    #[test]
    fn calibration_inverts_the_line() {
        let c = Calibration {
            per_word: 1.3,
            overhead: 4.0,
        };
        assert_eq!(c.words_for(134), 100);
        assert_eq!(c.words_for(1), 1);
    }
}

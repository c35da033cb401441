//! Synthetic prompts of a chosen length in the server's own tokens.
//!
//! A prompt is words from a fixed vocabulary, different for every request (the request's
//! number picks the words, so a server's prompt cache cannot serve one request from another).
//! How many words make N tokens is measured on the server itself, as a line in the word count
//! (the slope is the tokenizer, the intercept the chat template and special tokens):
//! - with the server's own tokenizer where it has one (`POST /tokenize` on llama-server and
//!   vLLM): the slope from its counts of several texts of two lengths, the intercept from one
//!   probe request, whose reported prompt tokens less the tokenizer's count of the same text
//!   are what a real request adds (source `tokenize`);
//! - otherwise (Ollama, a server without `/tokenize` or with an unusable one) with two probe
//!   requests of different lengths, from the prompt-token counts the server reported
//!   (`prompt_eval_count`, `usage.prompt_tokens`; source `probe`).
//!
//! Each load request then records the count the server reported, so requested and actual
//! lengths sit side by side.

use crate::backend::{self, Client, LlmRequest};
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

/// How a [`Calibration`] was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationSource {
    /// Two probe generation requests: the slope and the intercept from the prompt-token counts
    /// the server reported (Ollama's `prompt_eval_count`, OpenAI's `usage.prompt_tokens`).
    #[default]
    Probe,
    /// The server's `/tokenize` (llama-server, vLLM) for the tokens per word, and one probe
    /// generation request for what a real request adds (chat template, begin-of-text token).
    Tokenize,
}

impl CalibrationSource {
    /// `probe` or `tokenize`.
    pub fn name(self) -> &'static str {
        match self {
            CalibrationSource::Probe => "probe",
            CalibrationSource::Tokenize => "tokenize",
        }
    }
}

/// How the server counts a synthetic prompt: tokens = `per_word` × words + `overhead`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Tokens per word.
    pub per_word: f64,
    /// Tokens of everything else (the chat template, a begin-of-text token).
    pub overhead: f64,
    /// How it was measured (absent in older results: `probe`).
    #[serde(default)]
    pub source: CalibrationSource,
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

/// Synthetic texts of each length the tokenizer counts (their mean smooths out the words that
/// take more than one token).
const TOKENIZED_TEXTS: u64 = 4;

/// Measures how the server counts synthetic prompts, sent as `base` with the prompt replaced.
///
/// On an OpenAI-compatible server, with its tokenizer first ([`by_tokenizer`]); when it has no
/// `/tokenize` (or its reply is unusable), and on Ollama, with two probe requests of `short`
/// and `long` words ([`by_probes`]). The result says which ([`Calibration::source`]), and the
/// choice is logged at info level.
pub async fn calibrate(
    client: &Client,
    base: &LlmRequest,
    (short, long): (u32, u32),
    nonce: u64,
) -> Result<Calibration, CalibrationError> {
    let url = client.base_url();
    match by_tokenizer(client, base, (short, long), nonce).await {
        Ok(c) => {
            tracing::info!(
                "{url}: prompt lengths calibrated with the server's /tokenize and one probe request: {:.3} token(s) per word + {:.1}",
                c.per_word,
                c.overhead
            );
            return Ok(c);
        }
        Err(Tokenizer::Absent) => {}
        Err(Tokenizer::Unusable(why)) => tracing::info!(
            "{url}: /tokenize not usable ({why}); calibrating prompt lengths with two probe requests instead"
        ),
        Err(Tokenizer::Failed(e)) => return Err(e),
    }
    let c = by_probes(client, base, (short, long), nonce).await?;
    tracing::info!(
        "{url}: prompt lengths calibrated with two probe requests: {:.3} token(s) per word + {:.1}",
        c.per_word,
        c.overhead
    );
    Ok(c)
}

/// Why [`by_tokenizer`] gave no calibration.
enum Tokenizer {
    /// The protocol has no tokenizer endpoint (Ollama).
    Absent,
    /// The server has none, or it answered something unusable: calibrate with probes.
    Unusable(String),
    /// The probe request failed: so would the probes.
    Failed(CalibrationError),
}

/// The server's tokenizer counts `TOKENIZED_TEXTS` synthetic texts of `short` and of `long`
/// words; a least-squares line through the counts gives the tokens per word (the slope) and
/// what the tokenizer adds to any text (the intercept). One probe request of the first short
/// text then says what a real request adds beyond the tokenizer (chat template, a
/// begin-of-text token the tokenizer did not count): its reported prompt tokens minus the
/// tokenizer's count of the same text. The overhead is the intercept plus that.
async fn by_tokenizer(
    client: &Client,
    base: &LlmRequest,
    (short, long): (u32, u32),
    nonce: u64,
) -> Result<Calibration, Tokenizer> {
    let mut points = Vec::new();
    for k in 0..2 * TOKENIZED_TEXTS {
        let words = if k < TOKENIZED_TEXTS { short } else { long };
        let text = synthetic(words, mix(nonce ^ (u64::MAX - 16 - k)));
        let n = match client.count_tokens(base, &text).await {
            None => return Err(Tokenizer::Absent),
            Some(Ok(n)) => n,
            Some(Err(e)) if backend::tokenize_missing(&e) => {
                return Err(Tokenizer::Unusable(format!(
                    "the server has none: HTTP {}",
                    e.status.unwrap_or_default()
                )));
            }
            Some(Err(e)) => {
                return Err(Tokenizer::Unusable(format!(
                    "{}{}: {}",
                    e.kind.name(),
                    e.status.map_or(String::new(), |s| format!(", HTTP {s}")),
                    e.message
                )));
            }
        };
        points.push((f64::from(words), n as f64, text));
    }
    let xy: Vec<(f64, f64)> = points.iter().map(|(w, n, _)| (*w, *n)).collect();
    let Some((per_word, intercept)) = line(&xy) else {
        return Err(Tokenizer::Unusable(format!(
            "its counts give no usable tokens per word: {xy:?}"
        )));
    };
    let (_, counted, text) = &points[0];
    let reported = probe(client, base, text.clone())
        .await
        .map_err(Tokenizer::Failed)?;
    let template = reported as f64 - counted;
    tracing::debug!(
        "{}: a request adds {template} prompt token(s) to the tokenizer's count",
        client.base_url()
    );
    Ok(Calibration {
        per_word,
        overhead: intercept + template,
        source: CalibrationSource::Tokenize,
    })
}

/// The least-squares line `y = slope × x + intercept`, when its slope is positive.
fn line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    (slope.is_finite() && slope > 0.0).then_some((slope, my - slope * mx))
}

/// Sends `text` as `base`'s prompt with one output token; the prompt tokens the server
/// reported.
async fn probe(client: &Client, base: &LlmRequest, text: String) -> Result<u64, CalibrationError> {
    let mut req = base.clone();
    req.prompt = text;
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
    r.prompt_tokens.ok_or_else(|| {
        err(
            "the server reported no prompt token count (prompt_eval_count / usage.prompt_tokens)"
                .into(),
        )
    })
}

/// Two probes (`short` and `long` words), each sent as `base` with the prompt replaced and
/// one output token: the line through the two counts the server reported.
async fn by_probes(
    client: &Client,
    base: &LlmRequest,
    (short, long): (u32, u32),
    nonce: u64,
) -> Result<Calibration, CalibrationError> {
    let mut counts = Vec::new();
    for (k, words) in [short, long].into_iter().enumerate() {
        let text = synthetic(words, mix(nonce ^ (u64::MAX - k as u64)));
        let n = probe(client, base, text).await?;
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
        source: CalibrationSource::Probe,
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
            source: CalibrationSource::Probe,
        };
        assert_eq!(c.words_for(134), 100);
        assert_eq!(c.words_for(1), 1);
    }
}

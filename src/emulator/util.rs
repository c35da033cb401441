//! Small deterministic helpers: token words and counts (the seeded RNG and the clock come
//! from `util`).

pub use crate::util::clock::{rfc3339, unix_ms};
pub use crate::util::rng::{SplitMix64 as Rng, fnv1a};

/// The filler vocabulary of generated text.
pub const WORDS: [&str; 32] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "commodo",
];

/// The model a request body names (`model`, or the older `name`); `None` when absent or
/// empty.
pub fn requested_model(v: &serde_json::Value) -> Option<&str> {
    v.get("model")
        .or_else(|| v.get("name"))
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.is_empty())
}

/// Prompt tokens of a text: whitespace-separated words × 1.3, rounded, at least 1 for a
/// non-empty text (a real template adds tokens around any prompt).
pub fn prompt_tokens(text: &str) -> u32 {
    if text.is_empty() {
        return 0;
    }
    let words = text.split_whitespace().count() as f64;
    ((words * 1.3).round() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_and_tokens() {
        let t = UNIX_EPOCH + Duration::new(1_787_390_043, 507_120_000);
        assert_eq!(rfc3339(t), "2026-08-22T09:14:03.50712Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(prompt_tokens(""), 0);
        assert_eq!(prompt_tokens(" "), 1);
        assert_eq!(prompt_tokens("a b c d e f g h i j"), 13);
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert!((-1.0..1.0).contains(&a.symmetric()));
    }
}

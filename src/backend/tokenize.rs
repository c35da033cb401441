//! The server's own tokenizer: `POST /tokenize` on llama-server and vLLM.
//!
//! One body serves both: `{"content": TEXT, "model": MODEL, "prompt": TEXT}`. llama-server
//! reads `content` (and, by default, adds no begin-of-text token: `add_special` is false);
//! vLLM reads `model` and `prompt` (and adds the model's special tokens: its
//! `add_special_tokens` defaults to true). Neither rejects the other's keys (vLLM logs the
//! ignored one). The count is vLLM's `count`, else the length of `tokens` (llama-server's
//! `{"tokens": [ids]}`; with `with_pieces`, objects, counted the same). Whether special tokens
//! are counted does not matter to its user ([`crate::load::prompt`]): it takes the count per
//! word from the tokenizer and what a real request adds from one real request.
//!
//! The call is bounded like a request: the request's timeout for the whole exchange and its
//! `max_response_bytes` for the reply.

use serde_json::{Value, json};

use super::openai::OpenAiClient;
use super::stream::err;
use super::{ErrorKind, LlmRequest, RequestError};

/// The path of the tokenizer endpoint.
pub const TOKENIZE_PATH: &str = "/tokenize";

/// The body of a `/tokenize` call for `text` with `model` (both servers' shapes at once).
pub fn tokenize_body(model: &str, text: &str) -> Value {
    json!({ "content": text, "model": model, "prompt": text })
}

/// The token count of a `/tokenize` reply: vLLM's `count`, else the length of `tokens`
/// (llama-server, and vLLM too); `None` when the reply has neither.
pub fn token_count(reply: &Value) -> Option<u64> {
    if let Some(n) = reply.get("count").and_then(Value::as_u64) {
        return Some(n);
    }
    reply
        .get("tokens")
        .and_then(Value::as_array)
        .map(|t| t.len() as u64)
}

/// True when a failed `/tokenize` call means the server has no such endpoint (404, 405, or
/// 501), as opposed to a server that has one and failed.
pub fn tokenize_missing(e: &RequestError) -> bool {
    matches!(e.status, Some(404 | 405 | 501))
}

impl OpenAiClient {
    /// How many tokens the server's tokenizer makes of `text` for `base`'s model, within
    /// `base`'s timeout and size cap (see the module documentation).
    pub async fn count_tokens(&self, base: &LlmRequest, text: &str) -> Result<u64, RequestError> {
        let body = tokenize_body(&base.model, text);
        let reply = self
            .server
            .post_for_json(TOKENIZE_PATH, &body, base.timeout, base.max_response_bytes)
            .await?;
        token_count(&reply).ok_or_else(|| {
            err(
                ErrorKind::MalformedResponse,
                Some(200),
                format!("no `count` or `tokens` array in the {TOKENIZE_PATH} reply"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_reply_shapes_are_counted() {
        // llama-server: token ids, or with `with_pieces` objects.
        assert_eq!(token_count(&json!({"tokens": [1, 2, 3]})), Some(3));
        assert_eq!(
            token_count(&json!({"tokens": [{"id": 1, "piece": "a"}, {"id": 2, "piece": "b"}]})),
            Some(2)
        );
        assert_eq!(token_count(&json!({"tokens": []})), Some(0));
        // vLLM: `count` wins.
        assert_eq!(
            token_count(&json!({"count": 4, "tokens": [9, 8, 7, 6], "max_model_len": 4096})),
            Some(4)
        );
        assert_eq!(token_count(&json!({"count": 5})), Some(5));
        // Malformed.
        for bad in [
            json!({}),
            json!([1, 2]),
            json!({"tokens": "1 2"}),
            json!({"count": -1}),
        ] {
            assert_eq!(token_count(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_body_speaks_both_servers_and_missing_routes_are_recognised() {
        let b = tokenize_body("m", "a b");
        assert_eq!(b["content"], "a b");
        assert_eq!(b["prompt"], "a b");
        assert_eq!(b["model"], "m");
        let e = |status| RequestError {
            kind: ErrorKind::HttpStatus,
            status,
            message: String::new(),
        };
        assert!(tokenize_missing(&e(Some(404))));
        assert!(tokenize_missing(&e(Some(405))));
        assert!(!tokenize_missing(&e(Some(500))));
        assert!(!tokenize_missing(&e(None)));
    }
}

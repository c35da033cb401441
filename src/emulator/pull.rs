//! `POST /api/pull`: an emulated model download, streamed as Ollama streams it.
//!
//! A model whose profile says `absent: true` is unknown to a listener (not in `/api/tags`, 404
//! on generate/chat/show) until a pull on that listener has finished. The stream is Ollama's:
//! `pulling manifest`, progress lines of one layer (`digest`, `total`, `completed`) spread over
//! the model's `pull_ms`, `verifying sha256 digest`, `writing manifest`, then `success` (the
//! model is listed before that last line is written). A model the profile does not know ends
//! the stream with Ollama's `{"error": "pull model manifest: file does not exist"}`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use super::http::{self, JSON, LAST_CHUNK, NDJSON};
use super::profile::Profile;
use super::state::{ListenerState, Shared};
use super::util::requested_model;

/// Progress lines of the layer download.
const STEPS: u64 = 4;

/// True when model `index` of the profile is on this listener: not `absent`, or pulled.
pub(super) fn present(p: &Profile, ls: &ListenerState, index: usize) -> bool {
    p.models.get(index).is_some_and(|m| !m.absent)
        || ls
            .pulled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&index)
}

fn line(v: &Value) -> Vec<u8> {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    http::chunk(&b)
}

/// Serves one `/api/pull` request; returns whether the connection stays open.
pub(super) async fn serve(
    wr: &mut OwnedWriteHalf,
    sh: &Shared,
    ls: &ListenerState,
    body: &[u8],
    keep: bool,
) -> std::io::Result<bool> {
    let close = !keep;
    let parsed: Result<Value, String> = serde_json::from_slice(body).map_err(|e| e.to_string());
    let v = match parsed {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return reject(wr, 400, "request body must be a JSON object", close).await,
        Err(e) => return reject(wr, 400, &e, close).await,
    };
    let Some(name) = requested_model(&v) else {
        return reject(wr, 400, "model is required", close).await;
    };
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let index = sh.profile.models.iter().position(|m| m.matches(name));
    let Some(index) = index else {
        let msg = "pull model manifest: file does not exist";
        if !stream {
            return reject(wr, 500, msg, close).await;
        }
        let mut out = http::head(200, NDJSON, None, close);
        out.extend(line(&json!({ "status": "pulling manifest" })));
        out.extend(line(&json!({ "error": msg })));
        out.extend_from_slice(LAST_CHUNK);
        wr.write_all(&out).await?;
        wr.flush().await?;
        return Ok(keep);
    };
    let m = &sh.profile.models[index];
    let step = Duration::from_secs_f64(m.pull_ms / 1000.0 / STEPS as f64);
    let mark_pulled = || {
        ls.pulled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index);
    };
    if !stream {
        tokio::time::sleep(step * STEPS as u32).await;
        mark_pulled();
        let body = json!({ "status": "success" }).to_string();
        http::write_full(wr, 200, JSON, body.as_bytes(), close, false).await?;
        return Ok(keep);
    }
    let mut out = http::head(200, NDJSON, None, close);
    out.extend(line(&json!({ "status": "pulling manifest" })));
    wr.write_all(&out).await?;
    wr.flush().await?;
    let short = m.digest.get(..12).unwrap_or(&m.digest);
    for k in 0..=STEPS {
        if k > 0 {
            tokio::time::sleep(step).await;
        }
        let progress = json!({
            "status": format!("pulling {short}"),
            "digest": format!("sha256:{}", m.digest),
            "total": m.size,
            "completed": m.size / STEPS * k + if k == STEPS { m.size % STEPS } else { 0 },
        });
        wr.write_all(&line(&progress)).await?;
        wr.flush().await?;
    }
    let mut out = line(&json!({ "status": "verifying sha256 digest" }));
    out.extend(line(&json!({ "status": "writing manifest" })));
    mark_pulled();
    out.extend(line(&json!({ "status": "success" })));
    out.extend_from_slice(LAST_CHUNK);
    wr.write_all(&out).await?;
    wr.flush().await?;
    Ok(keep)
}

async fn reject(
    wr: &mut OwnedWriteHalf,
    code: u16,
    msg: &str,
    close: bool,
) -> std::io::Result<bool> {
    let body = json!({ "error": msg }).to_string();
    http::write_full(wr, code, JSON, body.as_bytes(), close, false).await?;
    Ok(!close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_model_is_present_only_once_pulled_on_its_listener() {
        let p = Profile::from_yaml(
            "models:\n  - name: here\n  - name: later\n    absent: true\n    pull_ms: 0\n",
        )
        .expect("profile");
        let a = ListenerState::new(([127, 0, 0, 1], 1).into(), 0);
        let b = ListenerState::new(([127, 0, 0, 1], 2).into(), 0);
        assert!(present(&p, &a, 0));
        assert!(!present(&p, &a, 1));
        a.pulled.lock().expect("lock").insert(1);
        assert!(present(&p, &a, 1));
        assert!(!present(&p, &b, 1), "each listener has its own store");
        assert!(!present(&p, &a, 7));
    }
}

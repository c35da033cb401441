//! HTTP for managing servers (as opposed to measuring them): whether something already
//! listens at an endpoint's address, readiness probes while a server starts, and Ollama's
//! streamed model pulls (`POST /api/pull`). The supervision itself lives in
//! the `server` module; this module only talks to servers.

use std::time::Duration;

use crate::manifest::EndpointKind;

/// The `host:port` where something accepts connections at `url`, if anything does.
pub async fn answers(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?.to_owned();
    let port = u.port_or_known_default()?;
    let addr = format!("{host}:{port}");
    let connect = tokio::net::TcpStream::connect(addr.clone());
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => Some(addr),
        _ => None,
    }
}

/// The innermost cause of an error (reqwest's outer messages say little).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Readiness probes of one starting server (`ollama`/`emulator`: `GET /api/version`;
/// `openai`: `GET /health`, which llama-server answers with 503 while it loads, falling back
/// to `GET /v1/models`). Short timeouts: a probe is repeated until the server answers.
#[derive(Debug, Clone)]
pub struct ReadinessProbe {
    http: reqwest::Client,
    /// Base URL without a trailing `/`.
    base: String,
    kind: EndpointKind,
}

impl ReadinessProbe {
    /// A prober of the server of `kind` at `url`; `None` when the HTTP client cannot be built.
    pub fn new(kind: EndpointKind, url: &str) -> Option<ReadinessProbe> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        Some(ReadinessProbe {
            http,
            base: url.trim_end_matches('/').to_owned(),
            kind,
        })
    }

    /// One readiness probe: `Ok` when the server answers as ready, else what it did.
    pub async fn probe(&self) -> Result<(), String> {
        let get = |path: &str| self.http.get(format!("{}{path}", self.base)).send();
        match self.kind {
            EndpointKind::Ollama | EndpointKind::Emulator => {
                let r = get("/api/version").await.map_err(|e| root_cause(&e))?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("GET /api/version answered {}", r.status()))
                }
            }
            EndpointKind::Openai => {
                let r = get("/health").await.map_err(|e| root_cause(&e))?;
                match r.status().as_u16() {
                    200 => Ok(()),
                    503 => Err("GET /health answered 503 (still loading the model)".to_owned()),
                    _ => {
                        let m = get("/v1/models").await.map_err(|e| root_cause(&e))?;
                        if m.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!(
                                "GET /health answered {}, GET /v1/models {}",
                                r.status(),
                                m.status()
                            ))
                        }
                    }
                }
            }
        }
    }
}

/// An Ollama model pull whose reply (one JSON progress line per event) is being read.
#[derive(Debug)]
pub struct OllamaPull {
    resp: reqwest::Response,
}

impl OllamaPull {
    /// Sends `POST /api/pull` (streamed) for `model` to the Ollama server at `url`. An error
    /// (the request failed, or the server answered with an error status) says what happened.
    pub async fn start(url: &str, model: &str) -> Result<OllamaPull, String> {
        let url = url.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| root_cause(&e))?;
        let body = serde_json::json!({ "model": model, "stream": true }).to_string();
        let resp = http
            .post(format!("{url}/api/pull"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| root_cause(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(300).collect());
            return Err(format!("POST /api/pull answered {status}: {msg}"));
        }
        Ok(OllamaPull { resp })
    }

    /// The next bytes of the reply; `None` at its end; the innermost cause when it fails.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, String> {
        self.resp.chunk().await.map_err(|e| root_cause(&e))
    }
}

/// One line of an `/api/pull` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// `pulling <digest>`, `verifying sha256 digest`, `success`...
    pub status: String,
    /// Bytes of the current layer, when known.
    pub total: Option<u64>,
    /// Bytes of it received so far, when known.
    pub completed: Option<u64>,
}

/// What one line of an `/api/pull` stream says: progress, or the server's `error`.
pub fn pull_line(line: &[u8]) -> Result<PullProgress, String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        format!(
            "unreadable progress line `{}`: {e}",
            String::from_utf8_lossy(line)
                .chars()
                .take(200)
                .collect::<String>()
        )
    })?;
    if let Some(err) = v.get("error") {
        return Err(err.as_str().map_or_else(|| err.to_string(), str::to_owned));
    }
    let status = v
        .get("status")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Ok(PullProgress {
        status,
        total: num("total"),
        completed: num("completed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny HTTP server answering each path with a fixed status; `/health` answers with
    /// the statuses of `health` in turn (the last one repeated).
    async fn fake_server(health: Vec<u16>, models: u16) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((mut sock, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let Ok(k) = sock.read(&mut buf).await else {
                    continue;
                };
                let req = String::from_utf8_lossy(&buf[..k]).into_owned();
                let code = if req.starts_with("GET /health ") {
                    n += 1;
                    health[(n - 1).min(health.len() - 1)]
                } else if req.starts_with("GET /v1/models ") {
                    models
                } else {
                    404
                };
                let resp = format!(
                    "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openai_servers_are_ready_on_health_200_or_else_on_v1_models() {
        let spec = |url: String| ReadinessProbe::new(EndpointKind::Openai, &url).expect("client");
        // llama-server: 503 while it loads the model, then 200.
        let s = spec(fake_server(vec![503, 200], 404).await);
        let first = s.probe().await.expect_err("loading");
        assert!(first.contains("503 (still loading the model)"), "{first}");
        s.probe().await.expect("ready");
        // No /health route: /v1/models decides.
        let s = spec(fake_server(vec![404], 200).await);
        s.probe().await.expect("ready by /v1/models");
        let s = spec(fake_server(vec![404], 500).await);
        let e = s.probe().await.expect_err("neither");
        assert!(e.contains("/v1/models 500"), "{e}");
        // Nothing listening.
        let s = spec("http://127.0.0.1:9".into());
        assert!(s.probe().await.is_err());
    }

    #[test]
    fn pull_lines_carry_progress_or_an_error() {
        assert_eq!(
            pull_line(
                br#"{"status":"pulling abc","digest":"sha256:abc","total":10,"completed":4}"#
            ),
            Ok(PullProgress {
                status: "pulling abc".into(),
                total: Some(10),
                completed: Some(4)
            })
        );
        assert_eq!(
            pull_line(br#"{"status":"success"}"#),
            Ok(PullProgress {
                status: "success".into(),
                total: None,
                completed: None
            })
        );
        assert_eq!(
            pull_line(br#"{"error":"pull model manifest: file does not exist"}"#),
            Err("pull model manifest: file does not exist".into())
        );
        assert!(pull_line(b"not json").is_err());
    }
}

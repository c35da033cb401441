//! Models of managed Ollama servers: a tag the plan uses there and `/api/tags` lacks is pulled
//! (`POST /api/pull` through [`crate::backend::manage`]), its progress shown.

use std::time::Duration;

use tokio::sync::watch;

use super::cancel::cancelled;
use super::console::say;
use super::error::ManagedError;
use super::spec::ServerSpec;
use crate::backend::manage::{OllamaPull, pull_line};

/// A pull that sends nothing for this long has stalled.
const PULL_STALL: Duration = Duration::from_secs(300);

/// Pulls `model` into a managed Ollama server unless it already has it, then checks that it
/// is listed.
pub(crate) async fn ensure_model(
    spec: &ServerSpec,
    model: &str,
    cancel: watch::Receiver<bool>,
) -> Result<(), ManagedError> {
    let fail = |message: String| ManagedError::Pull {
        endpoint: spec.endpoint.clone(),
        url: spec.url.clone(),
        model: model.to_owned(),
        message,
        log: Some(spec.log.clone()),
    };
    let client =
        crate::backend::ollama::OllamaClient::new(&spec.url).map_err(|e| fail(e.to_string()))?;
    let listed = |r: Result<Option<String>, crate::backend::RequestError>| match r {
        Ok(d) => Ok(d.is_some()),
        Err(e) => Err(fail(format!(
            "cannot list its models (GET /api/tags): {}",
            e.message
        ))),
    };
    if listed(client.model_digest(model).await)? {
        return Ok(());
    }
    pull_model(&spec.endpoint, &spec.url, model, cancel)
        .await
        .map_err(|e| match e {
            ManagedError::Pull { message, .. } => fail(message),
            other => other,
        })?;
    if listed(client.model_digest(model).await)? {
        Ok(())
    } else {
        Err(fail(
            "the pull reported success, but GET /api/tags does not list the model".to_owned(),
        ))
    }
}

/// How a pull's progress is shown: a progress bar on a terminal, plain lines otherwise.
struct PullDisplay {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    status: String,
    quarter: u64,
}

impl PullDisplay {
    fn new(label: String) -> PullDisplay {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            ) {
                b.set_style(style);
            }
            b.set_message(label.clone());
            b
        });
        PullDisplay {
            bar,
            label,
            status: String::new(),
            quarter: 0,
        }
    }

    fn update(&mut self, status: &str, total: Option<u64>, completed: Option<u64>) {
        let changed = status != self.status;
        if changed {
            self.status = status.to_owned();
            self.quarter = 0;
        }
        match &self.bar {
            Some(b) => {
                if let Some(t) = total {
                    b.set_length(t);
                    b.set_position(completed.unwrap_or(0).min(t));
                }
                if changed {
                    b.set_message(format!("{}: {status}", self.label));
                }
            }
            None => {
                let quarter = match (total, completed) {
                    (Some(t), Some(c)) if t > 0 => (c.min(t) * 4 / t).min(4),
                    _ => 0,
                };
                if changed || quarter > self.quarter {
                    self.quarter = quarter;
                    let size = match (total, completed) {
                        (Some(t), Some(c)) if t > 0 => format!(
                            " {:.0} % of {:.1} MB",
                            c.min(t) as f64 * 100.0 / t as f64,
                            t as f64 / 1e6
                        ),
                        _ => String::new(),
                    };
                    say(&format!("{}: {status}{size}", self.label));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            say(&format!("{}: {}", self.label, self.status));
        }
    }
}

impl Drop for PullDisplay {
    fn drop(&mut self) {
        if let Some(b) = &self.bar
            && !b.is_finished()
        {
            b.abandon();
        }
    }
}

/// Pulls `model` into the Ollama server at `url` (`POST /api/pull`, streamed), showing its
/// progress (`status`, `total`, `completed`): a progress bar on a terminal, plain lines
/// otherwise. An `{"error": …}` line, a stream that fails, stalls for 5 minutes, or ends
/// without `success` is an error. `endpoint` names the server in messages.
pub async fn pull_model(
    endpoint: &str,
    url: &str,
    model: &str,
    mut cancel: watch::Receiver<bool>,
) -> Result<(), ManagedError> {
    let url = url.trim_end_matches('/');
    let fail = |message: String| ManagedError::Pull {
        endpoint: endpoint.to_owned(),
        url: url.to_owned(),
        model: model.to_owned(),
        message,
        log: None,
    };
    let start = OllamaPull::start(url, model);
    let mut pull = tokio::select! {
        r = start => r.map_err(&fail)?,
        () = cancelled(&mut cancel) => return Err(ManagedError::Interrupted),
    };
    let mut display = PullDisplay::new(format!("endpoint `{endpoint}`: pull {model}"));
    let mut buf: Vec<u8> = Vec::new();
    let mut success = false;
    let mut handle = |line: &[u8], display: &mut PullDisplay| -> Result<(), ManagedError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let p = pull_line(line).map_err(&fail)?;
        if p.status == "success" {
            success = true;
        }
        display.update(&p.status, p.total, p.completed);
        Ok(())
    };
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(PULL_STALL, pull.chunk()) => c,
            () = cancelled(&mut cancel) => return Err(ManagedError::Interrupted),
        };
        let chunk = match chunk {
            Err(_) => {
                return Err(fail(format!(
                    "the pull sent nothing for {} s (last status: `{}`)",
                    PULL_STALL.as_secs(),
                    display.status
                )));
            }
            Ok(Err(e)) => {
                return Err(fail(format!(
                    "the pull stream failed: {e} (last status: `{}`)",
                    display.status
                )));
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            handle(&line, &mut display)?;
        }
        if buf.len() > 1024 * 1024 {
            return Err(fail("a progress line longer than 1 MiB".to_owned()));
        }
    }
    let rest = std::mem::take(&mut buf);
    handle(&rest, &mut display)?;
    if !success {
        return Err(fail(format!(
            "the pull stream ended without `success` (last status: `{}`)",
            display.status
        )));
    }
    display.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    /// One model the emulator does not have until it is pulled (shared with `tests/managed.rs`).
    const ABSENT: &str = include_str!("../../tests/fixtures/emulator/absent-model.yaml");

    /// The emulator's `/api/pull` and chimera's pull client, in process: an absent model is
    /// listed (on that listener only) once pulled; an unknown one is an error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pull_makes_an_absent_model_present_on_the_emulator() {
        let profile = crate::emulator::Profile::from_yaml(ABSENT).expect("profile");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let emu = crate::emulator::spawn(profile, &[any, any])
            .await
            .expect("emulator");
        let urls: Vec<String> = emu.addrs.iter().map(|a| format!("http://{a}")).collect();
        let a = crate::backend::ollama::OllamaClient::new(&urls[0]).expect("client");
        let b = crate::backend::ollama::OllamaClient::new(&urls[1]).expect("client");
        assert_eq!(a.model_digest("m:latest").await.expect("tags"), None);
        let (_tx, rx) = tokio::sync::watch::channel(false);
        super::pull_model("a", &urls[0], "m:latest", rx.clone())
            .await
            .expect("pull");
        assert_eq!(
            a.model_digest("m:latest").await.expect("tags"),
            Some(crate::emulator::default_digest("m:latest"))
        );
        assert_eq!(
            b.model_digest("m:latest").await.expect("tags"),
            None,
            "each listener has its own model store"
        );
        let err = super::pull_model("a", &urls[0], "nope", rx)
            .await
            .expect_err("unknown model");
        assert!(
            err.to_string()
                .contains("pull model manifest: file does not exist"),
            "{err}"
        );
        emu.shutdown().await;
    }
}

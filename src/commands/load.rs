//! `chimera load`: a serving-load sweep against one endpoint.

use std::sync::Arc;
use std::time::Duration;

use super::{runtime, with_stdout};
use crate::backend::{Client, LlmRequest};
use crate::cli::{LoadArgs, LoadFormat};
use crate::error::Error;
use crate::load::arrivals::Stop;
use crate::load::sweep::{Levels, Sweep, render_text, run};
use crate::load::{Slo, SloMetric};
use crate::manifest::{Api, EndpointKind, Options};

/// An SLO written `METRIC<=MS[@pP]`.
fn parse_slo(s: &str) -> Result<Slo, Error> {
    let bad = || {
        Error::Usage(format!(
            "--slo `{s}`: write METRIC<=MS[@pP], METRIC one of ttft_ms, tpot_ms, itl_ms, e2e_ms, e.g. ttft_ms<=500@p99"
        ))
    };
    let (metric, rest) = s.split_once("<=").ok_or_else(bad)?;
    let (max, pct) = match rest.split_once('@') {
        Some((m, p)) => (m, Some(p.trim().trim_start_matches(['p', 'P']))),
        None => (rest, None),
    };
    let metric = match metric.trim() {
        "ttft_ms" => SloMetric::TtftMs,
        "tpot_ms" => SloMetric::TpotMs,
        "itl_ms" => SloMetric::ItlMs,
        "e2e_ms" => SloMetric::E2eMs,
        _ => return Err(bad()),
    };
    let max_ms: f64 = max.trim().parse().map_err(|_| bad())?;
    let percentile: f64 = match pct {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 99.0,
    };
    if !(max_ms.is_finite() && max_ms > 0.0 && (0.0..=100.0).contains(&percentile)) {
        return Err(bad());
    }
    Ok(Slo {
        metric,
        max_ms,
        percentile,
    })
}

/// The sweep's levels: a trace's speeds, rates, or users.
fn levels(args: &LoadArgs) -> Result<Levels, Error> {
    Ok(if let Some(path) = &args.trace {
        if let Some(x) = args
            .trace_speed
            .iter()
            .find(|x| !(x.is_finite() && **x > 0.0))
        {
            return Err(Error::Usage(format!(
                "--trace-speed {x}: speeds are positive factors (2: twice as fast)"
            )));
        }
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("--trace {name}: cannot read it: {e}")))?;
        let entries =
            crate::load::trace::parse(&name, &text).map_err(|e| Error::Usage(e.to_string()))?;
        Levels::Trace {
            entries,
            speeds: args.trace_speed.clone(),
        }
    } else if args.users.is_empty() {
        if let Some(r) = args.rate.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return Err(Error::Usage(format!(
                "--rate {r}: rates are positive requests per second"
            )));
        }
        Levels::Rates {
            rates: args.rate.clone(),
            seed: args.poisson,
        }
    } else {
        if args.users.contains(&0) {
            return Err(Error::Usage(
                "--users: every level needs at least one user".into(),
            ));
        }
        Levels::Users(args.users.clone())
    })
}

/// Where each load stops: `--requests`, `--duration-s`, or a trace's end.
fn stop(args: &LoadArgs, trace_len: u64) -> Result<Stop, Error> {
    Ok(match (args.requests, args.duration_s) {
        (None, None) if trace_len > 0 => Stop::Requests(trace_len),
        (None, None) => {
            return Err(Error::Usage(
                "give --requests N or --duration-s S: where each load stops".into(),
            ));
        }
        (Some(n), _) if n > args.warmup_requests => Stop::Requests(n),
        (Some(n), _) => {
            return Err(Error::Usage(format!(
                "--requests {n} leaves nothing after --warmup-requests {}: send more",
                args.warmup_requests
            )));
        }
        (None, Some(d)) if d.is_finite() && d > 0.0 && d <= 86_400.0 => {
            Stop::DurationMs(d * 1000.0)
        }
        _ => {
            return Err(Error::Usage(
                "--duration-s: a number of seconds above 0 and at most 86400".into(),
            ));
        }
    })
}

/// `chimera load`.
pub(super) fn load(args: &LoadArgs) -> Result<(), Error> {
    let kind = match args.kind.as_str() {
        "openai" => EndpointKind::Openai,
        "ollama" => EndpointKind::Ollama,
        k => {
            return Err(Error::Usage(format!(
                "--kind `{k}`: use `openai` (llama-server, vLLM) or `ollama`"
            )));
        }
    };
    let slos = args
        .slo
        .iter()
        .map(|s| parse_slo(s))
        .collect::<Result<Vec<_>, _>>()?;
    let usage = |m: String| Err(Error::Usage(m));
    if args.repetitions == 0 {
        return usage("--repetitions: at least 1".into());
    }
    if !(args.timeout_s.is_finite() && args.timeout_s > 0.0 && args.timeout_s <= 86_400.0) {
        return usage(format!(
            "--timeout-s {}: a number of seconds above 0 and at most 86400",
            args.timeout_s
        ));
    }
    if args.poisson.is_some() && !args.users.is_empty() {
        return usage("--poisson is for open-loop rates (--rate), not --users".into());
    }
    match args.input_tokens {
        Some(n) if n == 0 || n > 1_000_000 => {
            return usage(format!("--input-tokens {n}: between 1 and 1000000"));
        }
        _ => {}
    }
    if args.output_tokens == Some(0) {
        return usage("--output-tokens: at least 1".into());
    }
    let levels = levels(args)?;
    let trace_len = match &levels {
        Levels::Trace { entries, .. } => entries.len() as u64,
        _ => 0,
    };
    let stop = stop(args, trace_len)?;
    let client =
        Client::new(kind, &args.url).map_err(|e| Error::Usage(format!("{}: {e}", args.url)))?;
    let sweep = Sweep {
        levels,
        stop,
        warmup: (args.warmup_requests > 0).then_some(Stop::Requests(args.warmup_requests)),
        repetitions: args.repetitions.max(1),
        input_tokens: args.input_tokens,
        output_tokens: args.output_tokens,
        slos,
        base: LlmRequest {
            api: if args.chat { Api::Chat } else { Api::Generate },
            model: args.model.clone(),
            prompt: String::new(),
            stream: true,
            options: Options::default(),
            keep_alive: None,
            timeout: Duration::from_secs_f64(args.timeout_s.max(0.001)),
            max_response_bytes: 16 << 20,
        },
        nonce: args.nonce.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        }),
    };
    let rt = runtime().map_err(Error::Output)?;
    let result = rt
        .block_on(run(&sweep, Arc::new(client)))
        .map_err(|e| Error::Usage(e.to_string()))?;
    with_stdout(|out| {
        let text = match args.format {
            LoadFormat::Text => render_text(&result),
            LoadFormat::Json => serde_json::to_string_pretty(&result).unwrap_or_default() + "\n",
        };
        out.write_all(text.as_bytes()).map_err(Error::Output)
    })?;
    // A level where no request succeeded measured nothing: say so in the exit status.
    let dead: Vec<String> = result
        .levels
        .iter()
        .filter(|l| l.runs.iter().all(|r| r.ok == 0))
        .map(|l| l.level.to_string())
        .collect();
    if dead.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "no request succeeded at level(s) {} of {}: check the URL, --model and --kind, and the server's log",
            dead.join(", "),
            args.url
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slos_are_written_metric_bound_percentile() {
        let s = parse_slo("ttft_ms<=500@p95").expect("slo");
        assert_eq!(
            (s.metric, s.max_ms, s.percentile),
            (SloMetric::TtftMs, 500.0, 95.0)
        );
        assert_eq!(parse_slo("tpot_ms<=50").expect("slo").percentile, 99.0);
        for bad in [
            "ttft<=5",
            "ttft_ms<5",
            "ttft_ms<=x",
            "ttft_ms<=5@p101",
            "e2e_ms<=-1",
        ] {
            let e = parse_slo(bad).expect_err(bad).to_string();
            assert!(e.contains("METRIC<=MS"), "{e}");
        }
    }
}

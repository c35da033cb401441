//! `chimera-agent`: chimera's reference Rust agent program for `command` workloads
//! (`docs/agent-protocol.md`).
//!
//! It reads the job chimera wrote, builds the prompts with chimera's own workload code, sends
//! them with a small HTTP/1.1 client over the chosen executor's own sockets (tokio, smol or
//! async-std), and appends one record line per request.
//!
//! Exit status: 0 when the workflow ran (failed requests are records with an `error`), 1 when
//! the records file cannot be written, 2 for a usage or job error, 3 for corpus layout drift.

mod args;
mod client;
mod exec;
mod http;
mod job;
mod measure;
mod ollama;
mod openai;
mod request;
mod runtime;
mod workflow;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::args::{Args, Command};
use crate::client::Target;
use crate::measure::MAX_RESPONSE_BYTES;
use crate::request::{Api, Request};
use crate::runtime::Runtime;
use crate::workflow::{RecordSink, Work};

/// Why the program stops early: the exit status and the message for standard error.
#[derive(Debug)]
struct Exit {
    code: u8,
    message: String,
}

/// A usage or job error (exit 2).
fn usage(message: impl Into<String>) -> Exit {
    Exit {
        code: 2,
        message: message.into(),
    }
}

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chimera-agent: {}", e.message);
            if e.code == 2 && e.message.starts_with("usage: ") {
                eprintln!("{}", args::USAGE);
            }
            ExitCode::from(e.code)
        }
    }
}

fn run(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Result<(), Exit> {
    let args = match args::parse(argv) {
        Ok(Command::Help) => return print_line(args::USAGE),
        Ok(Command::Run(a)) => a,
        Err(e) => return Err(usage(format!("usage: {e}"))),
    };
    let job = job::load(&args.job).map_err(usage)?;
    let runtime_name = args
        .runtime
        .clone()
        .or_else(|| job.runtime.clone())
        .unwrap_or_default();
    let runtime = Runtime::parse(&runtime_name).ok_or_else(|| {
        usage(format!(
            "unknown runtime `{runtime_name}` (from {}); one of: {}",
            if args.runtime.is_some() {
                "--runtime".to_owned()
            } else {
                format!("the `runtime` of {}", args.job.display())
            },
            Runtime::names()
        ))
    })?;
    let api = Api::parse(&job.api).ok_or_else(|| {
        usage(format!(
            "{}: field `api`: `{}` is neither `generate` nor `chat`",
            args.job.display(),
            job.api
        ))
    })?;
    let timeout = Some(job.timeout_s)
        .filter(|t| *t > 0.0)
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .ok_or_else(|| {
            usage(format!(
                "{}: field `timeout_s`: {} is not a positive number of seconds",
                args.job.display(),
                job.timeout_s
            ))
        })?;

    let plan = workflow::plan(&job).map_err(|e| Exit {
        code: 3,
        message: format!(
            "{}: {e}",
            job.corpus_dir.as_deref().unwrap_or("(no corpus)")
        ),
    })?;
    if args.print_prompts {
        return print_prompts(&args, &plan);
    }

    let records = Path::new(&job.records);
    let sink = RecordSink::open(records).map_err(|e| records_error(records, &e))?;
    let work = Work {
        plan,
        request: Request {
            api,
            model: job.model.clone(),
            prompt: String::new(),
            stream: job.stream,
            options: job.options.clone(),
            keep_alive: job.keep_alive.clone(),
            force_output_tokens: job.force_output_tokens,
        },
        target: Target {
            url: http::parse_base_url(&job.url),
            protocol: job.protocol_kind,
            timeout,
            rechunk: args.rechunk.unwrap_or(runtime.default_rechunk()),
            max_bytes: MAX_RESPONSE_BYTES,
        },
        sink,
    };
    runtime.run(work).map_err(|e| records_error(records, &e))
}

fn records_error(path: &Path, e: &std::io::Error) -> Exit {
    Exit {
        code: 1,
        message: format!("cannot write the records file {}: {e}", path.display()),
    }
}

/// `--print-prompts`: the prompts as one JSON line on standard output.
fn print_prompts(args: &Args, plan: &workflow::Plan) -> Result<(), Exit> {
    let analysis = match &args.analysis_text {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
            usage(format!(
                "cannot read the analysis text {}: {e}",
                p.display()
            ))
        })?),
        None => None,
    };
    let json = workflow::prompts_json(plan, analysis.as_deref())
        .map_err(|e| usage(format!("cannot encode the prompts: {e}")))?;
    print_line(&json)
}

/// Writes `text` and a newline to standard output (a closed output is an error, not a
/// panic).
fn print_line(text: &str) -> Result<(), Exit> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Exit {
            code: 1,
            message: format!("cannot write to standard output: {e}"),
        })
}

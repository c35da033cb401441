//! The command line, parsed by hand.

use std::ffi::OsString;
use std::path::PathBuf;

/// The usage text.
pub(crate) const USAGE: &str = "\
usage: chimera-agent --job JOB.json [--runtime NAME] [--rechunk BYTES]
                     [--print-prompts [--analysis-text FILE]]

  --job JOB.json        the job file chimera wrote (docs/agent-protocol.md)
  --runtime NAME        tokio-default | tokio-current-thread | tokio-localset | smol |
                        async-std | smol-1kb (default: the job's `runtime`, else
                        tokio-default)
  --rechunk BYTES       hand the reply body to the parser in pieces of at least BYTES
                        bytes (smol-1kb: 1024)
  --print-prompts       send nothing; print the prompts as JSON and exit
  --analysis-text FILE  with --print-prompts: build the report prompt from this analysis
                        response
  -h, --help            this text";

/// What the command line asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Print the usage.
    Help,
    /// Run (or print the prompts of) a job.
    Run(Args),
}

/// The options of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    /// `--job`.
    pub(crate) job: PathBuf,
    /// `--runtime`.
    pub(crate) runtime: Option<String>,
    /// `--rechunk`.
    pub(crate) rechunk: Option<usize>,
    /// `--print-prompts`.
    pub(crate) print_prompts: bool,
    /// `--analysis-text`.
    pub(crate) analysis_text: Option<PathBuf>,
}

/// Parses the arguments (without the program name). `--name value` and `--name=value` are
/// both accepted; an error says what is wrong.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut job = None;
    let mut runtime = None;
    let mut rechunk = None;
    let mut print_prompts = false;
    let mut analysis_text = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(OsString::from(v))),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<OsString, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--job" => set(&mut job, name, PathBuf::from(value(name)?))?,
            "--runtime" => {
                let v = value(name)?;
                let v = v
                    .into_string()
                    .map_err(|v| format!("--runtime: {v:?} is not UTF-8"))?;
                set(&mut runtime, name, v)?;
            }
            "--rechunk" => {
                let v = value(name)?;
                let n = v
                    .to_str()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(|| format!("--rechunk: {v:?} is not a byte count"))?;
                set(&mut rechunk, name, n)?;
            }
            "--analysis-text" => set(&mut analysis_text, name, PathBuf::from(value(name)?))?,
            "--print-prompts" if inline.is_none() => {
                if print_prompts {
                    return Err("--print-prompts given twice".to_owned());
                }
                print_prompts = true;
            }
            _ => return Err(format!("unexpected argument `{text}`")),
        }
    }
    let Some(job) = job else {
        return Err("--job is required".to_owned());
    };
    if analysis_text.is_some() && !print_prompts {
        return Err("--analysis-text only goes with --print-prompts".to_owned());
    }
    Ok(Command::Run(Args {
        job,
        runtime,
        rechunk,
        print_prompts,
        analysis_text,
    }))
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{name} given twice"));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn full_and_minimal_command_lines() {
        assert_eq!(
            p(&["--job", "j.json"]),
            Ok(Command::Run(Args {
                job: "j.json".into(),
                runtime: None,
                rechunk: None,
                print_prompts: false,
                analysis_text: None,
            }))
        );
        assert_eq!(
            p(&[
                "--runtime=smol",
                "--job",
                "j.json",
                "--rechunk",
                "1024",
                "--print-prompts",
                "--analysis-text",
                "a.txt"
            ]),
            Ok(Command::Run(Args {
                job: "j.json".into(),
                runtime: Some("smol".into()),
                rechunk: Some(1024),
                print_prompts: true,
                analysis_text: Some("a.txt".into()),
            }))
        );
        assert_eq!(p(&["--job", "j", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |args: &[&str]| p(args).expect_err("refused");
        assert!(err(&[]).contains("--job is required"));
        assert!(err(&["--job"]).contains("--job needs a value"));
        assert!(err(&["--job", "a", "--job", "b"]).contains("twice"));
        assert!(err(&["--job", "a", "--rechunk", "-1"]).contains("byte count"));
        assert!(err(&["--job", "a", "--rechunk", "1k"]).contains("byte count"));
        assert!(err(&["--job", "a", "--bogus"]).contains("`--bogus`"));
        assert!(err(&["--job", "a", "extra"]).contains("`extra`"));
        assert!(err(&["--job", "a", "--print-prompts=1"]).contains("unexpected"));
        assert!(err(&["--job", "a", "--analysis-text", "t"]).contains("--print-prompts"));
    }
}

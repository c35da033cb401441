//! `chimera slurm submit` and `chimera slurm resubmit`: a campaign's shards as a Slurm job
//! array, and a report job that waits for it.
//!
//! `submit` writes two batch scripts into `<data>/<campaign>/slurm/` — `shards.sbatch`, one
//! array task per shard (`chimera run … --shard $SLURM_ARRAY_TASK_ID/N`, each task starting
//! the manifests' managed servers on its own node), and `report.sbatch` (`chimera status`,
//! `analyze`, then `report`) — submits the array, then the report job with
//! `--dependency=afterok:<array>` and `--kill-on-invalid-dep=yes` (a failed or cancelled
//! shard cancels the pending report instead of leaving it waiting forever), and records the
//! submission in `slurm/submit.json` and `slurm/jobs.jsonl`. The task logs go to
//! `slurm/logs/`. `resubmit` reads the campaign's shards (see `chimera status`) and submits
//! again the array tasks of those that are neither done nor running, with a new report job.
//!
//! Every path in the scripts is absolute: the jobs run wherever Slurm starts them, on nodes
//! that share the data directory's filesystem. The submitting shell's environment goes with
//! the jobs (sbatch's default `--export=ALL`), so variables the manifests name (`${…}`) reach
//! the servers the shards start.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::plan::ShardBy;

/// The directory of a campaign's Slurm files.
pub const SLURM_DIR: &str = "slurm";

/// What `chimera slurm submit` submits (also `slurm/submit.json`, which `resubmit` reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmOptions {
    /// The manifests, absolute.
    pub manifests: Vec<PathBuf>,
    /// The data directory, absolute.
    pub data: PathBuf,
    /// The campaign.
    pub campaign: String,
    /// Shards (array tasks).
    pub shards: u32,
    /// What a shard keeps together.
    pub shard_by: ShardBy,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--gres` per task (e.g. `gpu:1`).
    pub gres: Option<String>,
    /// `--time` per task (e.g. `02:00:00`).
    pub time: Option<String>,
    /// Task `I` runs with `--port-offset I × step` (several tasks may share a node).
    pub port_offset_step: u16,
    /// The chimera binary the tasks run, absolute.
    pub chimera: PathBuf,
    /// Further `#SBATCH` lines, each an sbatch option (e.g. `--account=lab`).
    pub sbatch_args: Vec<String>,
}

/// Errors of `chimera slurm`.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// `sbatch` is not installed here.
    #[error(
        "`sbatch` was not found on PATH, so Slurm is not reachable from this machine.\n  = help: \
         run `chimera slurm submit` on a Slurm login node, or pass --dry-run to print the job \
         scripts"
    )]
    NoSlurm,
    /// `sbatch` refused a job.
    #[error("sbatch refused the {what}: {message}\n  = help: {help}")]
    Refused {
        /// Which job.
        what: &'static str,
        /// sbatch's message.
        message: String,
        /// What to change.
        help: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The campaign was not submitted with `chimera slurm submit`.
    #[error(
        "campaign `{campaign}` has no {}: it was not submitted with `chimera slurm submit`.\n  = \
         help: submit it with `chimera slurm submit`, or run its shards by hand with \
         `chimera run … --shard I/N`",
        path.display()
    )]
    NotSubmitted {
        /// The campaign.
        campaign: String,
        /// The missing file.
        path: PathBuf,
    },
    /// The options cannot make a submission.
    #[error("{0}")]
    Invalid(String),
    /// The campaign's state could not be read.
    #[error(transparent)]
    Status(#[from] crate::store::StatusError),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SlurmError + '_ {
    move |source| SlurmError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A word for a POSIX shell, single-quoted.
fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn path_word(p: &Path) -> String {
    sh(&p.display().to_string())
}

impl SlurmOptions {
    /// `<data>/<campaign>/slurm/`.
    pub fn dir(&self) -> PathBuf {
        self.data.join(&self.campaign).join(SLURM_DIR)
    }

    /// Where the array tasks log (`%a` task, `%A` array job).
    fn shards_log(&self) -> String {
        self.dir()
            .join("logs")
            .join("shard-%a-job-%A.log")
            .display()
            .to_string()
    }

    /// Where the report job logs.
    fn report_log(&self) -> String {
        self.dir()
            .join("logs")
            .join("report-job-%j.log")
            .display()
            .to_string()
    }

    /// The `#SBATCH` lines every job of the submission shares.
    fn common_lines(&self, out: &mut String) {
        for (flag, v) in [("partition", &self.partition), ("time", &self.time)] {
            if let Some(v) = v {
                let _ = writeln!(out, "#SBATCH --{flag}={v}");
            }
        }
        for a in &self.sbatch_args {
            let _ = writeln!(out, "#SBATCH {a}");
        }
    }

    /// `shards.sbatch`: one array task per shard.
    pub fn shards_script(&self) -> String {
        let dir = self.dir();
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(
            s,
            "# chimera: the {n} shards of campaign `{c}`, one Slurm array task each (written by\n\
             # `chimera slurm submit`). Each task starts the manifests' managed servers on its node\n\
             # and runs its part of the plan into {d}.\n\
             # Run one shard again alone: sbatch --array=I {script}\n\
             # (or `chimera slurm resubmit --data {data} --campaign {c}` for every unfinished one).",
            n = self.shards,
            c = self.campaign,
            d = self.data.join(&self.campaign).display(),
            script = dir.join("shards.sbatch").display(),
            data = self.data.display(),
        );
        let _ = writeln!(s, "#SBATCH --job-name=chimera-{}", self.campaign);
        let _ = writeln!(s, "#SBATCH --array=0-{}", self.shards - 1);
        // Also passed on sbatch's command line (a path with spaces cannot be an #SBATCH value).
        if !self.shards_log().contains(char::is_whitespace) {
            let _ = writeln!(s, "#SBATCH --output={}", self.shards_log());
        }
        if let Some(g) = &self.gres {
            let _ = writeln!(s, "#SBATCH --gres={g}");
        }
        self.common_lines(&mut s);
        let _ = writeln!(s, "set -euo pipefail");
        let _ = writeln!(
            s,
            "I=\"${{SLURM_ARRAY_TASK_ID:?submit this script with sbatch --array}}\""
        );
        let mut cmd = format!("exec {} run", path_word(&self.chimera));
        for m in &self.manifests {
            let _ = write!(cmd, " {}", path_word(m));
        }
        let _ = write!(
            cmd,
            " --data {} --campaign {} --shard \"$I/{}\" --shard-by {}",
            path_word(&self.data),
            sh(&self.campaign),
            self.shards,
            self.shard_by.name()
        );
        if self.port_offset_step > 0 {
            let _ = write!(cmd, " --port-offset \"$((I * {}))\"", self.port_offset_step);
        }
        let _ = writeln!(s, "{cmd}");
        s
    }

    /// `report.sbatch`: the campaign's status and report, after every shard succeeded.
    pub fn report_script(&self) -> String {
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(
            s,
            "# chimera: the report of campaign `{}` once every shard has succeeded (submitted with\n\
             # --dependency=afterok:<shards job> by `chimera slurm submit`).",
            self.campaign
        );
        let _ = writeln!(s, "#SBATCH --job-name=chimera-{}-report", self.campaign);
        if !self.report_log().contains(char::is_whitespace) {
            let _ = writeln!(s, "#SBATCH --output={}", self.report_log());
        }
        let _ = writeln!(s, "#SBATCH --kill-on-invalid-dep=yes");
        self.common_lines(&mut s);
        let _ = writeln!(s, "set -euo pipefail");
        let chimera = path_word(&self.chimera);
        let sel = format!(
            "--data {} --campaign {}",
            path_word(&self.data),
            sh(&self.campaign)
        );
        // Every cell committed, or the job fails (and says which shards are missing).
        let _ = writeln!(s, "{chimera} status {sel} --require-complete");
        let _ = writeln!(s, "{chimera} analyze {sel}");
        let _ = writeln!(s, "exec {chimera} report {sel}");
        s
    }
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The array job's id.
    pub shards_job: String,
    /// The array tasks submitted (`0-3`, `2`, `1,3`).
    pub tasks: String,
    /// The report job's id.
    pub report_job: String,
    /// When.
    pub at_unix_ms: f64,
}

/// Runs `sbatch --parsable ARGS SCRIPT` and returns the job id it prints.
fn sbatch(args: &[String], script: &Path, what: &'static str) -> Result<String, SlurmError> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SlurmError::NoSlurm,
            _ => SlurmError::Io {
                path: PathBuf::from("sbatch"),
                source: e,
            },
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !out.status.success() {
        let low = stderr.to_ascii_lowercase();
        let help = if low.contains("partition") {
            "list the partitions with `sinfo -s` and pass one with --partition".to_owned()
        } else if low.contains("gres") {
            "check --gres against what the nodes offer (`sinfo -o '%P %G'`)".to_owned()
        } else if low.contains("time limit") {
            "pass a --time within the partition's limit (`sinfo -o '%P %l'`)".to_owned()
        } else {
            "fix what sbatch names above; the job scripts are in the campaign's slurm/ directory"
                .to_owned()
        };
        return Err(SlurmError::Refused {
            what,
            message: if stderr.is_empty() {
                out.status.to_string()
            } else {
                stderr
            },
            help,
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or_default().to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlurmError::Refused {
            what,
            message: format!("sbatch printed no job id (stdout `{}`)", text.trim()),
            help: "check that `sbatch --parsable` works on this machine".to_owned(),
        });
    }
    Ok(id)
}

/// Writes the scripts and `submit.json` into `slurm/` (creating `slurm/logs/`).
fn write_files(o: &SlurmOptions) -> Result<(PathBuf, PathBuf), SlurmError> {
    let dir = o.dir();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io_at(&logs))?;
    let shards = dir.join("shards.sbatch");
    let report = dir.join("report.sbatch");
    std::fs::write(&shards, o.shards_script()).map_err(io_at(&shards))?;
    std::fs::write(&report, o.report_script()).map_err(io_at(&report))?;
    let json = dir.join("submit.json");
    let text = serde_json::to_vec_pretty(o).map_err(|e| SlurmError::Io {
        path: json.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&json, text).map_err(io_at(&json))?;
    Ok((shards, report))
}

/// The array jobs submitted for a campaign so far (`slurm/jobs.jsonl`), oldest first.
fn earlier_jobs(o: &SlurmOptions) -> Vec<String> {
    std::fs::read_to_string(o.dir().join("jobs.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Submission>(l).ok())
        .map(|s| s.shards_job)
        .collect()
}

/// The array tasks of earlier submissions that Slurm still holds (pending, running,
/// completing): `(shard, "<array job>_<task>")`. Jobs Slurm no longer knows are skipped; no
/// Slurm here gives none.
pub fn active_tasks(o: &SlurmOptions) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for job in earlier_jobs(o) {
        let Ok(q) = Command::new("squeue")
            .args(["-h", "-r", "-j", &job, "-o", "%F|%K|%T"])
            .output()
        else {
            return out;
        };
        for line in String::from_utf8_lossy(&q.stdout).lines() {
            let f: Vec<&str> = line.trim().split('|').collect();
            if let [array, task, state] = f[..]
                && let Ok(i) = task.parse::<u32>()
                && !matches!(state, "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT")
            {
                out.push((i, format!("{array}_{task}")));
            }
        }
    }
    out
}

/// The report job's dependency: every task of the new array succeeded, and so did the
/// earlier tasks that are still queued or running (a report must not overtake them).
fn report_dependency(new: &str, active: &[(u32, String)]) -> String {
    let mut dep = format!("afterok:{new}");
    for (_, task) in active {
        dep.push(':');
        dep.push_str(task);
    }
    dep
}

/// Submits `tasks` of the array and a report job after them (and after `active`, the earlier
/// tasks still in the queue); records the submission.
fn submit_tasks(
    o: &SlurmOptions,
    shards: &Path,
    report: &Path,
    tasks: &str,
    active: &[(u32, String)],
) -> Result<Submission, SlurmError> {
    let shards_job = sbatch(
        &[
            format!("--array={tasks}"),
            format!("--output={}", o.shards_log()),
        ],
        shards,
        "shards job",
    )?;
    let mut sub = Submission {
        shards_job,
        tasks: tasks.to_owned(),
        report_job: String::new(),
        at_unix_ms: crate::util::clock::now_unix_ms(),
    };
    let report_job = sbatch(
        &[
            format!(
                "--dependency={}",
                report_dependency(&sub.shards_job, active)
            ),
            format!("--output={}", o.report_log()),
        ],
        report,
        "report job",
    );
    if let Ok(id) = &report_job {
        sub.report_job.clone_from(id);
    }
    // Recorded either way: the shards run whether or not the report job was accepted.
    let log = o.dir().join("jobs.jsonl");
    let mut line = serde_json::to_string(&sub).unwrap_or_default();
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(io_at(&log))?;
    match report_job {
        Ok(_) => Ok(sub),
        Err(SlurmError::Refused { message, .. }) => Err(SlurmError::Refused {
            what: "report job",
            message: format!(
                "{message} (the shards were submitted as array job {})",
                sub.shards_job
            ),
            help: format!(
                "submit the report by hand once the cause is fixed: sbatch \
                 --dependency=afterok:{} {}",
                sub.shards_job,
                report.display()
            ),
        }),
        Err(e) => Err(e),
    }
}

/// How to follow a submission, for the terminal.
pub fn describe(o: &SlurmOptions, sub: &Submission, what: &str) -> String {
    format!(
        "campaign `{c}`: {what} submitted as Slurm array job {j} (tasks {t}); the report as job \
         {r}, once every shard has succeeded\n  follow:  squeue -j {j},{r}    chimera status \
         --data {d} --campaign {c}\n  logs:    {logs}/\n  a shard that failed or was \
         cancelled:  chimera slurm resubmit --data {d} --campaign {c}\n",
        c = o.campaign,
        j = sub.shards_job,
        t = sub.tasks,
        r = sub.report_job,
        d = o.data.display(),
        logs = o.dir().join("logs").display(),
    )
}

/// `chimera slurm submit`: writes the scripts and submits every shard and the report job.
pub fn submit(o: &SlurmOptions) -> Result<Submission, SlurmError> {
    if o.shards == 0 {
        return Err(SlurmError::Invalid(
            "--shards must be at least 1".to_owned(),
        ));
    }
    let (shards, report) = write_files(o)?;
    submit_tasks(o, &shards, &report, &format!("0-{}", o.shards - 1), &[])
}

/// The submission recorded for a campaign (`slurm/submit.json`).
pub fn recorded(data: &Path, campaign: &str) -> Result<SlurmOptions, SlurmError> {
    let path = data.join(campaign).join(SLURM_DIR).join("submit.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SlurmError::NotSubmitted {
                campaign: campaign.to_owned(),
                path,
            });
        }
        Err(e) => return Err(io_at(&path)(e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        SlurmError::Invalid(format!(
            "{}: {e}\n  = help: submit the campaign again with `chimera slurm submit`",
            path.display()
        ))
    })
}

/// The shards `resubmit` would submit again: those of the submission's shard count that are
/// neither done nor running (or exactly `only`, refusing running ones).
pub fn unfinished(o: &SlurmOptions, only: &[u32]) -> Result<(Vec<u32>, Vec<String>), SlurmError> {
    let states = crate::store::shard_overview(&o.data, &o.campaign)?;
    let queued = active_tasks(o);
    let mut notes = Vec::new();
    let mut picked = Vec::new();
    for s in states.iter().filter(|s| s.record.count == o.shards) {
        let i = s.record.index;
        if !only.is_empty() && !only.contains(&i) {
            continue;
        }
        if let Some((_, task)) = queued.iter().find(|(q, _)| *q == i) {
            notes.push(format!(
                "shard {i}/{} is still in Slurm's queue as job {task}; not submitted again",
                o.shards
            ));
            continue;
        }
        if let Some(holder) = &s.running {
            if only.contains(&i) {
                return Err(SlurmError::Invalid(format!(
                    "shard {i}/{} is running ({holder}); cancel it first (`scancel`) or wait",
                    o.shards
                )));
            }
            continue;
        }
        if s.done() {
            if only.contains(&i) {
                notes.push(format!(
                    "shard {i}/{} is done; it is submitted again as asked and will measure nothing",
                    o.shards
                ));
                picked.push(i);
            }
            continue;
        }
        picked.push(i);
    }
    for &i in only {
        if i >= o.shards {
            return Err(SlurmError::Invalid(format!(
                "--shard {i}: the campaign was submitted with {} shards, numbered 0 to {}",
                o.shards,
                o.shards - 1
            )));
        }
    }
    Ok((picked, notes))
}

/// `chimera slurm resubmit`: submits the array tasks of `shards` again, and a new report job
/// that also waits for the earlier tasks still in the queue.
pub fn resubmit(o: &SlurmOptions, shards: &[u32]) -> Result<Submission, SlurmError> {
    let active = active_tasks(o);
    let (script, report) = write_files(o)?;
    let tasks = shards
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    submit_tasks(o, &script, &report, &tasks, &active)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SlurmOptions {
        SlurmOptions {
            manifests: vec![
                PathBuf::from("/work/exp/tr114.yaml"),
                PathBuf::from("/work/my exp/b.yaml"),
            ],
            data: PathBuf::from("/shared/data"),
            campaign: "tr114".into(),
            shards: 8,
            shard_by: ShardBy::Comparison,
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("02:00:00".into()),
            port_offset_step: 100,
            chimera: PathBuf::from("/opt/chimera/bin/chimera"),
            sbatch_args: vec!["--account=lab".into()],
        }
    }

    #[test]
    fn the_shards_script_runs_one_shard_per_array_task() {
        let s = options().shards_script();
        for line in [
            "#SBATCH --array=0-7",
            "#SBATCH --output=/shared/data/tr114/slurm/logs/shard-%a-job-%A.log",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=02:00:00",
            "#SBATCH --account=lab",
            "exec /opt/chimera/bin/chimera run /work/exp/tr114.yaml '/work/my exp/b.yaml' \
             --data /shared/data --campaign tr114 --shard \"$I/8\" --shard-by comparison \
             --port-offset \"$((I * 100))\"",
        ] {
            assert!(s.lines().any(|l| l == line), "missing `{line}` in:\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
        // Every #SBATCH line comes before the first command (sbatch stops reading there).
        let first_cmd = s.lines().position(|l| l.starts_with("set ")).expect("set");
        assert!(s.lines().skip(first_cmd).all(|l| !l.starts_with("#SBATCH")));
    }

    #[test]
    fn the_report_script_waits_and_reports() {
        let mut o = options();
        o.gres = None;
        let s = o.report_script();
        assert!(s.contains("#SBATCH --kill-on-invalid-dep=yes\n"));
        assert!(!s.contains("--gres"), "the report needs no GPU");
        assert!(s.contains(
            "/opt/chimera/bin/chimera status --data /shared/data --campaign tr114 \
                 --require-complete\n"
        ));
        assert!(
            s.contains("/opt/chimera/bin/chimera analyze --data /shared/data --campaign tr114\n")
        );
        assert!(s.ends_with(
            "exec /opt/chimera/bin/chimera report --data /shared/data --campaign tr114\n"
        ));
    }

    #[test]
    fn a_resubmitted_report_waits_for_the_earlier_tasks_still_queued() {
        assert_eq!(report_dependency("12", &[]), "afterok:12");
        assert_eq!(
            report_dependency("15", &[(3, "7_3".into()), (5, "12_5".into())]),
            "afterok:15:7_3:12_5"
        );
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(sh("plain/path-1.yaml"), "plain/path-1.yaml");
        assert_eq!(sh("it's here"), "'it'\\''s here'");
        assert_eq!(sh("$HOME"), "'$HOME'");
        assert_eq!(sh(""), "''");
    }
}

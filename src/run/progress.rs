//! The progress display of a campaign run: a bar (indicatif) on a terminal, plain lines on
//! stderr otherwise. A [`RunSink`].

use std::io::{IsTerminal, Write as _};

use super::cells::label;
use super::events::{RunEvent, RunSink};
use crate::plan::Plan;
use crate::record::CellRecord;
use crate::store::StoreError;

/// What the progress display shows.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
}

impl Progress {
    /// A display of `total` cells; a bar only when `show_bar` and stderr is a terminal.
    pub(crate) fn new(total: usize, show_bar: bool) -> Self {
        let bar = (show_bar && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} cells  {msg}  ETA {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        Self {
            bar,
            total,
            done: 0,
            failed: 0,
            running: 0,
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) => {
                b.set_message(format!(
                    "running {}, failed {}, remaining {}",
                    self.running,
                    self.failed,
                    self.total
                        .saturating_sub(self.done + self.failed + self.running)
                ));
                b.set_position((self.done + self.failed) as u64);
                b.println(text);
            }
            None => {
                // Never panic on a closed stderr (e.g. piped into `head`).
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `  1234 ms  equal work 49.8 %, published 80.0 %, true 75.0 %  gpu 50.0 % 300.0 W 12.0 J`
/// for a measured cell, and `  SUSPECT: <reasons>` when a self-check failed.
fn measured(r: &CellRecord) -> String {
    let wall = format!("  {:.0} ms", r.wall_ms);
    let eff = r
        .multi_agent
        .as_ref()
        .and_then(|m| {
            let p = m.published_efficiency_pct?;
            let pct = |label: &str, x: Option<f64>| x.map(|x| format!("{label} {x:.1} %"));
            let parts: Vec<String> = [
                pct("equal work", m.equal_work_efficiency_pct),
                pct("published", Some(p)),
                pct("true", m.true_efficiency_pct),
            ]
            .into_iter()
            .flatten()
            .collect();
            Some(format!("  {}", parts.join(", ")))
        })
        .unwrap_or_default();
    let suspect = if r.suspect() {
        format!("  SUSPECT: {}", r.suspect_reasons.join("; "))
    } else {
        String::new()
    };
    let gpu = r
        .telemetry
        .as_ref()
        .map(|t| {
            let f =
                |x: Option<f64>, unit: &str| x.map_or(String::new(), |v| format!(" {v:.1} {unit}"));
            format!(
                "  gpu{}{}{}",
                f(t.gpu_util_mean_pct, "%"),
                f(t.power_mean_w, "W"),
                f(t.energy_j, "J")
            )
        })
        .unwrap_or_default();
    format!("{wall}{eff}{gpu}{suspect}")
}

impl RunSink for Progress {
    fn on_event(&mut self, plan: &Plan, ev: &RunEvent) -> Result<(), StoreError> {
        match ev {
            RunEvent::ServerRestarted {
                endpoint,
                exit,
                settings: None,
            } => self.line(format!(
                "restarted managed server `{endpoint}` (it had exited: {exit})"
            )),
            RunEvent::ServerRestarted {
                endpoint,
                settings: Some(settings),
                ..
            } => self.line(format!(
                "restarted managed server `{endpoint}` with settings {settings}"
            )),
            RunEvent::CellScheduled => self.running += 1,
            RunEvent::CellStarted { .. } => {}
            RunEvent::CellRetrying {
                ni,
                attempt,
                kind,
                message,
                delay,
            } => self.line(format!(
                "retry     {}  attempt {attempt} failed ({kind}: {message}); next in {:.1} s",
                label(plan, *ni),
                delay.as_secs_f64()
            )),
            RunEvent::CellFinished { ni, record, .. } => {
                self.done += 1;
                self.running = self.running.saturating_sub(1);
                self.line(format!(
                    "committed  {}{}",
                    label(plan, *ni),
                    measured(record)
                ));
            }
            RunEvent::CellCached { ni, .. } => {
                self.done += 1;
                self.running = self.running.saturating_sub(1);
                self.line(format!("cached     {}", label(plan, *ni)));
            }
            RunEvent::CellFailed {
                ni,
                attempt,
                kind,
                message,
                ..
            } => {
                self.failed += 1;
                self.running = self.running.saturating_sub(1);
                self.line(format!(
                    "FAILED    {}  after {attempt} attempt(s): {kind}: {message}",
                    label(plan, *ni)
                ));
            }
            RunEvent::CellBlocked { ni, dep } => {
                self.failed += 1;
                self.line(format!(
                    "blocked   {}  (dependency {} failed)",
                    label(plan, *ni),
                    &plan.graph[*dep].id.hex()[..12]
                ));
            }
            RunEvent::RunInterrupted | RunEvent::RunFinished { .. } => self.finish(),
        }
        Ok(())
    }
}

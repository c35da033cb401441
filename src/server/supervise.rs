//! Supervision: [`ManagedServers`] starts a campaign's managed servers, watches them (a
//! dead one is started again before the next cell that needs it) and stops them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::console::say;
use super::error::ManagedError;
use super::process::{
    ManagedChild, STOP_GRACE, describe_exit, force_and_describe, runs_program, spawn, stop_child,
    stop_leftover,
};
use super::pull::ensure_model;
use super::ready::wait_ready;
use super::spec::{ServerSpec, ServerTemplate, models_on, templates};
use crate::backend::manage::answers;
use crate::manifest::{EndpointKind, ServerFlags};
use crate::plan::Plan;
use crate::store::{Campaign, JournalEvent};
use crate::util::clock::now_unix_ms;

/// A server that was started again before a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// Endpoint id.
    pub endpoint: String,
    /// URL.
    pub url: String,
    /// How the server had ended: it had died, or it was stopped for new settings.
    pub exit: String,
    /// The configuration's `server` settings it was started again with, when the restart
    /// was for them (`parallel=4`; `defaults` for none); `None` after a crash.
    pub settings: Option<String>,
}

/// A server's settings in words, for messages and the journal.
fn settings_text(flags: &ServerFlags) -> String {
    if flags.is_empty() {
        "defaults".to_owned()
    } else {
        flags.to_string()
    }
}

#[derive(Debug)]
struct Proc {
    child: Option<ManagedChild>,
    /// Set when a restart failed: later cells fail at once instead of waiting again.
    broken: Option<String>,
    /// What the process runs: the rendering of the `server` settings it was started with.
    running: ServerSpec,
    /// Those settings.
    settings: ServerFlags,
}

#[derive(Debug)]
struct Server {
    /// The rendering the server started with (its endpoint, URLs, log and timeout never
    /// change; what runs now is `proc.running`).
    spec: ServerSpec,
    /// The endpoint's settings before `{server.NAME}` is filled in.
    template: Option<ServerTemplate>,
    /// Model tags the plan uses on this server, when it is an Ollama server (pulled when
    /// missing, at start and after a restart).
    models: Vec<String>,
    /// Serialises restarts of this server.
    gate: tokio::sync::Mutex<()>,
    proc: Mutex<Proc>,
}

impl Server {
    /// Waits until this server answers (see [`wait_ready`]).
    async fn wait_ready(&self, cancel: &mut watch::Receiver<bool>) -> Result<(), ManagedError> {
        let (log_from, running) = {
            let p = lock(&self.proc);
            (
                p.child.as_ref().map_or(0, |c| c.log_from),
                p.running.clone(),
            )
        };
        let exited = || {
            let mut p = lock(&self.proc);
            match p.child.as_mut() {
                Some(c) => c.poll().map(describe_exit),
                None => Some("stopped".to_owned()),
            }
        };
        wait_ready(&running, log_from, exited, cancel).await
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The servers a campaign manages. Shared by the scheduler and its workers; every method
/// takes `&self`.
#[derive(Debug, Default)]
pub struct ManagedServers {
    servers: Mutex<Vec<Arc<Server>>>,
    campaign: Mutex<Option<Arc<Campaign>>>,
    cancel: Mutex<Option<watch::Receiver<bool>>>,
    stopping: AtomicBool,
    restarts: AtomicU32,
    reconfigured: AtomicU32,
}

impl ManagedServers {
    /// No servers yet.
    pub fn new() -> ManagedServers {
        ManagedServers::default()
    }

    /// How many times servers were started again after they had died.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// How many times servers were stopped and started again for a cell's `server` settings.
    pub fn setting_restarts(&self) -> u32 {
        self.reconfigured.load(Ordering::SeqCst)
    }

    /// The process ids of the running servers, by endpoint id.
    #[cfg(test)]
    fn pids(&self) -> Vec<(String, u32)> {
        lock(&self.servers)
            .iter()
            .filter_map(|s| {
                let mut p = lock(&s.proc);
                let c = p.child.as_mut()?;
                c.poll()
                    .is_none()
                    .then(|| (s.spec.endpoint.clone(), c.pid()))
            })
            .collect()
    }

    fn journal(&self, ev: &JournalEvent) {
        let campaign = lock(&self.campaign).clone();
        if let Some(c) = campaign
            && let Err(e) = c.journal(ev)
        {
            tracing::warn!("cannot journal a managed-server event: {e}");
        }
    }

    fn cancel_rx(&self) -> watch::Receiver<bool> {
        lock(&self.cancel).clone().unwrap_or_else(|| {
            // A receiver whose sender is gone: never cancelled.
            watch::channel(false).1
        })
    }

    fn matching(&self, urls: &[String]) -> Vec<Arc<Server>> {
        lock(&self.servers)
            .iter()
            .filter(|s| {
                urls.iter()
                    .any(|u| u.trim_end_matches('/') == s.spec.nominal)
            })
            .cloned()
            .collect()
    }

    /// Starts every managed server of the plan, waits until each answers, and pulls the
    /// models missing on managed Ollama servers. On an error the servers already started stay
    /// registered, so that [`ManagedServers::stop_all`] stops them. Each server starts with
    /// its URL's `server` settings of `initial` (those of the first cell that needs it), else
    /// its `managed.defaults`.
    pub async fn start(
        &self,
        plan: &Plan,
        campaign: &Arc<Campaign>,
        cancel: watch::Receiver<bool>,
        initial: &[(String, ServerFlags)],
    ) -> Result<(), ManagedError> {
        let mut specs = Vec::new();
        for t in templates(plan, &campaign.own_dir().join("servers")) {
            let flags = initial
                .iter()
                .find(|(u, _)| *u == t.nominal)
                .map(|(_, f)| f.clone())
                .unwrap_or_default();
            specs.push((t.render(&flags)?, t, flags));
        }
        if specs.is_empty() {
            return Ok(());
        }
        *lock(&self.campaign) = Some(campaign.clone());
        *lock(&self.cancel) = Some(cancel.clone());
        let bare: Vec<ServerSpec> = specs.iter().map(|(s, _, _)| s.clone()).collect();
        self.stop_leftovers(campaign, &bare).await;
        for s in &bare {
            if let Some(addr) = answers(&s.url).await {
                return Err(ManagedError::PortInUse {
                    endpoint: s.endpoint.clone(),
                    url: s.url.clone(),
                    addr,
                });
            }
        }
        // Spawn all first, so that they start in parallel, then wait for each.
        let mut started = Vec::with_capacity(specs.len());
        for (spec, template, settings) in specs {
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            let child = spawn(&spec, "starting")?;
            let models = if spec.kind == EndpointKind::Ollama {
                models_on(plan, &spec.nominal)
            } else {
                Vec::new()
            };
            let server = Arc::new(Server {
                spec: spec.clone(),
                template: Some(template),
                models,
                gate: tokio::sync::Mutex::new(()),
                proc: Mutex::new(Proc {
                    child: Some(child),
                    broken: None,
                    running: spec,
                    settings,
                }),
            });
            lock(&self.servers).push(server.clone());
            started.push(server);
        }
        for s in &started {
            let mut c = cancel.clone();
            let t0 = Instant::now();
            s.wait_ready(&mut c).await?;
            let (pid, settings) = {
                let p = lock(&s.proc);
                let pid = p.child.as_ref().map_or(0, ManagedChild::pid);
                (
                    pid,
                    (!p.settings.is_empty()).then(|| p.settings.to_string()),
                )
            };
            self.journal(&JournalEvent::ServerStarted {
                at_unix_ms: now_unix_ms(),
                endpoint: s.spec.endpoint.clone(),
                url: s.spec.url.clone(),
                pid,
                host: Some(crate::store::host_name()),
                settings,
            });
            say(&format!(
                "managed server `{}` ({}) answers after {:.1} s: pid {pid}, log {}",
                s.spec.endpoint,
                s.spec.url,
                t0.elapsed().as_secs_f64(),
                s.spec.log.display()
            ));
        }
        for s in &started {
            for tag in &s.models {
                ensure_model(&s.spec, tag, cancel.clone()).await?;
            }
        }
        Ok(())
    }

    /// Stops the servers a previous run of this campaign started and never stopped (it was
    /// killed with SIGKILL): the journal's last `server_started`/`server_restarted` pid of each
    /// endpoint without a later `server_stopped`, when that process still runs the same
    /// program. Anything else on the port is left alone (and refused afterwards).
    async fn stop_leftovers(&self, campaign: &Arc<Campaign>, specs: &[ServerSpec]) {
        let Ok(events) = campaign.journal_events() else {
            return;
        };
        let here = crate::store::host_name();
        for spec in specs {
            let mut pid = None;
            for ev in &events {
                match ev {
                    JournalEvent::ServerStarted {
                        endpoint,
                        pid: p,
                        host,
                        ..
                    }
                    | JournalEvent::ServerRestarted {
                        endpoint,
                        pid: p,
                        host,
                        ..
                    } if *endpoint == spec.endpoint && *p > 0 => {
                        // A pid of another host (a shard requeued elsewhere) is not ours.
                        pid = host.as_ref().is_none_or(|h| *h == here).then_some(*p);
                    }
                    JournalEvent::ServerStopped { endpoint, .. } if *endpoint == spec.endpoint => {
                        pid = None;
                    }
                    _ => {}
                }
            }
            let Some(pid) = pid else { continue };
            if !runs_program(
                pid,
                spec.argv.first().map(String::as_str).unwrap_or_default(),
            ) {
                continue;
            }
            say(&format!(
                "managed server `{}` (pid {pid}) was left running by an interrupted run of this \
                 campaign; stopping it",
                spec.endpoint
            ));
            stop_leftover(pid, &spec.argv[0]).await;
            self.journal(&JournalEvent::ServerStopped {
                endpoint: spec.endpoint.clone(),
                exit: format!("left running by an interrupted run (pid {pid}); stopped"),
                at_unix_ms: now_unix_ms(),
            });
        }
    }

    /// Before a cell's attempt: starts again every server of `urls` that has exited, and
    /// stops and starts again, with the new rendering, every server whose command or env for
    /// `settings` (the cell's configuration's `server` values; `None` for a warm-up, which
    /// takes the server as it runs) differs from what it was started with. Returns those
    /// restarted; an error when one cannot be started again (then, and for every later call,
    /// the cells that need it fail at once).
    pub async fn ensure_alive(
        &self,
        urls: &[String],
        settings: Option<&ServerFlags>,
    ) -> Result<Vec<Restarted>, ManagedError> {
        let mut out = Vec::new();
        for s in self.matching(urls) {
            let _gate = s.gate.lock().await;
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            let down = |message: String| ManagedError::Down {
                endpoint: s.spec.endpoint.clone(),
                url: s.spec.url.clone(),
                message,
                log: s.spec.log.clone(),
            };
            let wanted = match (settings, &s.template) {
                (Some(f), Some(t)) => Some((t.render(f).map_err(|e| down(e.reason()))?, f)),
                _ => None,
            };
            let (exit, change) = {
                let mut p = lock(&s.proc);
                if let Some(message) = &p.broken {
                    return Err(down(message.clone()));
                }
                let change =
                    wanted.filter(|(w, _)| w.argv != p.running.argv || w.env != p.running.env);
                match (p.child.as_mut().and_then(ManagedChild::poll), change) {
                    (None, None) => continue,
                    (st, change) => (st.map(describe_exit), change),
                }
            };
            let r = match change {
                Some((spec, flags)) => self.reconfigure(&s, spec, flags, exit).await,
                None => self.revive(&s, exit.unwrap_or_default()).await,
            };
            match r {
                Ok(r) => out.push(r),
                Err(ManagedError::Interrupted) => return Err(ManagedError::Interrupted),
                Err(e) => {
                    let reason = e.reason();
                    lock(&s.proc).broken = Some(reason.clone());
                    return Err(down(reason));
                }
            }
        }
        Ok(out)
    }

    /// Starts a server that has exited again, as it was.
    async fn revive(&self, s: &Server, exit: String) -> Result<Restarted, ManagedError> {
        tracing::warn!(
            "managed server `{}` ({}) has exited ({exit}); starting it again",
            s.spec.endpoint,
            s.spec.url
        );
        let note = format!("restarting after the server exited ({exit})");
        self.restart(s, None, &note).await?;
        self.restarts.fetch_add(1, Ordering::SeqCst);
        Ok(self.restarted(s, exit, None))
    }

    /// Stops a server (unless it has exited: `exit`) and starts it with `spec`, the rendering
    /// of the cell's `settings`.
    async fn reconfigure(
        &self,
        s: &Server,
        spec: ServerSpec,
        settings: &ServerFlags,
        exit: Option<String>,
    ) -> Result<Restarted, ManagedError> {
        let (from, old) = {
            let mut p = lock(&s.proc);
            (settings_text(&p.settings), p.child.take())
        };
        let to = settings_text(settings);
        let exit = match (exit, old) {
            (Some(e), _) => format!("{e}; started with the settings of the next cell"),
            (None, Some(c)) => {
                tracing::info!(
                    "managed server `{}`: settings {from} → {to}; stopping it to start it with them",
                    s.spec.endpoint
                );
                say(&format!(
                    "managed server `{}`: restarting for settings {to} (was {from})",
                    s.spec.endpoint
                ));
                format!("stopped for new settings ({})", stop_child(c).await)
            }
            (None, None) => "not running".to_owned(),
        };
        let note = format!("restarting with settings {to} (was {from})");
        self.restart(s, Some((spec, settings.clone())), &note)
            .await?;
        self.reconfigured.fetch_add(1, Ordering::SeqCst);
        Ok(self.restarted(s, exit, Some(to)))
    }

    /// Journals a restart and describes it.
    fn restarted(&self, s: &Server, exit: String, settings: Option<String>) -> Restarted {
        self.journal(&JournalEvent::ServerRestarted {
            at_unix_ms: now_unix_ms(),
            endpoint: s.spec.endpoint.clone(),
            exit: exit.clone(),
            pid: lock(&s.proc).child.as_ref().map_or(0, ManagedChild::pid),
            host: Some(crate::store::host_name()),
            settings: settings.clone(),
        });
        Restarted {
            endpoint: s.spec.endpoint.clone(),
            // The URL cells name it by (what the runner's maps are keyed on).
            url: s.spec.nominal.clone(),
            exit,
            settings,
        }
    }

    /// Starts the server again (with a new rendering and its settings, when given), waits
    /// until it answers and gives it its models.
    async fn restart(
        &self,
        s: &Server,
        new: Option<(ServerSpec, ServerFlags)>,
        note: &str,
    ) -> Result<(), ManagedError> {
        {
            let mut p = lock(&s.proc);
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            // Dropping the old handle kills what is left of its process group.
            drop(p.child.take());
            if let Some((spec, settings)) = new {
                p.running = spec;
                p.settings = settings;
            }
            p.child = Some(spawn(&p.running, note)?);
        }
        let mut cancel = self.cancel_rx();
        s.wait_ready(&mut cancel).await?;
        // A server with a fresh model store (or an emulator) needs its models again.
        let running = lock(&s.proc).running.clone();
        for tag in &s.models {
            ensure_model(&running, tag, cancel.clone()).await?;
        }
        Ok(())
    }

    /// Describes the servers of `urls` that have exited, waiting up to `grace` for a server
    /// whose connections just broke to be seen as exited. Empty when all are alive (or none
    /// of `urls` is managed).
    pub async fn exited(&self, urls: &[String], grace: Duration) -> Vec<String> {
        let servers = self.matching(urls);
        if servers.is_empty() {
            return Vec::new();
        }
        let deadline = Instant::now() + grace;
        loop {
            let dead: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    let mut p = lock(&s.proc);
                    let st = p.child.as_mut().and_then(ManagedChild::poll)?;
                    Some(format!(
                        "the managed server of endpoint `{}` exited ({})",
                        s.spec.endpoint,
                        describe_exit(st)
                    ))
                })
                .collect();
            if !dead.is_empty() || Instant::now() >= deadline {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every server: SIGTERM to each process group, up to [`STOP_GRACE`] for the
    /// groups to exit, then SIGKILL. Journals how each ended. No restart happens afterwards.
    pub async fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let servers: Vec<Arc<Server>> = lock(&self.servers).clone();
        let mut children: Vec<(Arc<Server>, ManagedChild)> = servers
            .iter()
            .filter_map(|s| {
                let c = lock(&s.proc).child.take()?;
                Some((s.clone(), c))
            })
            .collect();
        if children.is_empty() {
            return;
        }
        let mut already = Vec::with_capacity(children.len());
        for (_, c) in &mut children {
            already.push(c.poll().is_some());
            if c.group_alive() {
                c.signal(false);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let gone = children.iter_mut().all(|(_, c)| !c.group_alive());
            if gone || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for ((s, mut c), was_dead) in children.into_iter().zip(already) {
            let exit = force_and_describe(&mut c, was_dead).await;
            drop(c);
            self.journal(&JournalEvent::ServerStopped {
                at_unix_ms: now_unix_ms(),
                endpoint: s.spec.endpoint.clone(),
                exit: exit.clone(),
            });
            say(&format!(
                "managed server `{}` stopped ({exit})",
                s.spec.endpoint
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::process::tests::{group_members, shell_server, wait_members};
    use super::*;

    /// Stopping: SIGTERM to the group, which exits well within the grace period.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_all_terminates_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = shell_server(dir.path(), "sleep 30 & wait");
        let child = spawn(&spec, "test").expect("spawn");
        let pgid = child.pid();
        assert_eq!(wait_members(pgid, 2).len(), 2, "sh and sleep");
        let servers = ManagedServers::new();
        lock(&servers.servers).push(Arc::new(Server {
            spec: spec.clone(),
            template: None,
            models: Vec::new(),
            gate: tokio::sync::Mutex::new(()),
            proc: Mutex::new(Proc {
                child: Some(child),
                broken: None,
                running: spec,
                settings: ServerFlags::default(),
            }),
        }));
        assert_eq!(servers.pids(), vec![("t".to_owned(), pgid)]);
        let t0 = Instant::now();
        servers.stop_all().await;
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(group_members(pgid), Vec::<u32>::new());
        assert!(servers.pids().is_empty());
        // No restart after the stop.
        let urls = vec!["http://127.0.0.1:9".to_owned()];
        assert!(matches!(
            servers.ensure_alive(&urls, None).await,
            Err(ManagedError::Interrupted)
        ));
    }
}

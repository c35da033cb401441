//! Supervision: [`ManagedServers`] starts a campaign's managed servers, watches them (a
//! dead one is started again before the next cell that needs it) and stops them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::console::say;
use super::error::ManagedError;
use super::process::{ManagedChild, STOP_GRACE, describe_exit, runs_program, spawn, stop_leftover};
use super::pull::ensure_model;
use super::ready::wait_ready;
use super::spec::{ServerSpec, models_on, resolve};
use crate::backend::manage::answers;
use crate::manifest::EndpointKind;
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
    /// How the dead server had ended.
    pub exit: String,
}

#[derive(Debug, Default)]
struct Proc {
    child: Option<ManagedChild>,
    /// Set when a restart failed: later cells fail at once instead of waiting again.
    broken: Option<String>,
}

#[derive(Debug)]
struct Server {
    spec: ServerSpec,
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
        let log_from = lock(&self.proc).child.as_ref().map_or(0, |c| c.log_from);
        let exited = || {
            let mut p = lock(&self.proc);
            match p.child.as_mut() {
                Some(c) => c.poll().map(describe_exit),
                None => Some("stopped".to_owned()),
            }
        };
        wait_ready(&self.spec, log_from, exited, cancel).await
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
    /// registered, so that [`ManagedServers::stop_all`] stops them.
    pub async fn start(
        &self,
        plan: &Plan,
        campaign: &Arc<Campaign>,
        cancel: watch::Receiver<bool>,
    ) -> Result<(), ManagedError> {
        let specs = resolve(plan, &campaign.own_dir().join("servers"))?;
        if specs.is_empty() {
            return Ok(());
        }
        *lock(&self.campaign) = Some(campaign.clone());
        *lock(&self.cancel) = Some(cancel.clone());
        self.stop_leftovers(campaign, &specs).await;
        for s in &specs {
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
        for spec in specs {
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
                spec,
                models,
                gate: tokio::sync::Mutex::new(()),
                proc: Mutex::new(Proc {
                    child: Some(child),
                    broken: None,
                }),
            });
            lock(&self.servers).push(server.clone());
            started.push(server);
        }
        for s in &started {
            let mut c = cancel.clone();
            let t0 = Instant::now();
            s.wait_ready(&mut c).await?;
            let pid = lock(&s.proc).child.as_ref().map_or(0, ManagedChild::pid);
            self.journal(&JournalEvent::ServerStarted {
                at_unix_ms: now_unix_ms(),
                endpoint: s.spec.endpoint.clone(),
                url: s.spec.url.clone(),
                pid,
                host: Some(crate::store::host_name()),
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

    /// Starts again every server of `urls` that has exited (before a cell's attempt). Returns
    /// those restarted; an error when one cannot be started again (then, and for every later
    /// call, the cells that need it fail at once).
    pub async fn ensure_alive(&self, urls: &[String]) -> Result<Vec<Restarted>, ManagedError> {
        let mut out = Vec::new();
        for s in self.matching(urls) {
            let _gate = s.gate.lock().await;
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            let exit = {
                let mut p = lock(&s.proc);
                if let Some(message) = &p.broken {
                    return Err(ManagedError::Down {
                        endpoint: s.spec.endpoint.clone(),
                        url: s.spec.url.clone(),
                        message: message.clone(),
                        log: s.spec.log.clone(),
                    });
                }
                match p.child.as_mut().and_then(ManagedChild::poll) {
                    Some(st) => describe_exit(st),
                    None => continue,
                }
            };
            tracing::warn!(
                "managed server `{}` ({}) has exited ({exit}); starting it again",
                s.spec.endpoint,
                s.spec.url
            );
            match self.restart(&s, &exit).await {
                Ok(()) => {
                    self.restarts.fetch_add(1, Ordering::SeqCst);
                    self.journal(&JournalEvent::ServerRestarted {
                        at_unix_ms: now_unix_ms(),
                        endpoint: s.spec.endpoint.clone(),
                        exit: exit.clone(),
                        pid: lock(&s.proc).child.as_ref().map_or(0, ManagedChild::pid),
                        host: Some(crate::store::host_name()),
                    });
                    out.push(Restarted {
                        endpoint: s.spec.endpoint.clone(),
                        // The URL cells name it by (what the runner's maps are keyed on).
                        url: s.spec.nominal.clone(),
                        exit,
                    });
                }
                Err(ManagedError::Interrupted) => return Err(ManagedError::Interrupted),
                Err(e) => {
                    let reason = e.reason();
                    lock(&s.proc).broken = Some(reason.clone());
                    return Err(ManagedError::Down {
                        endpoint: s.spec.endpoint.clone(),
                        url: s.spec.url.clone(),
                        message: reason,
                        log: s.spec.log.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn restart(&self, s: &Server, exit: &str) -> Result<(), ManagedError> {
        {
            let mut p = lock(&s.proc);
            if self.stopping.load(Ordering::SeqCst) {
                return Err(ManagedError::Interrupted);
            }
            // Dropping the old handle kills what is left of its process group.
            drop(p.child.take());
            p.child = Some(spawn(
                &s.spec,
                &format!("restarting after the server exited ({exit})"),
            )?);
        }
        let mut cancel = self.cancel_rx();
        s.wait_ready(&mut cancel).await?;
        // A server with a fresh model store (or an emulator) needs its models again.
        for tag in &s.models {
            ensure_model(&s.spec, tag, cancel.clone()).await?;
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
            let forced = c.group_alive();
            if forced {
                c.signal(true);
                let until = Instant::now() + Duration::from_secs(2);
                while c.poll().is_none() && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut exit = c.poll().map_or_else(|| "unknown".to_owned(), describe_exit);
            if was_dead {
                exit.push_str(", had already exited");
            } else if forced {
                exit.push_str(&format!(
                    ", killed after {} s without exiting on SIGTERM",
                    STOP_GRACE.as_secs()
                ));
            }
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
            spec,
            models: Vec::new(),
            gate: tokio::sync::Mutex::new(()),
            proc: Mutex::new(Proc {
                child: Some(child),
                broken: None,
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
            servers.ensure_alive(&urls).await,
            Err(ManagedError::Interrupted)
        ));
    }
}

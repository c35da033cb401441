//! Server processes: each managed server runs in its own process group, with stdin closed
//! and its output appended to its log (mode 0600); dropping its handle SIGKILLs the group.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::error::ManagedError;
use super::spec::{ServerSpec, spawn_help};
use crate::util::clock::now_unix_ms;

/// How long a stopped server's process group may take to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// True when process `pid` is alive and its program (`argv[0]`) is `program`.
pub(crate) fn runs_program(pid: u32, program: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    // A zombie has an empty command line.
    !argv0.is_empty() && argv0 == program.as_bytes()
}

/// `exit code 1`, `signal 9 (SIGKILL)`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("signal {sig}{name}");
        }
    }
    status.to_string()
}

/// The process of a managed server, leader of its own process group. Dropping it kills the
/// whole group (SIGKILL) unless it has already exited: the last resort after a panic.
#[derive(Debug)]
pub(crate) struct ManagedChild {
    child: Child,
    status: Option<ExitStatus>,
    /// Where this start's part of the (appended) log begins.
    pub(crate) log_from: u64,
}

impl ManagedChild {
    /// The leader's process id (= the group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The leader's exit status, once it has exited (reaps it).
    pub(crate) fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(st)) = self.child.try_wait()
        {
            self.status = Some(st);
        }
        self.status
    }

    /// Whether any process of the group is left (the leader until it is reaped included).
    pub(crate) fn group_alive(&mut self) -> bool {
        if self.poll().is_none() {
            return true;
        }
        #[cfg(unix)]
        {
            group_pid(self.pid())
                .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
        }
        #[cfg(not(unix))]
        {
            false
        }
    }

    /// SIGTERM (`kill` false) or SIGKILL to the whole group.
    pub(crate) fn signal(&mut self, kill: bool) {
        #[cfg(unix)]
        {
            use rustix::process::{Signal, kill_process_group};
            if let Some(p) = group_pid(self.pid()) {
                let _ = kill_process_group(p, if kill { Signal::KILL } else { Signal::TERM });
            }
        }
        #[cfg(not(unix))]
        {
            if self.status.is_none() {
                let _ = self.child.kill();
            }
            let _ = kill;
        }
    }
}

/// Stops one server (to start it again with other settings): SIGTERM to its group, up to
/// [`STOP_GRACE`] for the group to exit, then SIGKILL. Says how it ended.
pub(crate) async fn stop_child(mut c: ManagedChild) -> String {
    let was_dead = c.poll().is_some();
    if c.group_alive() {
        c.signal(false);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while c.group_alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    force_and_describe(&mut c, was_dead).await
}

/// After [`STOP_GRACE`]: SIGKILL to a group still alive (and up to 2 s for it to go), then
/// how the server ended (`was_dead`: it had exited before it was told to stop).
pub(crate) async fn force_and_describe(c: &mut ManagedChild, was_dead: bool) -> String {
    let forced = c.group_alive();
    if forced {
        c.signal(true);
        let until = Instant::now() + Duration::from_secs(2);
        while c.group_alive() && Instant::now() < until {
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
    exit
}

/// Stops what is left of a server that an earlier run started and never stopped: SIGTERM to
/// process group `pid`, up to [`STOP_GRACE`] for `program` to be gone from it, then SIGKILL.
pub(crate) async fn stop_leftover(pid: u32, program: &str) {
    #[cfg(unix)]
    if let Some(p) = group_pid(pid) {
        use rustix::process::{Signal, kill_process_group};
        let _ = kill_process_group(p, Signal::TERM);
        let t0 = Instant::now();
        while runs_program(pid, program) && t0.elapsed() < STOP_GRACE {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if runs_program(pid, program) {
            let _ = kill_process_group(p, Signal::KILL);
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, program);
}

#[cfg(unix)]
fn group_pid(pid: u32) -> Option<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        if self.group_alive() {
            self.signal(true);
        }
        if self.status.is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.status = Some(st);
            }
        }
    }
}

/// Starts the server's command (see the module documentation); `note` goes into the log.
pub(crate) fn spawn(spec: &ServerSpec, note: &str) -> Result<ManagedChild, ManagedError> {
    let log_err = |source| ManagedError::Log {
        endpoint: spec.endpoint.clone(),
        path: spec.log.clone(),
        source,
    };
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir).map_err(log_err)?;
    }
    let mut options = std::fs::File::options();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Owner only: the server's output may repeat what it was given (tokens included).
        options.mode(0o600);
    }
    let mut out = options.open(&spec.log).map_err(log_err)?;
    #[cfg(unix)]
    {
        // A log created by an older chimera (or by hand) is tightened too.
        use std::os::unix::fs::PermissionsExt;
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(log_err)?;
    }
    let log_from = out.metadata().map_or(0, |m| m.len());
    writeln!(
        out,
        "=== chimera {}: {note} `{}` (unix ms {:.0}) ===",
        env!("CARGO_PKG_VERSION"),
        spec.command_line(),
        now_unix_ms()
    )
    .map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    let program = &spec.argv[0];
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let shown = &spec.shown[0];
    let child = cmd.spawn().map_err(|e| ManagedError::Spawn {
        endpoint: spec.endpoint.clone(),
        program: shown.clone(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound if program.contains('/') => "no such file".to_owned(),
            std::io::ErrorKind::NotFound => "program not found on the PATH".to_owned(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (not an executable file?)".to_owned()
            }
            _ => e.to_string(),
        },
        help: spawn_help(program, shown),
    })?;
    Ok(ManagedChild {
        child,
        status: None,
        log_from,
    })
}

/// The last lines of a log from byte `from` on, indented for an error message.
pub(crate) fn log_tail(path: &Path, from: u64, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(16 * 1024).max(from.min(len));
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    if tail.is_empty() {
        return format!("  (its log {} is empty)\n", path.display());
    }
    let mut out = format!("  last lines of {}:\n", path.display());
    for l in tail {
        out.push_str("    | ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::manifest::EndpointKind;

    #[cfg(unix)]
    #[test]
    fn exits_are_described() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "signal 9 (SIGKILL)");
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit code 1");
    }

    /// Live (not zombie) processes of process group `pgid`.
    #[cfg(target_os = "linux")]
    pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
        crate::util::procfs::live_members(pgid)
    }

    #[cfg(target_os = "linux")]
    pub(crate) fn shell_server(dir: &Path, script: &str) -> ServerSpec {
        ServerSpec {
            endpoint: "t".into(),
            url: "http://127.0.0.1:9".into(),
            nominal: "http://127.0.0.1:9".into(),
            kind: EndpointKind::Emulator,
            argv: vec!["sh".into(), "-c".into(), script.into()],
            shown: vec!["sh".into(), "-c".into(), script.into()],
            env: Vec::new(),
            secrets: Vec::new(),
            startup_timeout: Duration::from_secs(1),
            log: dir.join("servers").join("t.log"),
        }
    }

    #[cfg(target_os = "linux")]
    pub(crate) fn wait_members(pgid: u32, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let m = group_members(pgid);
            if m.len() == n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last resort: dropping the handle SIGKILLs the whole group, grandchildren included.
    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_a_server_kills_its_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = shell_server(dir.path(), "trap '' TERM; sleep 30 & sleep 30");
        let child = spawn(&spec, "test").expect("spawn");
        let pgid = child.pid();
        assert_eq!(wait_members(pgid, 3).len(), 3, "sh and two sleeps");
        drop(child);
        assert_eq!(wait_members(pgid, 0), Vec::<u32>::new());
        let log = std::fs::read_to_string(&spec.log).expect("log");
        assert!(log.starts_with("=== chimera"), "{log}");
    }
}

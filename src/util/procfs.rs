//! What `/proc` says about processes (Linux): the members of a process group, the processes
//! working in a folder, a process's CPU times and peak RSS. Used for agent programs and by
//! the tests of managed servers.

use std::path::Path;

/// Live (not zombie) processes of process group `pgid`: none without a `/proc` scan when
/// the group is empty (one `kill(-pgid, 0)`).
pub(crate) fn live_members(pgid: u32) -> Vec<u32> {
    let Some(p) = rustix::process::Pid::from_raw(pgid as i32) else {
        return Vec::new();
    };
    if rustix::process::test_kill_process_group(p).is_err() {
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let group = pgid.to_string();
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[0] != "Z" && f[2] == group {
            out.push(pid);
        }
    }
    out
}

/// Processes whose working directory is `dir` or below it (agent programs, and whatever they
/// started, even outside their process group).
pub(crate) fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// Whether process `pid` exists and is neither a zombie nor dead.
pub(crate) fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// CPU times (user, system) in ms of process `pid`, itself and its waited-for children,
/// from `/proc/<pid>/stat` (readable until the process is reaped).
pub(crate) fn cpu_times(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state is f[0]; utime, stime, cutime, cstime are fields 14–17 of stat(5): f[11..15].
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let ms = |t: f64| t * 1000.0 / ticks;
    Some((
        ms(num(11)? + num(13)?.max(0.0)),
        ms(num(12)? + num(14)?.max(0.0)),
    ))
}

/// `VmHWM` of process `pid`, kB.
pub(crate) fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

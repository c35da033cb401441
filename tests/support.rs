//! Helpers: run the built binary and capture its output.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Output of one chimera invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `chimera` with `args` in the package root.
pub fn chimera(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_chimera"))
        .args(args)
        .current_dir(root())
        .env_remove("CHIMERA_LOG")
        .output()
        .expect("run chimera");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The package root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.yaml` files of a directory, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// A `chimera emulate` child process serving `profile` on `listeners` ephemeral ports; killed
/// when dropped.
pub struct Emulator {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
}

impl Emulator {
    /// Writes `profile` as `<dir>/<name>-profile.yaml` and starts the emulator on it.
    pub fn start(dir: &Path, name: &str, profile: &str, listeners: usize) -> Emulator {
        let path = dir.join(format!("{name}-profile.yaml"));
        std::fs::write(&path, profile).expect("write profile");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chimera"));
        cmd.arg("emulate").arg("--profile").arg(&path);
        for _ in 0..listeners {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .env_remove("CHIMERA_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chimera emulate");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut addrs = Vec::new();
        for _ in 0..listeners {
            let mut line = String::new();
            out.read_line(&mut line).expect("read an address");
            addrs.push(line.trim().parse().expect("an address per line"));
        }
        Emulator { child, addrs }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

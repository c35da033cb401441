//! Helpers: run the built binary and capture its output.

use std::path::{Path, PathBuf};
use std::process::Command;

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

//! The bottom layer: one wall clock with its date formats, one seeded random number generator.

pub(crate) mod clock;
pub(crate) mod procfs;
pub(crate) mod rng;
pub(crate) mod stamp;

/// This machine's host name ("an unknown host" when it cannot be read).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".to_owned())
}

/// 8 hex digits naming this host in file names (FNV-1a of its name).
pub(crate) fn host_tag() -> String {
    format!("{:08x}", rng::fnv1a(&host_name()) as u32)
}

/// A suffix no other writer uses for a temporary file in a directory that processes on other
/// machines may share: host, process id, nanoseconds.
pub(crate) fn unique_suffix() -> String {
    format!(
        "{}.{}.{}",
        host_tag(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

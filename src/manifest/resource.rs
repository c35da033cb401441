//! The exclusive resource an endpoint computes on (`local:gpu0`, `gpu-host:gpu3`, `local:cpu`),
//! parsed once when the manifest is read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A resource name and, when its last `:`-separated part is `gpuN`, the GPU index `N`.
///
/// Cells acquire every resource of their endpoints before they start; the GPU index selects
/// the device the telemetry samples (locally, or from the endpoint's dcgm-exporter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Resource {
    name: String,
    gpu: Option<u32>,
}

impl Resource {
    /// Parses a resource name: `local:gpu0` or `gpu3` name GPU 0 or 3; anything else names
    /// no GPU.
    pub fn parse(name: impl Into<String>) -> Self {
        let name = name.into();
        let tail = name.rsplit(':').next().unwrap_or(&name);
        let gpu = tail.strip_prefix("gpu").and_then(|n| n.parse().ok());
        Self { name, gpu }
    }

    /// The name as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The GPU index, when the name ends in `gpuN`.
    pub fn gpu(&self) -> Option<u32> {
        self.gpu
    }

    /// True for a name that is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.name.trim().is_empty()
    }
}

impl From<String> for Resource {
    fn from(s: String) -> Self {
        Self::parse(s)
    }
}

impl From<&str> for Resource {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl From<Resource> for String {
    fn from(r: Resource) -> Self {
        r.name
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_indices_come_from_the_last_part() {
        assert_eq!(Resource::parse("local:gpu0").gpu(), Some(0));
        assert_eq!(Resource::parse("gpu3").gpu(), Some(3));
        assert_eq!(Resource::parse("gpu-host:gpu12").gpu(), Some(12));
        assert_eq!(Resource::parse("local:cpu").gpu(), None);
        assert_eq!(Resource::parse("local:gpu").gpu(), None);
        assert!(Resource::parse(" ").is_blank());
        assert_eq!(Resource::parse("local:gpu1").to_string(), "local:gpu1");
    }
}

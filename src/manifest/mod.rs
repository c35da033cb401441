//! Stage 1: manifest files → validated [`Manifest`]s.
//!
//! `load` reads and parses one file ([`load::parse`]), then [`validate::check`] enforces the
//! rules a type cannot (references, uniqueness, ranges). Every failure is a [`Diagnostic`] with
//! file, line, column, key path, what was expected and found, and what to change.

pub(crate) mod axis;
pub(crate) mod diagnostic;
pub(crate) mod kinds;
pub(crate) mod load;
pub(crate) mod locate;
pub(crate) mod placeholder;
pub(crate) mod resource;
pub(crate) mod server_metrics;
pub(crate) mod serving;
pub(crate) mod spec;
pub(crate) mod template;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

pub use axis::Axis;
pub use diagnostic::Diagnostic;
pub use kinds::*;
pub use load::parse;
pub use placeholder::MissingServerValue;
pub use resource::Resource;
pub use server_metrics::{MIN_SERVER_METRICS_INTERVAL_MS, ServerMetricsSettings};
pub use serving::*;
pub use spec::*;

/// A parsed and validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its text (kept for locating later messages).
    pub source: String,
    /// The typed content.
    pub spec: ManifestSpec,
}

impl Manifest {
    /// The manifest `source` parses into, as if read from `t.yaml` (not validated): for
    /// tests of the rules.
    #[cfg(test)]
    pub(crate) fn parsed(source: String) -> Manifest {
        let path = Path::new("t.yaml");
        let spec = load::parse(path, &source).expect("parses");
        Manifest {
            path: path.to_owned(),
            source,
            spec,
        }
    }
}

/// Errors of the manifest stage: one or more diagnostics about one file.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ManifestError {
    /// What is wrong, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(ds: &[Diagnostic]) -> String {
    let mut s = String::new();
    for (i, d) in ds.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&d.to_string());
    }
    s.trim_end().to_owned()
}

impl From<Diagnostic> for ManifestError {
    fn from(d: Diagnostic) -> Self {
        Self {
            diagnostics: vec![d],
        }
    }
}

/// Reads, parses and validates one manifest file.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let bytes = load::read_bounded(path)?;
    from_bytes(path, &bytes)
}

/// Parses and validates manifest bytes as if read from `path`.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    if bytes.len() as u64 > load::MAX_MANIFEST_BYTES {
        return Err(Diagnostic::new(path, "manifest file is too large").into());
    }
    let source = load::decode(path, bytes)?;
    let spec = load::parse(path, &source)?;
    let manifest = Manifest {
        path: path.to_owned(),
        source,
        spec,
    };
    let diagnostics = validate::check(&manifest);
    if diagnostics.is_empty() {
        Ok(manifest)
    } else {
        Err(ManifestError { diagnostics })
    }
}

/// The JSON Schema of the manifest language, generated from [`ManifestSpec`].
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(ManifestSpec);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

//! One message about one mistake in a manifest: where it is, which key, what was expected,
//! what was found, and what to change.

use std::fmt;
use std::path::PathBuf;

use super::locate::{KeyPath, Pos, locate};

/// A located, actionable message about a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The manifest file.
    pub file: PathBuf,
    /// Line and column, when known.
    pub pos: Option<Pos>,
    /// The source line at `pos`, for the excerpt.
    pub source_line: Option<String>,
    /// Key path of the offending node (e.g. `matrix[0].configurations[3].id`).
    pub key_path: Option<String>,
    /// What is wrong, in one line.
    pub message: String,
    /// What was expected.
    pub expected: Option<String>,
    /// What was found.
    pub found: Option<String>,
    /// What to change.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with only a message.
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            pos: None,
            source_line: None,
            key_path: None,
            message: message.into(),
            expected: None,
            found: None,
            help: None,
        }
    }

    /// Sets the position and the excerpt line from `source`.
    pub fn at(mut self, source: &str, pos: Option<Pos>) -> Self {
        if let Some(p) = pos {
            self.source_line = source
                .lines()
                .nth((p.line as usize).saturating_sub(1))
                .map(|l| l.chars().take(160).collect());
        }
        self.pos = pos;
        self
    }

    /// Sets the key path and, unless already known, the position of that path in `source`.
    pub fn path(mut self, source: &str, path: &KeyPath, key_pos: bool) -> Self {
        self.key_path = Some(path.to_string());
        if self.pos.is_none() {
            let pos = locate(source, path, key_pos);
            self = self.at(source, pos);
        }
        self
    }

    /// Sets what was expected.
    pub fn expected(mut self, s: impl Into<String>) -> Self {
        self.expected = Some(s.into());
        self
    }

    /// Sets what was found.
    pub fn found(mut self, s: impl Into<String>) -> Self {
        self.found = Some(s.into());
        self
    }

    /// Sets the help line.
    pub fn help(mut self, s: impl Into<String>) -> Self {
        self.help = Some(s.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match self.pos {
            Some(p) => writeln!(f, "  --> {}:{}:{}", self.file.display(), p.line, p.column)?,
            None => writeln!(f, "  --> {}", self.file.display())?,
        }
        if let (Some(p), Some(line)) = (self.pos, &self.source_line) {
            let num = p.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {line}")?;
            let caret_col = (p.column as usize)
                .saturating_sub(1)
                .min(line.chars().count());
            writeln!(f, "{pad} | {}^", " ".repeat(caret_col))?;
        }
        if let Some(k) = &self.key_path {
            writeln!(f, "  = key: {k}")?;
        }
        if let Some(e) = &self.expected {
            writeln!(f, "  = expected: {e}")?;
        }
        if let Some(x) = &self.found {
            writeln!(f, "  = found: {x}")?;
        }
        if let Some(h) = &self.help {
            writeln!(f, "  = help: {h}")?;
        }
        Ok(())
    }
}

/// `` `a`, `b` ``: items in backticks, joined with commas.
pub fn backticked<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|x| format!("`{x}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `` one of `a`, `b` ``: the alternatives an `expected` line lists.
pub fn one_of<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    format!("one of {}", backticked(items))
}

/// The candidate closest to `word` by Jaro-Winkler similarity, if it is close enough to be a
/// plausible misspelling.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_rejects_strangers() {
        let keys = ["num_gpu", "num_ctx", "temperature"];
        assert_eq!(nearest("temprature", keys), Some("temperature"));
        assert_eq!(nearest("num_gpus", keys), Some("num_gpu"));
        assert_eq!(nearest("colour", keys), None);
    }
}

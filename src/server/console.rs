//! Messages about managed servers on stderr.

use std::io::Write as _;

/// One line on stderr (never fails: a closed stderr is ignored).
pub(crate) fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

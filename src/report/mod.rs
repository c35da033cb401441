//! Stage 6: TR-style Markdown reports with SVG charts, rendered from an [`crate::analysis::model::Analysis`].

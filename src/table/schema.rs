//! The Arrow schemas of the six tables, derived from their row types ([`super::rows`]):
//! the column names, types and order are written once, there.

use std::sync::LazyLock;

use arrow::datatypes::SchemaRef;

use super::columns::Row;
use super::rows::{
    AgentsRow, CellsRow, ProvenanceRow, RequestsRow, ServerMetricsRow, TelemetryRow,
};

macro_rules! schemas {
    ($($(#[$m:meta])* $f:ident: $row:ty;)*) => {$(
        $(#[$m])*
        pub fn $f() -> SchemaRef {
            static S: LazyLock<SchemaRef> = LazyLock::new(<$row>::schema);
            S.clone()
        }
    )*};
}

schemas! {
    /// `cells`: one row per cell.
    cells_schema: CellsRow;
    /// `agents`: one row per agent run.
    agents_schema: AgentsRow;
    /// `requests`: one row per LLM call.
    requests_schema: RequestsRow;
    /// `telemetry`: one row per GPU sample.
    telemetry_schema: TelemetryRow;
    /// `server_metrics`: one row per server metric reading (or failed scrape).
    server_metrics_schema: ServerMetricsRow;
    /// `provenance`: one row per campaign × endpoint (× model).
    provenance_schema: ProvenanceRow;
}

/// The schema of a table by name.
pub fn schema_of(table: &str) -> Option<SchemaRef> {
    [
        (CellsRow::TABLE, cells_schema as fn() -> SchemaRef),
        (AgentsRow::TABLE, agents_schema),
        (RequestsRow::TABLE, requests_schema),
        (TelemetryRow::TABLE, telemetry_schema),
        (ServerMetricsRow::TABLE, server_metrics_schema),
        (ProvenanceRow::TABLE, provenance_schema),
    ]
    .into_iter()
    .find(|(name, _)| *name == table)
    .map(|(_, f)| f())
}

//! Where a report's cells come from: measured by this campaign, or adopted from the shared
//! cache (`<data>/.cache`), which a campaign run consults before measuring a cell.
//!
//! An adopted cell is a hard link of a cell another campaign committed (or an earlier campaign
//! of the same name, since deleted): its rows still name the campaign that measured it and
//! when it started. The campaign's journal records every commit with `cached: true` when the
//! cell was adopted rather than measured; the last commit of a cell decides (a `--force` run
//! measures it again). A cell counts as adopted when its last commit was from the cache, or
//! when its rows name another campaign (so a campaign whose journal was lost still says so).

use std::collections::{BTreeMap, HashMap};

use super::load::Loaded;
use super::model::{AdoptedFrom, CellSources};
use crate::store::JournalEvent;
use crate::table::CellsRow;

/// Cell id → adopted (the journal's last commit of it came from the shared cache).
fn adopted_in_journal(l: &Loaded) -> HashMap<String, bool> {
    let name = l.info.name.as_str();
    let parent = l.dir.parent().unwrap_or(std::path::Path::new("."));
    let events = crate::store::open_existing(parent, name).and_then(|v| v.all_journal_events());
    let mut out = HashMap::new();
    match events {
        Ok(events) => {
            for e in events {
                if let JournalEvent::CellCommitted { cell, cached, .. } = e {
                    out.insert(cell, cached);
                }
            }
        }
        Err(e) => tracing::warn!(
            "campaign {name}: the journal could not be read ({e}); adopted cells are recognised by the campaign their rows name"
        ),
    }
    out
}

/// The sources of `cells` (a report's cells in the data) of campaign `l`.
pub(super) fn cell_sources(l: &Loaded, cells: &[&CellsRow]) -> CellSources {
    let journal = adopted_in_journal(l);
    let mut from: BTreeMap<&str, AdoptedFrom> = BTreeMap::new();
    let mut measured = 0;
    for c in cells {
        let adopted =
            journal.get(&c.cell_id).copied().unwrap_or(false) || c.campaign != l.info.name;
        if !adopted {
            measured += 1;
            continue;
        }
        let at = c.started_at.0;
        let e = from.entry(c.campaign.as_str()).or_insert(AdoptedFrom {
            campaign: c.campaign.clone(),
            cells: 0,
            first_started_unix_ms: at,
            last_started_unix_ms: at,
        });
        e.cells += 1;
        e.first_started_unix_ms = e.first_started_unix_ms.min(at);
        e.last_started_unix_ms = e.last_started_unix_ms.max(at);
    }
    let adopted_from: Vec<AdoptedFrom> = from.into_values().collect();
    CellSources {
        measured,
        adopted: adopted_from.iter().map(|a| a.cells).sum(),
        adopted_from,
    }
}

//! The export: both files in the import's shape, a page at a time, so that importing an
//! export changes nothing.

use super::rows::{SubscriberRow, TermRow};
use crate::store::{Store, StoreError};

const PAGE: i64 = 5_000;

/// One page of CSV and where the next begins (`None` after the last).
pub struct Page {
    pub csv: Vec<u8>,
    pub next: Option<i64>,
}

fn writer(header: bool) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new())
}

fn finish(writer: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, StoreError> {
    writer
        .into_inner()
        .map_err(|e| StoreError::Corrupt(format!("CSV could not be written: {e}")))
}

/// The subscribers after sequence `after` (0 for the first page, which carries the header).
pub async fn export_subscribers(store: &dyn Store, after: i64) -> Result<Page, StoreError> {
    let rows = store.export_subscribers(after, PAGE).await?;
    let mut out = writer(after == 0);
    for row in &rows {
        let line = SubscriberRow::of(
            row.subscriber.number,
            row.legacy_id.clone(),
            &row.subscriber.profile,
        );
        out.serialize(line)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    if after == 0 && rows.is_empty() {
        out.write_record(super::SUBSCRIBER_COLUMNS)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.subscriber.number.sequence()))
        .flatten();
    Ok(Page {
        csv: finish(out)?,
        next,
    })
}

/// The terms after id `after` (0 for the first page, which carries the header).
pub async fn export_terms(store: &dyn Store, after: i64) -> Result<Page, StoreError> {
    let rows = store.export_terms(after, PAGE).await?;
    let mut out = writer(after == 0);
    for row in &rows {
        out.serialize(TermRow::of(
            row.subscriber,
            row.legacy_id.clone(),
            &row.term,
        ))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    if after == 0 && rows.is_empty() {
        out.write_record(super::TERM_COLUMNS)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.term.id))
        .flatten();
    Ok(Page {
        csv: finish(out)?,
        next,
    })
}

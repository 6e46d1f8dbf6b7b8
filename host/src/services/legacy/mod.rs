//! The legacy circulation file: import of `subscribers.csv` and `terms.csv` in batches, and
//! the export of both in the same shape.
//!
//! A reader thread parses and checks rows (the CPU work) while this side matches them to the
//! database and writes each batch in one transaction, so memory stays constant however long
//! the file. A rejected row never stops the others: it is reported with its line and reason.

mod export;
pub mod rows;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use self::rows::{Owner, ParsedSubscriber, ParsedTerm, SubscriberRow, TermRow, reason};
use crate::domain::CountryCode;
use crate::domain::money::Currency;
use crate::domain::publication::PublicationCode;
use crate::domain::search::TermKind;
use crate::store::{
    Actor, AuditEntry, ImportedSubscriber, ImportedTerm, KnownSubscriber, NewTerm, Store,
    SubscriberBatch,
};
pub use export::{export_subscribers, export_terms};

pub const SUBSCRIBER_COLUMNS: &[&str] = &[
    "number",
    "legacy_id",
    "kind",
    "given_name",
    "family_name",
    "organisation_name",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "region",
    "country",
    "birth_date",
];
pub const TERM_COLUMNS: &[&str] = &[
    "subscriber_number",
    "legacy_id",
    "publication",
    "format",
    "months",
    "start",
    "end",
    "list_price",
    "price_paid",
    "currency",
    "discount_reason",
    "channel",
    "payment_method",
    "auto_renew",
    "cancelled_effective",
    "cancel_reason",
    "refund",
];
const REQUIRED_TERM_COLUMNS: &[&str] = &[
    "publication",
    "format",
    "months",
    "start",
    "list_price",
    "price_paid",
];

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Check and match everything, write nothing.
    pub dry_run: bool,
    /// Rows per transaction.
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            batch_size: 5_000,
        }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejection {
    /// The line in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// What an import did with a file.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub rows: u64,
    /// New subscribers or terms written.
    pub created: u64,
    /// Rows matched to a subscriber already known (by number, legacy id, email, phone, or
    /// name and postal code), so nothing was created twice.
    pub matched: u64,
    /// Terms already present (same subscriber, title and start).
    pub unchanged: u64,
    pub rejected: u64,
    /// Batches committed (none on a dry run).
    pub batches: u64,
}

/// Receives each rejection as it happens, and progress in bytes read.
pub trait ImportObserver: Send {
    fn rejected(&mut self, rejection: Rejection);
    fn progress(&mut self, _bytes: u64) {}
}

/// Keeps rejections in memory, for an HTTP answer.
#[derive(Default)]
pub struct CollectRejections(pub Vec<Rejection>);

impl ImportObserver for CollectRejections {
    fn rejected(&mut self, rejection: Rejection) {
        self.0.push(rejection);
    }
}

/// Why an import stopped before the end of its file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    BadFile(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

struct Batch<T> {
    rows: Vec<(u64, Result<T, String>)>,
    bytes: u64,
}

pub struct Importer {
    store: Arc<dyn Store>,
    home: CountryCode,
    currency: Currency,
    actor: Actor,
}

impl Importer {
    pub fn new(store: Arc<dyn Store>, home: CountryCode, currency: Currency, actor: Actor) -> Self {
        Self {
            store,
            home,
            currency,
            actor,
        }
    }

    pub async fn import_subscribers(
        &self,
        input: impl Read + Send + 'static,
        options: &ImportOptions,
        observer: &mut dyn ImportObserver,
    ) -> Result<ImportReport, ImportError> {
        let home = self.home;
        let mut batches = read_batches(
            input,
            options.batch_size,
            SUBSCRIBER_COLUMNS,
            &[],
            move |r: SubscriberRow| r.parse(home).map_err(|e| reason(&e)),
        );
        let mut report = ImportReport {
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        let mut analysed = 0;
        while let Some(batch) = batches.recv().await {
            let batch = batch.map_err(ImportError::BadFile)?;
            observer.progress(batch.bytes);
            self.subscriber_batch(batch.rows, options, &mut report, observer)
                .await?;
            self.keep_statistics_fresh(&report, &mut analysed).await?;
        }
        Ok(report)
    }

    async fn subscriber_batch(
        &self,
        rows: Vec<(u64, Result<ParsedSubscriber, String>)>,
        options: &ImportOptions,
        report: &mut ImportReport,
        observer: &mut dyn ImportObserver,
    ) -> Result<(), ImportError> {
        report.rows += rows.len() as u64;
        let mut parsed = Vec::with_capacity(rows.len());
        for (line, row) in rows {
            match row {
                Ok(row) => parsed.push((line, row)),
                Err(reason) => reject(report, observer, line, reason),
            }
        }
        let numbers: Vec<i64> = parsed
            .iter()
            .filter_map(|(_, r)| r.number.map(|n| n.sequence()))
            .collect();
        let by_number: HashMap<i64, KnownSubscriber> = self
            .store
            .subscribers_by_sequence(&numbers)
            .await?
            .into_iter()
            .map(|k| (k.sequence, k))
            .collect();
        let legacy: Vec<String> = parsed
            .iter()
            .filter(|(_, r)| r.number.is_none())
            .filter_map(|(_, r)| r.legacy_id.clone())
            .collect();
        let by_legacy: HashMap<String, KnownSubscriber> = self
            .store
            .subscribers_by_legacy_id(&legacy)
            .await?
            .into_iter()
            .filter_map(|k| Some((k.legacy_id.clone()?, k)))
            .collect();
        let by_key = self.known_by_duplicate_keys(&parsed).await?;

        let mut batch = SubscriberBatch::default();
        // Within the batch: the first line holding each legacy id and duplicate key.
        let mut seen_legacy: HashMap<String, u64> = HashMap::new();
        let mut seen_keys: HashMap<(TermKind, String), u64> = HashMap::new();
        for (line, row) in parsed {
            if let Some(number) = row.number {
                match by_number.get(&number.sequence()) {
                    Some(_) => report.matched += 1,
                    None => reject(
                        report,
                        observer,
                        line,
                        format!("there is no subscriber {number}"),
                    ),
                }
                continue;
            }
            let Some(legacy_id) = row.legacy_id.clone() else {
                continue;
            };
            if by_legacy.contains_key(&legacy_id) {
                report.matched += 1;
                continue;
            }
            if let Some(first) = seen_legacy.get(&legacy_id) {
                let why = format!("legacy id {legacy_id} was already given on line {first}");
                reject(report, observer, line, why);
                continue;
            }
            let existing = row
                .duplicate_keys
                .iter()
                .find_map(|k| by_key.get(&(k.kind, k.term.clone())).map(|s| (k.kind, s)));
            if let Some((kind, known)) = existing {
                match &known.legacy_id {
                    None => {
                        report.matched += 1;
                        batch.tag.push((known.sequence, legacy_id.clone()));
                        seen_legacy.insert(legacy_id, line);
                    }
                    Some(other) => {
                        let why = format!(
                            "matches subscriber {} on {}, who already has legacy id {other}",
                            crate::domain::SubscriberNumber::from_sequence(known.sequence),
                            super::match_label(kind)
                        );
                        reject(report, observer, line, why);
                    }
                }
                continue;
            }
            if let Some((kind, first)) = row.duplicate_keys.iter().find_map(|k| {
                seen_keys
                    .get(&(k.kind, k.term.clone()))
                    .map(|l| (k.kind, *l))
            }) {
                let why = format!(
                    "the same reader as line {first} ({}); give each reader one row",
                    super::match_label(kind)
                );
                reject(report, observer, line, why);
                continue;
            }
            for key in &row.duplicate_keys {
                seen_keys.insert((key.kind, key.term.clone()), line);
            }
            seen_legacy.insert(legacy_id.clone(), line);
            batch.new.push(ImportedSubscriber {
                legacy_id,
                profile: row.profile,
                terms: row.terms,
            });
        }
        if batch.new.is_empty() && batch.tag.is_empty() {
            return Ok(());
        }
        let audit = AuditEntry {
            at: chrono::Utc::now(),
            actor: self.actor.clone(),
            action: "subscriber.import",
            subscriber: None,
            request_id: None,
            detail: json!({ "created": batch.new.len(), "tagged": batch.tag.len() }),
        };
        self.store
            .import_subscribers(&batch, audit, !options.dry_run)
            .await?;
        report.created += batch.new.len() as u64;
        if !options.dry_run {
            report.batches += 1;
        }
        Ok(())
    }

    /// After the first committed batch and every 20th, the planner learns the new sizes, so
    /// that the lookups of later batches keep using their indexes.
    async fn keep_statistics_fresh(
        &self,
        report: &ImportReport,
        analysed: &mut u64,
    ) -> Result<(), ImportError> {
        if report.batches != *analysed && report.batches % 20 == 1 {
            self.store.refresh_statistics().await?;
            *analysed = report.batches;
        }
        Ok(())
    }

    /// Live subscribers holding the rows' emails, phones, or names and postal codes.
    async fn known_by_duplicate_keys(
        &self,
        parsed: &[(u64, ParsedSubscriber)],
    ) -> Result<HashMap<(TermKind, String), KnownSubscriber>, ImportError> {
        let mut found = HashMap::new();
        for kind in [TermKind::Email, TermKind::Phone, TermKind::Identity] {
            let terms: Vec<String> = parsed
                .iter()
                .filter(|(_, r)| r.number.is_none())
                .flat_map(|(_, r)| r.duplicate_keys.iter())
                .filter(|k| k.kind == kind)
                .map(|k| k.term.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for chunk in terms.chunks(5_000) {
                for (term, known) in self.store.subscribers_by_terms(kind, chunk).await? {
                    found.entry((kind, term)).or_insert(known);
                }
            }
        }
        Ok(found)
    }

    pub async fn import_terms(
        &self,
        input: impl Read + Send + 'static,
        options: &ImportOptions,
        observer: &mut dyn ImportObserver,
    ) -> Result<ImportReport, ImportError> {
        let currency = self.currency;
        let mut batches = read_batches(
            input,
            options.batch_size,
            TERM_COLUMNS,
            REQUIRED_TERM_COLUMNS,
            move |r: TermRow| r.parse(currency).map_err(|e| reason(&e)),
        );
        let publications: HashMap<PublicationCode, i64> = self
            .store
            .list_publications()
            .await?
            .into_iter()
            .map(|p| (p.definition.code, p.id))
            .collect();
        let mut report = ImportReport {
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        let mut analysed = 0;
        self.store.refresh_statistics().await?;
        while let Some(batch) = batches.recv().await {
            let batch = batch.map_err(ImportError::BadFile)?;
            observer.progress(batch.bytes);
            self.term_batch(batch.rows, &publications, options, &mut report, observer)
                .await?;
            self.keep_statistics_fresh(&report, &mut analysed).await?;
        }
        Ok(report)
    }

    async fn term_batch(
        &self,
        rows: Vec<(u64, Result<ParsedTerm, String>)>,
        publications: &HashMap<PublicationCode, i64>,
        options: &ImportOptions,
        report: &mut ImportReport,
        observer: &mut dyn ImportObserver,
    ) -> Result<(), ImportError> {
        report.rows += rows.len() as u64;
        let mut parsed = Vec::with_capacity(rows.len());
        for (line, row) in rows {
            match row {
                Ok(row) => parsed.push((line, row)),
                Err(reason) => reject(report, observer, line, reason),
            }
        }
        let owners = self.resolve_owners(&parsed).await?;
        let mut resolved = Vec::with_capacity(parsed.len());
        for (line, row) in parsed {
            let Some(subscriber) = owners.get(&row.owner).copied() else {
                let who = match &row.owner {
                    Owner::Number(n) => format!("there is no subscriber {n}"),
                    Owner::Legacy(l) => {
                        format!("no subscriber has legacy id {l}; import subscribers.csv first")
                    }
                };
                reject(report, observer, line, who);
                continue;
            };
            let Some(publication_id) = publications.get(&row.publication).copied() else {
                let why = format!(
                    "there is no publication {}; add it to the catalogue first",
                    row.publication
                );
                reject(report, observer, line, why);
                continue;
            };
            resolved.push((subscriber, publication_id, row));
        }
        let keys: Vec<_> = resolved.iter().map(|(s, p, r)| (*s, *p, r.start)).collect();
        let mut existing: HashSet<_> = self
            .store
            .existing_terms(&keys)
            .await?
            .into_iter()
            .collect();
        let mut terms = Vec::with_capacity(resolved.len());
        for (subscriber, publication_id, row) in resolved {
            if !existing.insert((subscriber, publication_id, row.start)) {
                report.unchanged += 1;
                continue;
            }
            terms.push(ImportedTerm {
                subscriber,
                extension_days: row.extension_days,
                cancellation: row.cancellation,
                term: NewTerm {
                    publication_id,
                    format: row.format,
                    months: row.months,
                    start: row.start,
                    end: row.end,
                    list_price: row.list_price,
                    discounts: row.discounts,
                    price_paid: row.price_paid,
                    channel: row.channel,
                    payment_method: row.payment_method,
                    auto_renew: row.auto_renew,
                    renews: None,
                },
            });
        }
        if terms.is_empty() {
            return Ok(());
        }
        self.store.import_terms(&terms, !options.dry_run).await?;
        report.created += terms.len() as u64;
        if !options.dry_run {
            report.batches += 1;
        }
        Ok(())
    }

    /// The live sequence of each row's reader; merged numbers lead to where they went.
    async fn resolve_owners(
        &self,
        parsed: &[(u64, ParsedTerm)],
    ) -> Result<HashMap<Owner, i64>, ImportError> {
        let mut numbers = HashSet::new();
        let mut legacy = HashSet::new();
        for (_, row) in parsed {
            match &row.owner {
                Owner::Number(n) => numbers.insert(n.sequence()),
                Owner::Legacy(l) => legacy.insert(l.clone()),
            };
        }
        let numbers: Vec<i64> = numbers.into_iter().collect();
        let legacy: Vec<String> = legacy.into_iter().collect();
        let mut owners = HashMap::new();
        for k in self.store.subscribers_by_sequence(&numbers).await? {
            let owner = Owner::Number(crate::domain::SubscriberNumber::from_sequence(k.sequence));
            owners.insert(owner, k.merged_into.unwrap_or(k.sequence));
        }
        for chunk in legacy.chunks(5_000) {
            for k in self.store.subscribers_by_legacy_id(chunk).await? {
                if let Some(l) = k.legacy_id {
                    owners.insert(Owner::Legacy(l), k.merged_into.unwrap_or(k.sequence));
                }
            }
        }
        Ok(owners)
    }
}

fn reject(report: &mut ImportReport, observer: &mut dyn ImportObserver, line: u64, reason: String) {
    report.rejected += 1;
    observer.rejected(Rejection { line, reason });
}

/// Parses the CSV on a blocking thread, `size` rows a batch, checking the header first.
fn read_batches<Row, Parsed>(
    input: impl Read + Send + 'static,
    size: usize,
    known: &'static [&'static str],
    required: &'static [&'static str],
    parse: impl Fn(Row) -> Result<Parsed, String> + Send + 'static,
) -> mpsc::Receiver<Result<Batch<Parsed>, String>>
where
    Row: serde::de::DeserializeOwned,
    Parsed: Send + 'static,
{
    let (sender, receiver) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(input);
        let header = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                let _ = sender.blocking_send(Err(format!("the file cannot be read as CSV: {e}")));
                return;
            }
        };
        if let Some(unknown) = header.iter().find(|h| !known.contains(h)) {
            let _ = sender.blocking_send(Err(format!(
                "unknown column `{unknown}`; the columns are {}",
                known.join(", ")
            )));
            return;
        }
        if let Some(missing) = required.iter().find(|r| !header.iter().any(|h| h == **r)) {
            let _ =
                sender.blocking_send(Err(format!("the required column `{missing}` is missing")));
            return;
        }
        let mut rows = Vec::with_capacity(size);
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line() + 1;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(line, |p| p.line());
                    let row = record
                        .deserialize::<Row>(Some(&header))
                        .map_err(|e| strip_position(&e.to_string()))
                        .and_then(&parse);
                    rows.push((line, row));
                }
                Err(e) => rows.push((
                    line,
                    Err(format!(
                        "unreadable CSV: {}",
                        strip_position(&e.to_string())
                    )),
                )),
            }
            if rows.len() == size {
                let batch = Batch {
                    rows: std::mem::replace(&mut rows, Vec::with_capacity(size)),
                    bytes: reader.position().byte(),
                };
                if sender.blocking_send(Ok(batch)).is_err() {
                    return;
                }
            }
        }
        let bytes = reader.position().byte();
        if !rows.is_empty() {
            let _ = sender.blocking_send(Ok(Batch { rows, bytes }));
        }
    });
    receiver
}

/// csv's messages start with the record position, which the report gives as `line`.
fn strip_position(message: &str) -> String {
    message
        .split_once("): ")
        .map_or(message, |(_, rest)| rest)
        .to_owned()
}

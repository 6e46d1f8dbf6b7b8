//! The legacy circulation file: import of `subscribers.csv` and `terms.csv` in batches, and
//! the export of both in the same shape.
//!
//! Three stages overlap: a reader thread parses and checks rows (the CPU work); this side
//! matches a batch to the database; a task writes the batch before it in one transaction. At
//! most a few batches are held at once, so memory stays constant however long the file. A
//! rejected row never stops the others: it is reported with its line and reason.

mod export;
mod lines;
pub mod rows;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use self::rows::{Owner, ParsedSubscriber, ParsedTerm, SubscriberRow, TermRow, reason};
use super::clock::Clock;
use super::jobs::Stop;
use crate::domain::CountryCode;
use crate::domain::money::Currency;
use crate::domain::publication::PublicationCode;
use crate::domain::search::{SearchTerm, TermKind};
use crate::store::{
    Actor, AuditEntry, Fence, ImportedSubscriber, ImportedTerm, KnownSubscriber, NewTerm, Store,
    StoreError, SubscriberBatch,
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

/// Which of the two files an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportFile {
    /// `subscribers.csv`: the readers.
    Subscribers,
    /// `terms.csv`: every term they paid for.
    Terms,
}

impl ImportFile {
    /// `subscribers` or `terms`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subscribers => "subscribers",
            Self::Terms => "terms",
        }
    }

    /// The columns a file may have, and those it must.
    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Self::Subscribers => (SUBSCRIBER_COLUMNS, &[]),
            Self::Terms => (TERM_COLUMNS, REQUIRED_TERM_COLUMNS),
        }
    }
}

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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    /// The physical line of the file on which the row starts (the header is line 1), in LF
    /// and CRLF files alike, for a row whose quoted fields span lines too.
    pub line: u64,
    pub reason: String,
}

/// What an import did with a file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
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

/// Receives each rejection as it happens, and hears between batches how far the import is.
#[async_trait]
pub trait ImportObserver: Send {
    fn rejected(&mut self, rejection: Rejection);
    /// Called between batches, once the batch before has been written: `bytes` of the file
    /// are read and checked. An error stops the import there; the batches written stay.
    async fn between_batches(
        &mut self,
        _bytes: u64,
        _report: &ImportReport,
    ) -> Result<(), ImportError> {
        Ok(())
    }
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
    Store(#[from] StoreError),
    #[error("the task writing a batch stopped: {0}")]
    Writer(String),
    /// The file could not be read to its end (not the file's fault: its source failed).
    #[error("the file could not be read: {0}")]
    Read(String),
    /// The observer stopped the import between batches (a job cancelled or taken over).
    #[error("the import was stopped between batches")]
    Stopped(Stop),
}

impl From<Stop> for ImportError {
    fn from(stop: Stop) -> Self {
        Self::Stopped(stop)
    }
}

/// A term's reader, title and start: the same three are the same term.
type TermKey = (i64, i64, NaiveDate);

struct Batch<T> {
    rows: Vec<(u64, Result<T, String>)>,
    bytes: u64,
}

/// The batch being written while the next one is matched; `rows` is what it creates.
struct InFlight {
    task: JoinHandle<Result<(), StoreError>>,
    rows: u64,
}

impl InFlight {
    fn start(
        rows: u64,
        write: impl Future<Output = Result<(), StoreError>> + Send + 'static,
    ) -> Self {
        Self {
            task: tokio::spawn(write),
            rows,
        }
    }

    /// Waits for the write and counts it in the report.
    async fn finish(self, report: &mut ImportReport) -> Result<(), ImportError> {
        self.task
            .await
            .map_err(|e| ImportError::Writer(e.to_string()))??;
        report.created += self.rows;
        if !report.dry_run {
            report.batches += 1;
        }
        Ok(())
    }

    async fn finish_all(
        in_flight: Option<Self>,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        match in_flight {
            Some(batch) => batch.finish(report).await,
            None => Ok(()),
        }
    }
}

/// The legacy ids and duplicate keys of a batch's new readers, with the line of each: checked
/// by the next batch, which the database cannot show them to until the batch is committed.
#[derive(Default)]
struct SeenReaders {
    legacy: HashMap<String, u64>,
    keys: HashMap<(TermKind, String), u64>,
    /// Sequences of the free numbers new readers are created under.
    numbers: HashMap<i64, u64>,
}

impl SeenReaders {
    fn legacy(&self, before: &Self, legacy_id: &str) -> Option<u64> {
        self.legacy
            .get(legacy_id)
            .or_else(|| before.legacy.get(legacy_id))
            .copied()
    }

    fn key(&self, before: &Self, key: &(TermKind, String)) -> Option<u64> {
        self.keys.get(key).or_else(|| before.keys.get(key)).copied()
    }

    fn number(&self, before: &Self, sequence: i64) -> Option<u64> {
        self.numbers
            .get(&sequence)
            .or_else(|| before.numbers.get(&sequence))
            .copied()
    }

    fn remember(
        &mut self,
        keys: &[SearchTerm],
        legacy_id: Option<String>,
        number: Option<i64>,
        line: u64,
    ) {
        for key in keys {
            self.keys.insert((key.kind, key.term.clone()), line);
        }
        if let Some(legacy_id) = legacy_id {
            self.legacy.insert(legacy_id, line);
        }
        if let Some(number) = number {
            self.numbers.insert(number, line);
        }
    }
}

pub struct Importer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    home: CountryCode,
    currency: Currency,
    actor: Actor,
    /// The claim of the job running the import: its writes land only while it holds.
    fence: Option<Fence>,
}

impl Importer {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        home: CountryCode,
        currency: Currency,
        actor: Actor,
    ) -> Self {
        Self {
            store,
            clock,
            home,
            currency,
            actor,
            fence: None,
        }
    }

    /// The same importer, writing each batch only while the job's claim holds.
    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Imports either file: the one path of `masthead import` and of the import jobs.
    pub async fn import(
        &self,
        file: ImportFile,
        input: impl Read + Send + 'static,
        options: &ImportOptions,
        observer: &mut dyn ImportObserver,
    ) -> Result<ImportReport, ImportError> {
        match file {
            ImportFile::Subscribers => self.import_subscribers(input, options, observer).await,
            ImportFile::Terms => self.import_terms(input, options, observer).await,
        }
    }

    pub async fn import_subscribers(
        &self,
        input: impl Read + Send + 'static,
        options: &ImportOptions,
        observer: &mut dyn ImportObserver,
    ) -> Result<ImportReport, ImportError> {
        let home = self.home;
        let today = self.clock.today();
        let mut batches = read_batches(
            input,
            options.batch_size,
            ImportFile::Subscribers,
            move |r: SubscriberRow| r.parse(home, today).map_err(|e| reason(&e)),
        );
        let mut report = ImportReport {
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        let mut analysed = 0;
        let mut in_flight: Option<InFlight> = None;
        let mut seen_before = SeenReaders::default();
        while let Some(batch) = batches.recv().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    InFlight::finish_all(in_flight, &mut report).await?;
                    return Err(e);
                }
            };
            let bytes = batch.bytes;
            let prepared = self
                .subscriber_batch(batch.rows, &seen_before, &mut report, observer)
                .await;
            // The batch before is waited for even when this one failed: nothing is left
            // writing once the import returns.
            let written = InFlight::finish_all(in_flight.take(), &mut report).await;
            let (prepared, seen) = prepared?;
            written?;
            observer.between_batches(bytes, &report).await?;
            self.keep_statistics_fresh(&report, &mut analysed).await?;
            seen_before = seen;
            if prepared.new.is_empty() && prepared.tag.is_empty() {
                continue;
            }
            let audit = AuditEntry {
                at: self.clock.now(),
                actor: self.actor.clone(),
                action: "subscriber.import",
                subscriber: None,
                request_id: None,
                detail: json!({ "created": prepared.new.len(), "tagged": prepared.tag.len() }),
            };
            let store = Arc::clone(&self.store);
            let commit = !options.dry_run;
            let fence = self.fence.clone();
            in_flight = Some(InFlight::start(prepared.new.len() as u64, async move {
                store
                    .import_subscribers(&prepared, audit, fence.as_ref(), commit)
                    .await
                    .map(drop)
            }));
        }
        InFlight::finish_all(in_flight, &mut report).await?;
        self.keep_statistics_fresh(&report, &mut analysed).await?;
        Ok(report)
    }

    /// Matches a batch to the readers already known, to itself and to the batch before it
    /// (still being written); returns what to write and the batch's own keys.
    async fn subscriber_batch(
        &self,
        rows: Vec<(u64, Result<ParsedSubscriber, String>)>,
        before: &SeenReaders,
        report: &mut ImportReport,
        observer: &mut dyn ImportObserver,
    ) -> Result<(SubscriberBatch, SeenReaders), ImportError> {
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
        // Rows naming no reader already known are new readers, to be checked like any other.
        let is_new = |r: &ParsedSubscriber| {
            r.number
                .is_none_or(|n| !by_number.contains_key(&n.sequence()))
        };
        let legacy: Vec<String> = parsed
            .iter()
            .filter(|(_, r)| is_new(r))
            .filter_map(|(_, r)| r.legacy_id.clone())
            .collect();
        let by_legacy: HashMap<String, KnownSubscriber> = self
            .store
            .subscribers_by_legacy_id(&legacy)
            .await?
            .into_iter()
            .filter_map(|k| Some((k.legacy_id.clone()?, k)))
            .collect();
        // A row with a number is the reader of that number: it is matched by nothing else.
        let unnumbered: Vec<&ParsedSubscriber> = parsed
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r.number.is_none())
            .collect();
        let by_key = self.known_by_duplicate_keys(&unnumbered).await?;

        let mut batch = SubscriberBatch::default();
        // The first line holding each legacy id and duplicate key, here or in the batch before.
        let mut seen = SeenReaders::default();
        for (line, row) in parsed {
            if let Some(number) = row.number
                && by_number.contains_key(&number.sequence())
            {
                report.matched += 1;
                continue;
            }
            // A number no reader holds (its check digit was checked with the row) is where
            // the new reader goes: an export loaded into a new database keeps its numbers.
            let sequence = row.number.map(|n| n.sequence());
            let legacy_id = row.legacy_id.clone();
            if sequence.is_none() && legacy_id.is_none() {
                continue;
            }
            // The file is checked against itself first, so that a repeat is reported the
            // same way whether or not the batch before has been committed yet.
            if let (Some(number), Some(first)) =
                (row.number, sequence.and_then(|n| seen.number(before, n)))
            {
                let why = format!("subscriber number {number} was already given on line {first}");
                reject(report, observer, line, why);
                continue;
            }
            if let Some((legacy_id, first)) = legacy_id
                .as_deref()
                .and_then(|l| seen.legacy(before, l).map(|first| (l, first)))
            {
                let why = format!("legacy id {legacy_id} was already given on line {first}");
                reject(report, observer, line, why);
                continue;
            }
            if let Some((kind, first)) = row
                .duplicate_keys
                .iter()
                .filter(|_| sequence.is_none())
                .find_map(|k| {
                    seen.key(before, &(k.kind, k.term.clone()))
                        .map(|l| (k.kind, l))
                })
            {
                let why = format!(
                    "the same reader as line {first} ({}); give each reader one row",
                    super::match_label(kind)
                );
                reject(report, observer, line, why);
                continue;
            }
            let known_legacy = legacy_id.as_ref().and_then(|l| by_legacy.get(l));
            let existing = row
                .duplicate_keys
                .iter()
                .find_map(|k| by_key.get(&(k.kind, k.term.clone())).map(|s| (k.kind, s)));
            if let Some(number) = row.number {
                // The legacy id is another reader's: the row cannot be both.
                if let (Some(known), Some(legacy_id)) = (known_legacy, &legacy_id) {
                    let why = format!(
                        "there is no subscriber {number}, and legacy id {legacy_id} is \
                         subscriber {}'s; give that number, or another legacy id",
                        crate::domain::SubscriberNumber::from_sequence(known.sequence),
                    );
                    reject(report, observer, line, why);
                    continue;
                }
            } else if known_legacy.is_some() {
                report.matched += 1;
                continue;
            } else if let (Some((kind, known)), Some(legacy_id)) = (existing, &legacy_id) {
                match &known.legacy_id {
                    None => {
                        report.matched += 1;
                        batch.tag.push((known.sequence, legacy_id.clone()));
                        seen.remember(&row.duplicate_keys, Some(legacy_id.clone()), None, line);
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
            seen.remember(&row.duplicate_keys, legacy_id.clone(), sequence, line);
            batch.new.push(ImportedSubscriber {
                number: sequence,
                legacy_id,
                profile: row.profile,
                terms: row.terms,
            });
        }
        Ok((batch, seen))
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
        rows: &[&ParsedSubscriber],
    ) -> Result<HashMap<(TermKind, String), KnownSubscriber>, ImportError> {
        let mut found = HashMap::new();
        for kind in [TermKind::Email, TermKind::Phone, TermKind::Identity] {
            let terms: Vec<String> = rows
                .iter()
                .flat_map(|r| r.duplicate_keys.iter())
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
            ImportFile::Terms,
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
        let mut in_flight: Option<InFlight> = None;
        let mut written_before = HashSet::new();
        while let Some(batch) = batches.recv().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    InFlight::finish_all(in_flight, &mut report).await?;
                    return Err(e);
                }
            };
            let bytes = batch.bytes;
            let prepared = self
                .term_batch(
                    batch.rows,
                    &publications,
                    &written_before,
                    &mut report,
                    observer,
                )
                .await;
            let written = InFlight::finish_all(in_flight.take(), &mut report).await;
            let (terms, keys) = prepared?;
            written?;
            observer.between_batches(bytes, &report).await?;
            self.keep_statistics_fresh(&report, &mut analysed).await?;
            written_before = keys;
            if terms.is_empty() {
                continue;
            }
            let store = Arc::clone(&self.store);
            let commit = !options.dry_run;
            let (fence, at) = (self.fence.clone(), self.clock.now());
            in_flight = Some(InFlight::start(terms.len() as u64, async move {
                store.import_terms(&terms, at, fence.as_ref(), commit).await
            }));
        }
        InFlight::finish_all(in_flight, &mut report).await?;
        self.keep_statistics_fresh(&report, &mut analysed).await?;
        Ok(report)
    }

    /// Resolves a batch's readers and titles and leaves out the terms already held, in the
    /// database or in the batch before (still being written); returns the terms to write
    /// and their keys.
    async fn term_batch(
        &self,
        rows: Vec<(u64, Result<ParsedTerm, String>)>,
        publications: &HashMap<PublicationCode, i64>,
        before: &HashSet<TermKey>,
        report: &mut ImportReport,
        observer: &mut dyn ImportObserver,
    ) -> Result<(Vec<ImportedTerm>, HashSet<TermKey>), ImportError> {
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
        let existing: HashSet<TermKey> = self
            .store
            .existing_terms(&keys)
            .await?
            .into_iter()
            .collect();
        let mut written = HashSet::with_capacity(resolved.len());
        let mut terms = Vec::with_capacity(resolved.len());
        for (subscriber, publication_id, row) in resolved {
            let key = (subscriber, publication_id, row.start);
            if existing.contains(&key) || before.contains(&key) || !written.insert(key) {
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
        Ok((terms, written))
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

/// Checks that the file starts with a header of the file's columns, reading no further: what
/// is wrong with it, if anything. An import refuses such a file before it reads any row.
pub fn check_header(file: ImportFile, input: impl Read) -> Result<(), String> {
    read_header(&mut csv_reader(input), file).map(drop)
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input)
}

/// The header, if it names the file's columns (in any order) and every required one.
fn read_header<R: Read>(
    reader: &mut csv::Reader<R>,
    file: ImportFile,
) -> Result<csv::StringRecord, String> {
    let (known, required) = file.columns();
    let header = reader
        .headers()
        .map_err(|e| format!("the file cannot be read as CSV: {e}"))?
        .clone();
    if let Some(unknown) = header.iter().find(|h| !known.contains(h)) {
        return Err(format!(
            "unknown column `{unknown}`; the columns are {}",
            known.join(", ")
        ));
    }
    if let Some(missing) = required.iter().find(|r| !header.iter().any(|h| h == **r)) {
        return Err(format!("the required column `{missing}` is missing"));
    }
    Ok(header)
}

/// Parses the CSV on a blocking thread, `size` rows a batch, checking the header first.
fn read_batches<Row, Parsed>(
    input: impl Read + Send + 'static,
    size: usize,
    file: ImportFile,
    parse: impl Fn(Row) -> Result<Parsed, String> + Send + 'static,
) -> mpsc::Receiver<Result<Batch<Parsed>, ImportError>>
where
    Row: serde::de::DeserializeOwned,
    Parsed: Send + 'static,
{
    let (sender, receiver) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let (input, lines) = lines::counting(input);
        let mut reader = csv_reader(input);
        let header = match read_header(&mut reader, file) {
            Ok(header) => header,
            Err(why) => {
                let _ = sender.blocking_send(Err(ImportError::BadFile(why)));
                return;
            }
        };
        let mut rows = Vec::with_capacity(size);
        let mut record = csv::StringRecord::new();
        loop {
            // Where this record's parse begins; its line is that of its first character.
            let start = reader.position().byte();
            let result = reader.read_record(&mut record);
            let line = lines.line_at(start);
            match result {
                Ok(false) => break,
                Ok(true) => {
                    let row = record
                        .deserialize::<Row>(Some(&header))
                        .map_err(|e| strip_position(&e.to_string()))
                        .and_then(&parse);
                    rows.push((line, row));
                }
                // The source failed, not the row: nothing after it can be trusted.
                Err(e) if e.is_io_error() => {
                    let _ = sender.blocking_send(Err(ImportError::Read(e.to_string())));
                    return;
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

//! The backup file: a header line, each table's columns and rows, the id sequences, and a
//! closing line with the counts and a SHA-256 of every line before it.
//!
//! Every line is one JSON value, so the file is read and written a line at a time and its
//! rows go to the database as they are, without being parsed here.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::store::backup::{
    BackupCounts, BackupError, BackupHeader, BackupItem, BackupSink, BackupSource,
};

/// What the first line of every backup names.
pub const FORMAT: &str = "masthead-backup";
/// The layout of the lines; a reader refuses a later one rather than misread it.
pub const VERSION: u32 = 1;

/// Rows handed to the database per statement: large enough to keep statements few, small
/// enough to keep memory flat.
const CHUNK_ROWS: usize = 5_000;
const CHUNK_BYTES: usize = 8 << 20;

/// Writes the whole database to `out` as it stood at one instant; `made_at` goes in the
/// header. The service may go on serving meanwhile.
pub async fn write<W: Write + Send>(
    store: &dyn Store,
    out: W,
    made_at: DateTime<Utc>,
) -> Result<(BackupCounts, W), BackupError> {
    let mut writer = BackupWriter {
        out,
        hasher: Sha256::new(),
        made_at,
        tables: 0,
        rows: 0,
    };
    let counts = store.write_backup(&mut writer).await?;
    let out = writer.finish()?;
    Ok((counts, out))
}

/// Reads a backup through to its end and checks its counts and checksum, writing nothing.
pub fn check<R: BufRead + Send>(input: R) -> Result<(BackupHeader, BackupCounts), BackupError> {
    let mut reader = BackupReader::open(input)?;
    while reader.next_item()?.is_some() {}
    Ok((
        reader.header.clone(),
        BackupCounts {
            tables: reader.tables,
            rows: reader.rows,
        },
    ))
}

/// Loads a backup into an empty database: all of it, or nothing if any of it is refused.
pub async fn restore<R: BufRead + Send>(
    store: &dyn Store,
    input: R,
) -> Result<(BackupHeader, BackupCounts), BackupError> {
    let mut reader = BackupReader::open(input)?;
    let counts = store.restore_backup(&mut reader).await?;
    Ok((reader.header, counts))
}

struct BackupWriter<W> {
    out: W,
    hasher: Sha256,
    made_at: DateTime<Utc>,
    tables: u64,
    rows: u64,
}

impl<W: Write> BackupWriter<W> {
    fn line(&mut self, text: &str) -> std::io::Result<()> {
        self.hasher.update(text.as_bytes());
        self.hasher.update(b"\n");
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// The closing line, which is not part of what its checksum covers.
    fn finish(mut self) -> std::io::Result<W> {
        let end = json!({ "end": {
            "tables": self.tables,
            "rows": self.rows,
            "sha256": format!("{:x}", self.hasher.finalize_reset()),
        }});
        writeln!(self.out, "{end}")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Send> BackupSink for BackupWriter<W> {
    fn begin(&mut self, header: &BackupHeader) -> std::io::Result<()> {
        let line = json!({
            "format": FORMAT,
            "version": VERSION,
            "backend": header.backend,
            "schema": header.schema,
            "made_at": self.made_at,
        });
        self.line(&line.to_string())
    }

    fn table(&mut self, name: &str, columns: &[String]) -> std::io::Result<()> {
        self.tables += 1;
        let line = json!({ "table": { "name": name, "columns": columns } });
        self.line(&line.to_string())
    }

    fn row(&mut self, row: &str) -> std::io::Result<()> {
        self.rows += 1;
        self.line(row)
    }

    fn sequences(&mut self, last_issued: &BTreeMap<String, i64>) -> std::io::Result<()> {
        self.line(&json!({ "sequences": last_issued }).to_string())
    }
}

#[derive(Deserialize)]
struct HeaderLine {
    format: String,
    version: u32,
    backend: String,
    schema: i64,
}

/// Any line after the header that is not a row.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Marker {
    Table { name: String, columns: Vec<String> },
    Sequences(BTreeMap<String, i64>),
    End(EndLine),
}

#[derive(Deserialize)]
struct EndLine {
    tables: u64,
    rows: u64,
    sha256: String,
}

struct BackupReader<R> {
    input: R,
    hasher: Sha256,
    header: BackupHeader,
    /// A line read ahead: the first after a run of rows.
    ahead: Option<String>,
    line: u64,
    tables: u64,
    rows: u64,
    ended: bool,
}

impl<R: BufRead> BackupReader<R> {
    fn open(mut input: R) -> Result<Self, BackupError> {
        let mut first = String::new();
        input
            .read_line(&mut first)
            .map_err(|e| BackupError::File(format!("the backup cannot be read: {e}")))?;
        let not_a_backup = || {
            BackupError::File(format!(
                "this is not a Masthead backup: its first line is not a `{FORMAT}` header \
                 (make one with `masthead backup FILE`)"
            ))
        };
        let header: HeaderLine = serde_json::from_str(first.trim_end_matches(['\n', '\r']))
            .map_err(|_| not_a_backup())?;
        if header.format != FORMAT {
            return Err(not_a_backup());
        }
        if header.version > VERSION {
            return Err(BackupError::File(format!(
                "the backup is in format version {}; this masthead reads version {VERSION}: \
                 restore it with a newer masthead",
                header.version
            )));
        }
        let mut hasher = Sha256::new();
        hasher.update(first.as_bytes());
        Ok(Self {
            input,
            hasher,
            header: BackupHeader {
                backend: header.backend,
                schema: header.schema,
            },
            ahead: None,
            line: 1,
            tables: 0,
            rows: 0,
            ended: false,
        })
    }

    /// The next line without its end, counted in the checksum; `None` at the end of the file.
    fn read_line(&mut self) -> Result<Option<String>, BackupError> {
        if let Some(line) = self.ahead.take() {
            return Ok(Some(line));
        }
        let mut line = String::new();
        let read = self
            .input
            .read_line(&mut line)
            .map_err(|e| BackupError::File(format!("the backup cannot be read: {e}")))?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        if !line.starts_with("{\"end\"") {
            self.hasher.update(line.as_bytes());
        }
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        Ok(Some(line))
    }

    fn cut_short() -> BackupError {
        BackupError::File(
            "the backup ends before its closing line: it was cut short while being made or \
             copied; copy it again, or make a new one"
                .to_owned(),
        )
    }

    fn damaged(&self, what: &str) -> BackupError {
        BackupError::File(format!(
            "the backup is damaged: {what} (line {}); copy it again, or make a new one",
            self.line
        ))
    }

    fn next_item(&mut self) -> Result<Option<BackupItem>, BackupError> {
        if self.ended {
            return Ok(None);
        }
        let Some(line) = self.read_line()? else {
            return Err(Self::cut_short());
        };
        if line.starts_with('[') {
            let mut chunk = String::with_capacity(line.len() * CHUNK_ROWS.min(64) + 2);
            chunk.push('[');
            chunk.push_str(&line);
            let mut count = 1;
            while count < CHUNK_ROWS && chunk.len() < CHUNK_BYTES {
                match self.read_line()? {
                    Some(next) if next.starts_with('[') => {
                        chunk.push(',');
                        chunk.push_str(&next);
                        count += 1;
                    }
                    Some(next) => {
                        self.ahead = Some(next);
                        break;
                    }
                    None => return Err(Self::cut_short()),
                }
            }
            chunk.push(']');
            self.rows += count as u64;
            return Ok(Some(BackupItem::Rows(chunk)));
        }
        let marker: Marker = serde_json::from_str(&line).map_err(|_| {
            self.damaged("a line is neither a row nor a table, the sequences or the end")
        })?;
        match marker {
            Marker::Table { name, columns } => {
                self.tables += 1;
                Ok(Some(BackupItem::Table { name, columns }))
            }
            Marker::Sequences(last_issued) => Ok(Some(BackupItem::Sequences(last_issued))),
            Marker::End(end) => {
                let digest = format!("{:x}", self.hasher.finalize_reset());
                if end.sha256 != digest {
                    return Err(self.damaged("its checksum does not match its contents"));
                }
                if (end.tables, end.rows) != (self.tables, self.rows) {
                    return Err(
                        self.damaged("it holds other counts of tables and rows than it says")
                    );
                }
                if self.read_line()?.is_some() {
                    return Err(self.damaged("there is more after its closing line"));
                }
                self.ended = true;
                Ok(None)
            }
        }
    }
}

impl<R: BufRead + Send> BackupSource for BackupReader<R> {
    fn header(&self) -> &BackupHeader {
        &self.header
    }

    fn next_item(&mut self) -> Result<Option<BackupItem>, BackupError> {
        BackupReader::next_item(self)
    }
}

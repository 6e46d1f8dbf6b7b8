//! `masthead backup FILE` and `masthead restore FILE`: a checked, portable copy of the whole
//! database, made while the service serves and restored into an empty database.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::config::Config;
use crate::services::backup;
use crate::services::clock::{Clock, SystemClock};
use crate::store;

const BUFFER: usize = 1 << 20;

pub(super) async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !file.exists(),
        "{} already exists; name a new file, or move the old one away first",
        file.display()
    );
    let store = store::open(&config.database_url()).await?;
    let started = Instant::now();
    // Written aside and renamed once complete, so FILE is never a backup cut short.
    let partial = partial_path(file);
    let out =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let written = backup::write(
        &*store,
        BufWriter::with_capacity(BUFFER, out),
        SystemClock.now(),
    )
    .await
    .map_err(anyhow::Error::from)
    .and_then(|(counts, out)| {
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(counts)
    });
    store.close().await;
    let counts = match written {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!("the backup to {} failed", file.display())));
        }
    };
    std::fs::rename(&partial, file)
        .with_context(|| format!("cannot move {} to {}", partial.display(), file.display()))?;
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    println!(
        "backed up {} rows of {} tables to {} ({:.1} MB) in {:.1} s",
        counts.rows,
        counts.tables,
        file.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(super) async fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let open = || -> anyhow::Result<BufReader<File>> {
        let input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        Ok(BufReader::with_capacity(BUFFER, input))
    };
    let started = Instant::now();
    // The whole file is checked before the database is touched.
    let (header, _) =
        backup::check(open()?).with_context(|| format!("{} cannot be restored", file.display()))?;
    let url = config.database_url();
    let store = store::open(&url).await?;
    let restored = backup::restore(&*store, open()?).await;
    store.close().await;
    let (_, counts) = restored.with_context(|| {
        format!(
            "{} was not restored into {}; nothing was written",
            file.display(),
            store::redact(&url)
        )
    })?;
    println!(
        "restored {} rows of {} tables from {} (a {} backup) in {:.1} s",
        counts.rows,
        counts.tables,
        file.display(),
        header.backend,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

//! `plantwatch-server metrics stats`: what `metrics.db` holds and what it costs on disk.

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::chunks::{Resolution, window_of_id};

/// One resolution's chunks.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Level {
    pub resolution: &'static str,
    pub chunks: u64,
    /// Samples (raw) or rollup buckets.
    pub points: u64,
    pub bytes: u64,
    /// Start of the oldest and end of the newest window, UNIX seconds.
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
}

/// Figures of the whole store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStats {
    pub series: u64,
    /// Samples in the head, not sealed yet.
    pub head_samples: u64,
    pub levels: Vec<Level>,
    /// Raw samples stored: head and raw chunks.
    pub samples: u64,
    /// The database file and its write-ahead log.
    pub disk_bytes: u64,
    /// Pages in use (the file keeps freed pages for reuse).
    pub used_bytes: u64,
    /// Used bytes per stored raw sample.
    pub bytes_per_sample: f64,
    /// Raw chunk bytes per sealed sample.
    pub chunk_bytes_per_sample: f64,
}

/// Reads the figures of the store at `path`, read-only (the server may be running).
pub fn collect(path: &Path) -> anyhow::Result<StoreStats> {
    use anyhow::Context as _;
    if !path.exists() {
        anyhow::bail!("there is no metric store at {}", path.display());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let has_log: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'head_log'",
        [],
        |r| r.get(0),
    )?;
    if !has_log {
        anyhow::bail!(
            "{} was written by an older release; start the server once to upgrade it",
            path.display()
        );
    }
    let series: i64 = conn.query_row("SELECT count(*) FROM series", [], |r| r.get(0))?;
    let head = super::head::replay(&conn)?.0.len() as i64;
    let mut levels: Vec<Level> = Resolution::ALL
        .iter()
        .map(|r| Level {
            resolution: r.name(),
            ..Level::default()
        })
        .collect();
    let mut statement = conn.prepare("SELECT id, points, length(data) FROM chunks")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let (points, bytes): (i64, i64) = (row.get(1)?, row.get(2)?);
        let code = ((id >> 28) & 15) as usize;
        let (Some(level), Some(resolution)) = (levels.get_mut(code), Resolution::ALL.get(code))
        else {
            continue;
        };
        level.chunks += 1;
        level.points += points as u64;
        level.bytes += bytes as u64;
        let start = window_of_id(id, *resolution) / 1_000;
        let end = start + resolution.window_ms() / 1_000;
        level.oldest = Some(level.oldest.map_or(start, |o| o.min(start)));
        level.newest = Some(level.newest.map_or(end, |n| n.max(end)));
    }
    let pragma = |name: &str| -> rusqlite::Result<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
    };
    let used = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
    let file_size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let disk = file_size(path) + file_size(Path::new(&wal));
    let samples = head as u64 + levels[0].points;
    Ok(StoreStats {
        series: series as u64,
        head_samples: head as u64,
        samples,
        disk_bytes: disk,
        used_bytes: used.max(0) as u64,
        bytes_per_sample: ratio(used.max(0) as u64, samples),
        chunk_bytes_per_sample: ratio(levels[0].bytes, levels[0].points),
        levels,
    })
}

fn ratio(bytes: u64, samples: u64) -> f64 {
    if samples == 0 {
        0.0
    } else {
        bytes as f64 / samples as f64
    }
}

fn date(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".into(), crate::db::rfc3339)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

impl fmt::Display for StoreStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "series             {}", self.series)?;
        writeln!(
            f,
            "samples            {} ({} in the head, not sealed yet)",
            self.samples, self.head_samples
        )?;
        writeln!(
            f,
            "disk use           {} (pages in use {})",
            size(self.disk_bytes),
            size(self.used_bytes)
        )?;
        writeln!(
            f,
            "bytes per sample   {:.2} (whole file) · {:.2} (raw chunks alone)",
            self.bytes_per_sample, self.chunk_bytes_per_sample
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<10} {:>10} {:>14} {:>12}  {:<25} {:<25}",
            "resolution", "chunks", "points", "size", "from", "to"
        )?;
        for level in &self.levels {
            writeln!(
                f,
                "{:<10} {:>10} {:>14} {:>12}  {:<25} {:<25}",
                level.resolution,
                level.chunks,
                level.points,
                size(level.bytes),
                date(level.oldest),
                date(level.newest)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_old_store_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.db");
        let missing = collect(&path).unwrap_err().to_string();
        assert!(missing.contains("there is no metric store"), "{missing}");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../../migrations/metrics/0001_samples.sql"))
            .unwrap();
        let old = collect(&path).unwrap_err().to_string();
        assert!(old.contains("start the server once to upgrade it"), "{old}");
    }

    #[test]
    fn an_empty_store_has_no_bytes_per_sample_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.db");
        drop(crate::metrics_store::MetricsStore::open_with(
            &path,
            crate::metrics_store::StoreOptions {
                background_compaction: false,
                ..Default::default()
            },
        ));
        let stats = collect(&path).unwrap();
        assert_eq!(
            (stats.series, stats.samples, stats.bytes_per_sample),
            (0, 0, 0.0)
        );
        assert!(stats.to_string().contains("bytes per sample   0.00"));
    }
}

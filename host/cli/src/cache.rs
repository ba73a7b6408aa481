//! `stepbox cache ls` and `stepbox cache prune`: both on-disk caches, the
//! blob cache of pulled artifacts ([`stepbox_oci::BlobCache`]) and the
//! compile cache ([`stepbox::engine::CompileCache`]), in the directories
//! `run`, `pull` and `push` use.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use stepbox::engine::CompileCache;
use stepbox::report::format_bytes;
use stepbox_oci::BlobCache;

/// `stepbox cache`.
#[derive(Debug, Args)]
pub struct CacheCommand {
    #[command(subcommand)]
    action: CacheAction,
    /// The compile cache [default: $STEPBOX_CACHE_DIR or ~/.cache/stepbox/components].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// The blob cache [default: $STEPBOX_OCI_CACHE, else ~/.cache/stepbox/oci].
    #[arg(long, value_name = "DIR", global = true)]
    oci_cache: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Show each cache: its directory, entries, bytes and the oldest use.
    Ls,
    /// Remove least recently used entries (a pull, a run or a load marks
    /// an entry used) until both caches together are under --max-size, and entries
    /// unused for longer than --unused-for. Removed artifacts are pulled
    /// again when next used. Refused, removing nothing, while another
    /// stepbox process (a run of a pulled step, a pull, a worker) uses the
    /// blob cache.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
struct PruneArgs {
    /// Keep both caches together at most this large, the least recently
    /// used entries of either removed first (bytes, or with Ki, Mi, Gi;
    /// 0 empties them).
    #[arg(long, value_name = "SIZE", value_parser = crate::parse_size)]
    max_size: Option<u64>,
    /// Remove entries not used for this long (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    unused_for: Option<Duration>,
    /// Only print what would be removed.
    #[arg(long)]
    dry_run: bool,
}

impl CacheCommand {
    fn caches(&self) -> (BlobCache, CompileCache) {
        (
            BlobCache::new(
                self.oci_cache
                    .clone()
                    .unwrap_or_else(BlobCache::default_dir),
            ),
            CompileCache::new(
                self.cache_dir
                    .clone()
                    .unwrap_or_else(CompileCache::default_dir),
            ),
        )
    }
}

fn ago(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{} ago",
        humantime::format_duration(Duration::from_secs(secs))
    )
}

fn summary(name: &str, dir: &std::path::Path, n: usize, bytes: u64, oldest: Option<SystemTime>) {
    let oldest = oldest.map_or_else(String::new, |t| format!(", oldest use {}", ago(t)));
    println!(
        "{name} {}: {n} entries, {}{oldest}",
        dir.display(),
        format_bytes(bytes)
    );
}

/// `stepbox cache`.
pub fn cache(args: CacheCommand) -> Result<u8> {
    let (blobs, compiled) = args.caches();
    match &args.action {
        CacheAction::Ls => {
            let e = blobs.entries();
            let oldest = e.first().map(|e| e.last_used);
            summary(
                "blob cache",
                blobs.root(),
                e.len(),
                e.iter().map(|e| e.bytes).sum(),
                oldest,
            );
            let e = compiled.entries();
            let oldest = e.first().map(|e| e.last_used);
            summary(
                "compile cache",
                compiled.dir(),
                e.len(),
                e.iter().map(|e| e.bytes).sum(),
                oldest,
            );
        }
        CacheAction::Prune(p) => {
            if p.max_size.is_none() && p.unused_for.is_none() {
                bail!("say what to remove: --max-size SIZE, --unused-for DURATION, or both");
            }
            let verb = if p.dry_run { "would remove" } else { "removed" };
            // Not while another process runs what it pulled (see
            // stepbox_oci's CacheHold); a dry run removes nothing.
            let _collecting = if p.dry_run {
                None
            } else {
                Some(blobs.hold_exclusive()?)
            };
            // One budget for both, the most recently used entries of
            // either kept first (as the worker's --cache-max-size).
            let (blob_budget, compiled_budget) = match p.max_size {
                Some(max) => {
                    let (b, c) = stepbox::engine::split_budget(
                        max,
                        blobs.entries().iter().map(|e| (e.bytes, e.last_used)),
                        compiled.entries().iter().map(|e| (e.bytes, e.last_used)),
                    );
                    (Some(b), Some(c))
                }
                None => (None, None),
            };
            let done = blobs.collect(&stepbox_oci::Collect {
                max_bytes: blob_budget,
                unused_for: p.unused_for,
                in_use: Default::default(),
                dry_run: p.dry_run,
            })?;
            for e in &done.removed {
                println!(
                    "{verb} {} ({}, last used {})",
                    e.digest,
                    format_bytes(e.bytes),
                    ago(e.last_used)
                );
            }
            println!(
                "blob cache {}: {verb} {} entries and {} stale temporary files, {} freed, {} left",
                blobs.root().display(),
                done.removed.len(),
                done.stale_temp,
                format_bytes(done.bytes_freed),
                format_bytes(done.bytes_left)
            );
            let done = compiled.collect(&stepbox::engine::Collect {
                max_bytes: compiled_budget,
                unused_for: p.unused_for,
                dry_run: p.dry_run,
            })?;
            for e in &done.removed {
                println!(
                    "{verb} {} ({}, last used {})",
                    e.path.display(),
                    format_bytes(e.bytes),
                    ago(e.last_used)
                );
            }
            println!(
                "compile cache {}: {verb} {} entries and {} stale temporary files, {} freed, {} left",
                compiled.dir().display(),
                done.removed.len(),
                done.stale_temp,
                format_bytes(done.bytes_freed),
                format_bytes(done.bytes_left)
            );
        }
    }
    Ok(0)
}

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

/// `name dir: N entries, BYTES, oldest use AGO` of a cache whose entries
/// are `(bytes, last used)`, least recently used first.
fn summary(name: &str, dir: &std::path::Path, entries: &[(u64, SystemTime)]) {
    let bytes: u64 = entries.iter().map(|(b, _)| b).sum();
    let oldest = entries
        .first()
        .map_or_else(String::new, |(_, t)| format!(", oldest use {}", ago(*t)));
    println!(
        "{name} {}: {} entries, {}{oldest}",
        dir.display(),
        entries.len(),
        format_bytes(bytes)
    );
}

/// What a prune did to one cache (or, dry, would do).
struct Pruned<'a> {
    cache: &'a str,
    dir: &'a std::path::Path,
    /// Each entry removed: its name, bytes and last use.
    removed: Vec<(String, u64, SystemTime)>,
    stale_temp: usize,
    freed: u64,
    left: u64,
}

impl Pruned<'_> {
    /// A line per entry removed, then the cache's totals.
    fn print(&self, verb: &str) {
        for (name, bytes, last_used) in &self.removed {
            println!(
                "{verb} {name} ({}, last used {})",
                format_bytes(*bytes),
                ago(*last_used)
            );
        }
        println!(
            "{} {}: {verb} {} entries and {} stale temporary files, {} freed, {} left",
            self.cache,
            self.dir.display(),
            self.removed.len(),
            self.stale_temp,
            format_bytes(self.freed),
            format_bytes(self.left)
        );
    }
}

/// `stepbox cache`.
pub fn cache(args: CacheCommand) -> Result<u8> {
    let (blobs, compiled) = args.caches();
    match &args.action {
        CacheAction::Ls => {
            summary(
                "blob cache",
                blobs.root(),
                &blobs
                    .entries()
                    .iter()
                    .map(|e| (e.bytes, e.last_used))
                    .collect::<Vec<_>>(),
            );
            summary(
                "compile cache",
                compiled.dir(),
                &compiled
                    .entries()
                    .iter()
                    .map(|e| (e.bytes, e.last_used))
                    .collect::<Vec<_>>(),
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
            Pruned {
                cache: "blob cache",
                dir: blobs.root(),
                removed: done
                    .removed
                    .iter()
                    .map(|e| (e.digest.clone(), e.bytes, e.last_used))
                    .collect(),
                stale_temp: done.stale_temp,
                freed: done.bytes_freed,
                left: done.bytes_left,
            }
            .print(verb);
            let done = compiled.collect(&stepbox::engine::Collect {
                max_bytes: compiled_budget,
                unused_for: p.unused_for,
                dry_run: p.dry_run,
            })?;
            Pruned {
                cache: "compile cache",
                dir: compiled.dir(),
                removed: done
                    .removed
                    .iter()
                    .map(|e| (e.path.display().to_string(), e.bytes, e.last_used))
                    .collect(),
                stale_temp: done.stale_temp,
                freed: done.bytes_freed,
                left: done.bytes_left,
            }
            .print(verb);
        }
    }
    Ok(0)
}

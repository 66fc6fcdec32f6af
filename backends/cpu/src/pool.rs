//! The backend's own worker threads. A backend is a shared library with its
//! own copy of rayon, so it keeps its own pool: `configure` rebuilds it with
//! the requested size and pins each worker to one of the given CPUs.

use std::sync::{Arc, OnceLock, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

struct PoolState {
    pool: Arc<ThreadPool>,
    threads: usize,
    pinned: bool,
}

fn state() -> &'static RwLock<Option<PoolState>> {
    static STATE: OnceLock<RwLock<Option<PoolState>>> = OnceLock::new();
    STATE.get_or_init(|| RwLock::new(None))
}

/// The CPUs this process may run on (its affinity mask): the only ids a
/// worker can be pinned to.
pub fn allowed_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Threads used when nobody configured a number.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn build(threads: usize, cpus: &[usize]) -> Result<ThreadPool, String> {
    let cpus = cpus.to_vec();
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("cpu-backend-{i}"))
        .start_handler(move |i| {
            if !cpus.is_empty() {
                let id = core_affinity::CoreId {
                    id: cpus[i % cpus.len()],
                };
                core_affinity::set_for_current(id);
            }
        })
        .build()
        .map_err(|e| format!("cannot start {threads} worker threads: {e}"))
}

/// Replaces the pool: `threads` workers (0 = every CPU), pinned round-robin to `cpus`.
pub fn configure(threads: usize, cpus: &[usize]) -> Result<(), String> {
    let threads = if threads == 0 {
        if cpus.is_empty() {
            default_threads()
        } else {
            cpus.len()
        }
    } else {
        threads
    };
    let pool = build(threads, cpus)?;
    let mut s = state()
        .write()
        .map_err(|_| "thread pool lock poisoned".to_string())?;
    *s = Some(PoolState {
        pool: Arc::new(pool),
        threads,
        pinned: !cpus.is_empty(),
    });
    Ok(())
}

/// The current pool (built with defaults on first use) and its size.
pub fn current() -> Result<(Arc<ThreadPool>, usize), String> {
    if let Some(s) = state()
        .read()
        .map_err(|_| "thread pool lock poisoned".to_string())?
        .as_ref()
    {
        return Ok((s.pool.clone(), s.threads));
    }
    configure(0, &[])?;
    current()
}

/// A description for `info`.
pub fn describe() -> (usize, bool) {
    match state()
        .read()
        .ok()
        .and_then(|s| s.as_ref().map(|s| (s.threads, s.pinned)))
    {
        Some(x) => x,
        None => (default_threads(), false),
    }
}

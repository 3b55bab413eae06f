//! The worker threads of a fetcher: one pool per nesting level, and how a
//! batch waits for them.
//!
//! Two ways of waiting for worker threads go wrong with rayon:
//!
//! - **Nesting.** A batch's workers hand their results to the calling
//!   thread, which runs the caller's callbacks. If a callback starts another
//!   batch (or a `fetch_many`) on the same fetcher, that batch cannot run on
//!   the same threads: they are all busy with the outer batch, waiting for
//!   the caller to take their results, while the caller waits for the inner
//!   batch. So a fetcher has a pool per level. A thread busy with a batch of
//!   level `n` (as its worker, as the caller reading its results, or as a
//!   task started by such a thread) starts any further batch at level
//!   `n + 1`, on a pool of that level, made on first use and kept for the
//!   fetcher's life. Each level waits only on deeper ones, so nesting never
//!   deadlocks, through other fetchers too; while an inner batch runs, the
//!   requests in flight may reach the concurrency once per level. Nesting
//!   deeper than [`MAX_LEVELS`] is refused at once rather than growing
//!   threads without end.
//! - **Other threads.** A batch's workers hold its pool's threads until the
//!   batch ends, and a fetcher is shared between threads: a batch started
//!   on another thread would queue behind them, for as long as the first
//!   batch lasts (for ever, if its consumer stops taking results). So a
//!   batch goes to the first level, from its thread's own, that no batch
//!   runs on; only when every one is taken does it share one (and waits).
//!   The hosts' limits are shared whatever the threads: two batches to one
//!   host still get its limit between them.
//! - **Waiting on a rayon worker.** A rayon worker that waits for another
//!   pool (or for a scope) keeps busy by running other jobs of its own pool
//!   on the same stack. Called from a caller's own `par_iter`, each of those
//!   jobs is another batch that waits the same way, and the stack overflows.
//!   So nothing here waits on a rayon worker: a caller that is one hands
//!   the wait to a plain thread, which blocks without stealing.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Error;

/// The deepest nesting of batches allowed (levels 0 to `MAX_LEVELS - 1`).
pub(crate) const MAX_LEVELS: usize = 8;

thread_local! {
    /// The (fetcher, level) pairs this thread is busy with: as a worker of
    /// that level's pool (for the thread's life), as the caller reading a
    /// batch of that level (while it runs), or as a task of a thread that
    /// was.
    static BUSY: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// A fetcher's worker pools.
pub(crate) struct Pools {
    /// Tells this fetcher's pools (and clones') apart from other fetchers'.
    id: usize,
    threads: usize,
    levels: Mutex<Vec<Arc<rayon::ThreadPool>>>,
    /// How many batches run on each level's pool now.
    running: Arc<Mutex<[usize; MAX_LEVELS]>>,
}

/// A pool to run one batch on, at a level.
pub(crate) struct Pool {
    pub(crate) threads: Arc<rayon::ThreadPool>,
    id: usize,
    level: usize,
    running: Arc<Mutex<[usize; MAX_LEVELS]>>,
}

/// Marks the calling thread busy with some (fetcher, level) pairs until
/// dropped.
pub(crate) struct Busy {
    entries: Vec<(usize, usize)>,
    /// The level whose count of batches it holds, if it is a batch's.
    running: Option<(Arc<Mutex<[usize; MAX_LEVELS]>>, usize)>,
}

/// What a thread was busy with when it started a batch: the batch's tasks
/// count as busy with the same, wherever they run.
#[derive(Clone)]
pub(crate) struct Inherited {
    entries: Vec<(usize, usize)>,
}

impl Pools {
    /// Pools of `threads` threads each; the first is started now, so that
    /// a fetcher that cannot start its threads fails to build.
    pub(crate) fn new(threads: usize) -> Result<Pools, Error> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        let pools = Pools {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            threads,
            levels: Mutex::new(Vec::new()),
            running: Arc::new(Mutex::new([0; MAX_LEVELS])),
        };
        pools
            .level(0)
            .map_err(|e| Error::config("cannot start the thread pool").with_source(e))?;
        Ok(pools)
    }

    /// The pool a batch started on the calling thread runs on, or why
    /// there is none (nested too deep, or its threads cannot start).
    pub(crate) fn for_this_thread(&self) -> Result<Pool, String> {
        let lowest = BUSY.with_borrow(|busy| {
            busy.iter()
                .filter(|(id, _)| *id == self.id)
                .map(|(_, level)| level + 1)
                .max()
                .unwrap_or(0)
        });
        if lowest >= MAX_LEVELS {
            return Err(format!(
                "batches nested more than {MAX_LEVELS} deep (a batch started from a \
                 callback of a batch, and so on); start the inner ones after the outer"
            ));
        }
        // The first level free of batches (another thread's may hold one);
        // if none is, the thread's own. (Two threads choosing at once may
        // take the same: one then waits for the other, as before.)
        let level = {
            let running = self.running.lock();
            (lowest..MAX_LEVELS)
                .find(|&level| running[level] == 0)
                .unwrap_or(lowest)
        };
        let threads = self
            .level(level)
            .map_err(|e| format!("cannot start the threads of a nested batch: {e}"))?;
        Ok(Pool {
            threads,
            id: self.id,
            level,
            running: Arc::clone(&self.running),
        })
    }

    /// Whether the calling thread is busy with a batch of this fetcher (as
    /// its worker, as the caller reading its results, or as a task of one).
    pub(crate) fn is_busy_here(&self) -> bool {
        BUSY.with_borrow(|busy| busy.iter().any(|(id, _)| *id == self.id))
    }

    fn level(&self, level: usize) -> Result<Arc<rayon::ThreadPool>, rayon::ThreadPoolBuildError> {
        let mut levels = self.levels.lock();
        while levels.len() <= level {
            let (id, made) = (self.id, levels.len());
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .thread_name(move |i| match made {
                    0 => format!("parfetch-{i}"),
                    _ => format!("parfetch-{made}-{i}"),
                })
                .start_handler(move |_| BUSY.with_borrow_mut(|busy| busy.push((id, made))))
                .build()?;
            levels.push(Arc::new(pool));
        }
        Ok(Arc::clone(&levels[level]))
    }
}

impl Pool {
    /// Marks the calling thread busy at this pool's level, for as long as
    /// it reads the batch's results: a batch it starts meanwhile goes one
    /// level deeper.
    /// It also counts as a batch running on the level until dropped.
    pub(crate) fn enter(&self) -> Busy {
        self.running.lock()[self.level] += 1;
        let mut busy = Busy::mark(vec![(self.id, self.level)]);
        busy.running = Some((Arc::clone(&self.running), self.level));
        busy
    }
}

impl Busy {
    fn mark(entries: Vec<(usize, usize)>) -> Busy {
        if !entries.is_empty() {
            BUSY.with_borrow_mut(|busy| busy.extend_from_slice(&entries));
        }
        Busy {
            entries,
            running: None,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some((running, level)) = self.running.take() {
            let mut running = running.lock();
            running[level] = running[level].saturating_sub(1);
        }
        if self.entries.is_empty() {
            return;
        }
        BUSY.with_borrow_mut(|busy| {
            for entry in &self.entries {
                if let Some(at) = busy.iter().rposition(|e| e == entry) {
                    busy.remove(at);
                }
            }
        });
    }
}

impl Inherited {
    /// What the calling thread is busy with now.
    pub(crate) fn here() -> Inherited {
        Inherited {
            entries: BUSY.with_borrow(Clone::clone),
        }
    }

    /// Marks the calling thread (a task's) busy with the same, until the
    /// guard drops. Costs nothing when the starting thread was idle.
    pub(crate) fn enter(&self) -> Busy {
        Busy::mark(self.entries.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_nesting_level_gets_its_own_pool() {
        let pools = Pools::new(2).unwrap();
        let outer = pools.for_this_thread().unwrap();
        assert_eq!(outer.level, 0);
        let busy = outer.enter();
        let inner = pools.for_this_thread().unwrap();
        assert_eq!(inner.level, 1);
        assert!(!Arc::ptr_eq(&outer.threads, &inner.threads));
        // Its workers start batches one level deeper still.
        let from_worker = inner
            .threads
            .install(|| pools.for_this_thread().unwrap().level);
        assert_eq!(from_worker, 2);
        // A task inherits what its starter was busy with, wherever it runs.
        let inherited = Inherited::here();
        drop(busy);
        assert_eq!(pools.for_this_thread().unwrap().level, 0);
        let in_task = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _busy = inherited.enter();
                    pools.for_this_thread().unwrap().level
                })
                .join()
                .unwrap()
        });
        assert_eq!(in_task, 1);
        // Another fetcher's pools are not this one's business.
        let other = Pools::new(1).unwrap();
        let _busy = outer.enter();
        assert_eq!(other.for_this_thread().unwrap().level, 0);
    }

    #[test]
    fn nesting_too_deep_is_refused() {
        let pools = Pools::new(1).unwrap();
        let mut guards = Vec::new();
        for level in 0..MAX_LEVELS {
            let pool = pools.for_this_thread().unwrap();
            assert_eq!(pool.level, level);
            guards.push(pool.enter());
        }
        let error = pools.for_this_thread().err().unwrap();
        assert!(error.contains("nested more than 8 deep"), "{error}");
    }
}

//! Fixed-size chunking for rayon. Work is split by a chunk size that depends only on the
//! problem shape, never on the thread count, and callers combine per-chunk results in chunk
//! order: results are identical for any `RAYON_NUM_THREADS`.

use std::cell::Cell;
use std::sync::Mutex;

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Below this many scalar operations a job runs on the calling thread (same chunks, same result).
const PARALLEL_MIN_WORK: usize = 1 << 15;
/// About this many scalars per chunk: big enough to amortise task overhead, small enough to
/// balance two to a few dozen cores.
const CHUNK_WORK: usize = 1 << 15;

/// Rows per chunk for rows of `dim` scalars.
#[inline]
pub fn rows_per_chunk(dim: usize) -> usize {
    (CHUNK_WORK / dim.max(1)).max(1)
}

/// Rows per chunk for jobs whose per-chunk results are large (a vector per chunk): fewer,
/// bigger chunks keep zeroing and combining those results cheap.
#[inline]
pub fn rows_per_large_chunk(dim: usize) -> usize {
    (LARGE_CHUNK_WORK / dim.max(1)).max(1)
}
const LARGE_CHUNK_WORK: usize = 1 << 18;

/// Which pool parallel sections run on, per process. The process that first runs gio_rs uses
/// rayon's global pool. A `fork`ed child (multiprocessing) inherits that pool's bookkeeping but
/// not its worker threads, so its first parallel job would wait forever; it gets a pool of its
/// own instead. Pools are never freed: a child must not drop a copy of its parent's pool (that
/// would signal threads `fork` did not copy).
struct Pools {
    /// The process that owns rayon's global pool.
    home: u32,
    /// This process's own pool, when it is not `home`.
    private: Option<(u32, &'static ThreadPool)>,
}

static POOLS: Mutex<Option<Pools>> = Mutex::new(None);

thread_local! {
    /// Each thread's answer from `POOLS` for one process id, so the hot path takes no lock.
    static CACHED_POOL: Cell<Option<(u32, Option<&'static ThreadPool>)>> = const { Cell::new(None) };
}

/// The pool for this process: `None` for rayon's global pool (`RAYON_NUM_THREADS` threads,
/// default one per CPU), or a pool of the same size built for a forked child.
fn pool() -> Option<&'static ThreadPool> {
    let pid = std::process::id();
    if let Some((owner, pool)) = CACHED_POOL.get() {
        if owner == pid {
            return pool;
        }
    }
    let mut slot = POOLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let pools = slot.get_or_insert(Pools {
        home: pid,
        private: None,
    });
    let pool = if pools.home == pid {
        None
    } else {
        match pools.private {
            Some((owner, pool)) if owner == pid => Some(pool),
            _ => {
                let pool: &'static ThreadPool = Box::leak(Box::new(
                    ThreadPoolBuilder::new()
                        .thread_name(|i| format!("gio_rs-{i}"))
                        .build()
                        .or_else(|_| ThreadPoolBuilder::new().num_threads(1).build())
                        .expect("a one-thread pool can always be built"),
                ));
                pools.private = Some((pid, pool));
                Some(pool)
            }
        }
    };
    CACHED_POOL.set(Some((pid, pool)));
    pool
}

/// Worker threads gio_rs uses.
pub fn num_threads() -> usize {
    pool().map_or_else(rayon::current_num_threads, ThreadPool::current_num_threads)
}

/// Runs `op` so its parallel iterators use this process's pool (see `pool`). Wrap each parallel
/// section, not a whole computation: in a child the sections run on the pool's workers, and
/// Python's Ctrl-C check only works on the caller's (main) thread.
pub fn install<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    match pool() {
        None => op(),
        Some(pool) => pool.install(op),
    }
}

/// Whether `work` scalar operations are worth spreading over threads.
#[inline]
pub fn worth_parallel(work: usize) -> bool {
    work >= PARALLEL_MIN_WORK && num_threads() > 1
}

/// Maps `items` to values, in order: on this process's pool when `work` scalar operations are
/// worth it, else on the calling thread. The one place that makes that choice.
pub fn map_in_order<S, I, R, F>(work: usize, items: S, f: F) -> Vec<R>
where
    S: IntoParallelIterator<Item = I> + IntoIterator<Item = I> + Send,
    I: Send,
    R: Send,
    F: Fn(I) -> R + Sync + Send,
{
    if worth_parallel(work) {
        install(|| items.into_par_iter().map(f).collect())
    } else {
        items.into_iter().map(f).collect()
    }
}

/// `map_in_order` over the chunks of `len` values of `data` (the last may be shorter): `f` gets
/// each chunk's index and the chunk.
pub fn map_chunks_mut<O, R, F>(work: usize, data: &mut [O], len: usize, f: F) -> Vec<R>
where
    O: Send,
    R: Send,
    F: Fn((usize, &mut [O])) -> R + Sync + Send,
{
    let len = len.max(1);
    if worth_parallel(work) {
        install(|| data.par_chunks_mut(len).enumerate().map(f).collect())
    } else {
        data.chunks_mut(len).enumerate().map(f).collect()
    }
}

/// Maps every chunk of rows (`start..end`) to a value, in chunk order.
pub fn map_row_chunks<R, F>(n_rows: usize, dim: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, usize) -> R + Sync + Send,
{
    map_row_chunks_aligned(n_rows, dim, 1, f)
}

/// `map_row_chunks` with every chunk starting at a multiple of `align` rows.
pub fn map_row_chunks_aligned<R, F>(n_rows: usize, dim: usize, align: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, usize) -> R + Sync + Send,
{
    let per = rows_per_chunk(dim).div_ceil(align) * align;
    map_in_order(n_rows * dim, 0..n_rows.div_ceil(per), |c| {
        f(c * per, ((c + 1) * per).min(n_rows))
    })
}

/// Runs `f(start, end, out_chunk)` for every chunk of `per` rows (the last may be shorter), where
/// `out_chunk` is that chunk's slice of `out` (`out_per_chunk` values per chunk); `dim` scalars
/// per row decide whether threads are worth it.
pub fn for_each_row_chunk_into<O, F>(
    n_rows: usize,
    per: usize,
    dim: usize,
    out: &mut [O],
    out_per_chunk: usize,
    f: F,
) where
    O: Send,
    F: Fn(usize, usize, &mut [O]) + Sync + Send,
{
    let out = &mut out[..n_rows.div_ceil(per) * out_per_chunk];
    map_chunks_mut(n_rows * dim, out, out_per_chunk, |(c, chunk)| {
        f(c * per, ((c + 1) * per).min(n_rows), chunk)
    });
}

/// Maps every chunk of rows to a value, in chunk order, handing each chunk its rows' part of
/// `per_row` (one entry per row) to fill.
pub fn map_row_chunks_filling<O, R, F>(per_row: &mut [O], dim: usize, f: F) -> Vec<R>
where
    O: Send,
    R: Send,
    F: Fn(usize, &mut [O]) -> R + Sync + Send,
{
    let per = rows_per_chunk(dim);
    let work = per_row.len() * dim;
    map_chunks_mut(work, per_row, per, |(c, chunk)| f(c * per, chunk))
}

//! Work spread over a fixed number of threads with results in task order, so nothing a fit or an
//! evaluation computes depends on scheduling or on the machine's core count.

use rayon::prelude::*;

/// Fixed number of contiguous chunks [`parallel_chunks`] cuts a range into, so results that
/// are added up chunk by chunk do not depend on the machine's core count.
pub const FIXED_CHUNKS: usize = 16;

/// `f` over [`FIXED_CHUNKS`] contiguous, ordered ranges covering `0..n` (some empty when `n` is
/// small), on `threads` threads; results in range order.
pub fn parallel_chunks<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    parallel_map(
        FIXED_CHUNKS,
        threads,
        |c| f(c * n / FIXED_CHUNKS..(c + 1) * n / FIXED_CHUNKS),
        &|| {},
    )
}

/// Run task `i` for every `i` in `0..n` over `threads` threads (a rayon pool of that size, each
/// task its own unit of work-stealing); results in task order. `tick` runs after each task.
pub fn parallel_map<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
    tick: &(dyn Fn() + Sync),
) -> Vec<T> {
    let run = |i: usize| {
        let v = f(i);
        tick();
        v
    };
    let threads = threads.max(1).min(n.max(1));
    let pool = (threads > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .ok()
        })
        .flatten();
    match pool {
        Some(pool) => pool.install(|| (0..n).into_par_iter().with_max_len(1).map(run).collect()),
        // one thread, or none could be started: the tasks run here, in order
        None => (0..n).map(run).collect(),
    }
}

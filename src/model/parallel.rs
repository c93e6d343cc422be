//! Work spread over a fixed number of threads with results in task order, so nothing a fit or an
//! evaluation computes depends on scheduling or on the machine's core count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// Run `tasks` closures over `threads` threads; results in task order.
pub fn parallel_map<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
    tick: &(dyn Fn() + Sync),
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let v = f(i);
                out.lock().expect("no poisoned lock")[i] = Some(v);
                tick();
            });
        }
    });
    out.into_inner()
        .expect("no poisoned lock")
        .into_iter()
        .map(|v| v.expect("every task ran"))
        .collect()
}

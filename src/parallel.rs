//! One way to run a function over items on a few threads: observe reads
//! domains four at a time, rendering renders machines on every core.

/// `read` of each item, at most `in_flight` at a time on scoped threads,
/// in the items' order. Libvirt connections take calls from several threads; a pool of
/// connections can feed the same function one connection per thread.
pub fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    in_flight: usize,
    read: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else { break done };
            done.push((i, read(item)));
        }
    };
    let threads = in_flight.clamp(1, items.len().max(1));
    let mut results: Vec<(usize, R)> = if threads == 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_parallel_keeps_the_order_and_bounds_the_reads_in_flight() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let items: Vec<usize> = (0..40).collect();
        let doubled = in_parallel(&items, 4, |i| {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(running, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            now.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(doubled, (0..40).map(|i| i * 2).collect::<Vec<_>>());
        assert!((2..=4).contains(&most.load(Ordering::SeqCst)), "{most:?}");
        assert!(in_parallel(&[] as &[usize], 4, |i| *i).is_empty());
    }
}

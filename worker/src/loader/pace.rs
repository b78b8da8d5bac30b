//! Pacing one streamed file: which progress events are posted ([`ProgressThrottle`]) and how
//! many bytes each read of the body waits for ([`ReadPacer`]).

/// Progress events of one file: at most one per `interval_ms`, and at the end exactly one at
/// 100% (`loaded` = `total`), unless the last throttled event said exactly that already.
#[derive(Debug)]
pub struct ProgressThrottle {
    interval_ms: f64,
    last_ms: Option<f64>,
    /// What the last event said: `(loaded, total)`.
    last: Option<(u64, Option<u64>)>,
}

impl ProgressThrottle {
    pub fn new(interval_ms: f64) -> Self {
        ProgressThrottle { interval_ms, last_ms: None, last: None }
    }

    /// The event to post now, as `(loaded, total)`, if one is due. `finished` says the file
    /// ended: its event reports `total` = `loaded` when the size was unknown.
    pub fn next(&mut self, now_ms: f64, loaded: u64, total: Option<u64>, finished: bool) -> Option<(u64, Option<u64>)> {
        let event = if finished { (loaded, Some(total.unwrap_or(loaded))) } else { (loaded, total) };
        let due = match self.last_ms {
            _ if finished => self.last != Some(event),
            None => true,
            Some(last) => now_ms - last >= self.interval_ms,
        };
        if !due {
            return None;
        }
        self.last_ms = Some(now_ms);
        self.last = Some(event);
        Some(event)
    }
}

/// How many bytes each read of a body waits for (a BYOB read's `min`), so that reads take about
/// `target_ms`: twice as many as the read before waited for, but no more than arrived in
/// `target_ms` at that read's rate; at least 1, at most `most`. A fast body is read in few large
/// reads — the worker wakes once per `most` bytes, not once per few kilobytes that happen to be
/// in the network pipe — while a slow one still hands over its bytes (and progress) about every
/// `target_ms`. The doubling keeps a read that found bytes piled up (answered at once, at a rate
/// that means nothing) from making the next one wait for far more than the link delivers.
#[derive(Debug)]
pub struct ReadPacer {
    target_ms: f64,
    most: u32,
    min: u32,
}

impl ReadPacer {
    /// The first read takes what there is.
    pub fn new(target_ms: f64, most: u32) -> Self {
        ReadPacer { target_ms, most, min: 1 }
    }

    /// Bytes the next read waits for.
    pub fn min(&self) -> u32 {
        self.min
    }

    /// The last read brought `bytes` in `ms`.
    pub fn record(&mut self, bytes: u64, ms: f64) {
        let per_ms = if ms > 0.0 { bytes as f64 / ms } else { f64::INFINITY };
        let next = (per_ms * self.target_ms).min(2.0 * f64::from(self.min));
        self.min = next.clamp(1.0, f64::from(self.most)) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_and_ends_with_one_event_at_100_percent() {
        let mut t = ProgressThrottle::new(50.0);
        assert_eq!(t.next(0.0, 0, None, false), Some((0, None)));
        assert_eq!(t.next(10.0, 10, Some(100), false), None);
        assert_eq!(t.next(60.0, 50, Some(100), false), Some((50, Some(100))));
        assert_eq!(t.next(70.0, 100, Some(100), false), None);
        assert_eq!(t.next(71.0, 100, Some(100), true), Some((100, Some(100))));
    }

    #[test]
    fn a_throttled_event_at_100_percent_is_not_repeated_at_the_end() {
        let mut t = ProgressThrottle::new(50.0);
        assert_eq!(t.next(0.0, 0, Some(100), false), Some((0, Some(100))));
        assert_eq!(t.next(60.0, 100, Some(100), false), Some((100, Some(100))));
        assert_eq!(t.next(61.0, 100, Some(100), true), None);
    }

    #[test]
    fn the_end_of_a_file_of_unknown_size_reports_its_size() {
        let mut t = ProgressThrottle::new(50.0);
        assert_eq!(t.next(0.0, 0, None, false), Some((0, None)));
        assert_eq!(t.next(60.0, 7, None, false), Some((7, None)));
        assert_eq!(t.next(61.0, 7, None, true), Some((7, Some(7))));
        let mut empty = ProgressThrottle::new(50.0);
        assert_eq!(empty.next(0.0, 0, None, false), Some((0, None)));
        assert_eq!(empty.next(1.0, 0, None, true), Some((0, Some(0))));
    }

    #[test]
    fn reads_grow_to_the_most_on_a_fast_body() {
        let mut p = ReadPacer::new(20.0, 1 << 20);
        assert_eq!(p.min(), 1);
        // 100 kB at once (piled up in the pipe), then 1 MB/ms: doubling, up to the most.
        p.record(100_000, 0.0);
        assert_eq!(p.min(), 2);
        for _ in 0..30 {
            let min = p.min();
            p.record(u64::from(min).max(100_000), f64::from(min) / 1e6);
        }
        assert_eq!(p.min(), 1 << 20);
    }

    #[test]
    fn reads_shrink_to_what_a_slow_body_brings_in_the_target_time() {
        let mut p = ReadPacer::new(20.0, 1 << 20);
        for _ in 0..30 {
            p.record(1 << 20, 0.5);
        }
        assert_eq!(p.min(), 1 << 20);
        p.record(1 << 20, 10_000.0); // the link slowed to 100 kB/s: 2 kB in 20 ms
        assert_eq!(p.min(), 2_097);
        p.record(16_384, 160.0); // 16 kB bursts every 160 ms
        assert_eq!(p.min(), 2_048);
        p.record(0, 30.0);
        assert_eq!(p.min(), 1);
    }
}

//! A log-linear latency histogram in microseconds (32 steps per power of two, about 3 %
//! resolution): fixed size, so recording costs one increment whatever the run's length.

const STEPS: u32 = 32;
const BUCKETS: usize = (64 * STEPS) as usize;

/// Counts of latencies by bucket.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

fn index(micros: u64) -> usize {
    if micros < u64::from(STEPS) {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros() - STEPS.trailing_zeros();
    let mantissa = (micros >> exponent) as u32;
    (exponent * STEPS + mantissa) as usize
}

fn lower_bound(index: usize) -> u64 {
    let index = index as u32;
    if index < STEPS {
        return u64::from(index);
    }
    let exponent = index / STEPS - 1;
    let mantissa = index % STEPS + STEPS;
    u64::from(mantissa) << exponent
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Records one latency.
    pub fn record(&mut self, micros: u64) {
        let slot = index(micros).min(BUCKETS - 1);
        self.counts[slot] += 1;
        self.total += 1;
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// The latency below which `quantile` of them fall (a bucket's lower bound).
    pub fn quantile(&self, quantile: f64) -> u64 {
        let wanted = ((self.total as f64) * quantile).ceil() as u64;
        let mut seen = 0;
        for (slot, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= wanted.max(1) {
                return lower_bound(slot);
            }
        }
        0
    }
}

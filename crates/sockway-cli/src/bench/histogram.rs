//! A log-linear latency histogram in the manner of HDR histograms: exact below 256 ns, then
//! 128 buckets per power of two, so any recorded value is reported within 0.4 %. Recording is
//! an index computation and an increment; merging adds the buckets.

/// Bits of precision: values below `1 << SUB_BITS` get a bucket each; above, every power of two
/// is split into `1 << (SUB_BITS - 1)` buckets.
const SUB_BITS: u32 = 8;
/// Buckets per power of two above the exact range.
const HALF: usize = 1 << (SUB_BITS - 1);
/// The largest value recorded exactly; larger ones are clamped (2^36 ns, about 68 s).
const MAX_VALUE: u64 = (1 << 36) - 1;
/// How many buckets cover `0..=MAX_VALUE`.
const BUCKETS: usize = bucket_of(MAX_VALUE) + 1;

/// The bucket that holds `value` (which must be at most [`MAX_VALUE`]).
const fn bucket_of(value: u64) -> usize {
    if value < (1 << SUB_BITS) {
        return value as usize;
    }
    let top_bit = 63 - value.leading_zeros();
    let shift = top_bit + 1 - SUB_BITS;
    // `value >> shift` lies in HALF..2*HALF, so the buckets of consecutive shifts follow each
    // other without gaps, and shift 1 starts right after the exact range.
    shift as usize * HALF + (value >> shift) as usize
}

/// The smallest and largest value that fall into bucket `index`.
fn bounds_of(index: usize) -> (u64, u64) {
    if index < (1 << SUB_BITS) {
        return (index as u64, index as u64);
    }
    let shift = index / HALF - 1;
    let mantissa = (index - shift * HALF) as u64;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// Counts of values (nanoseconds) in log-linear buckets, with exact count, sum, min and max.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u32>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram (its buckets are zeroed memory, so untouched pages cost nothing).
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value; values above about 68 s count as 68 s.
    #[inline]
    pub fn record(&mut self, value: u64) {
        let value = value.min(MAX_VALUE);
        let bucket = &mut self.counts[bucket_of(value)];
        *bucket = bucket.saturating_add(1);
        self.total += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value recorded (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean of the values recorded (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0.5 for the median, 0.999 for p99.9): the middle of the
    /// bucket that holds the `ceil(q * count)`-th smallest value, kept within min and max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                let (low, high) = bounds_of(index);
                return (low + (high - low) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        let mut previous = None;
        for value in 0..5000u64 {
            let index = bucket_of(value);
            if let Some(p) = previous {
                assert!(index == p || index == p + 1, "gap at {value}");
            }
            previous = Some(index);
        }
        for value in (0..5000u64).chain((1..36).flat_map(|s| [(1 << s) - 1, 1 << s, (1 << s) + 1]))
        {
            let (low, high) = bounds_of(bucket_of(value));
            assert!(
                low <= value && value <= high,
                "{value} not in {low}..={high}"
            );
            assert!((high - low) as f64 <= (value as f64 / 128.0).max(0.0) + 1.0);
        }
        assert_eq!(bucket_of(MAX_VALUE), BUCKETS - 1);
    }

    #[test]
    fn quantiles_match_a_uniform_distribution() {
        let mut histogram = Histogram::new();
        for value in 1..=100_000u64 {
            histogram.record(value * 10);
        }
        let close = |got: u64, want: f64| ((got as f64 - want) / want).abs() < 0.005;
        assert!(close(histogram.quantile(0.5), 500_000.0));
        assert!(close(histogram.quantile(0.99), 990_000.0));
        assert!(close(histogram.quantile(0.999), 999_000.0));
        assert_eq!(histogram.min(), 10);
        assert_eq!(histogram.max(), 1_000_000);
        assert!((histogram.mean() - 500_005.0).abs() < 1.0);
    }

    #[test]
    fn merging_adds_counts() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        a.record(100);
        b.record(1_000_000);
        b.record(u64::MAX);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.min(), 100);
        assert_eq!(a.max(), MAX_VALUE);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }
}

//! `Hist`: an HdrHistogram of microseconds that travels inside `report.json`
//! as a base64 V2-deflate string (the format of HdrHistogram's own interval
//! logs), so a saved result keeps every sample's bucket and shards add up
//! exactly; and `Summary`, the handful of figures a table shows for one.

use std::fmt;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize, Serializer};

/// The largest latency a histogram holds, one hour; larger samples are clamped.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds: 1 µs to an hour, 3 significant digits.
#[derive(Clone, PartialEq)]
pub struct Hist(Histogram<u64>);

impl Hist {
    /// An empty histogram with the kit's bounds.
    pub fn new() -> Hist {
        Hist(Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("constant bounds are valid"))
    }

    /// Records a latency, clamped into the histogram's range.
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, HIGHEST_US));
    }

    /// Adds every sample of `other`. Both have the kit's bounds (a decoded
    /// histogram out of them is refused when read), so this is exact.
    pub fn add(&mut self, other: &Hist) {
        self.0.add(&other.0).expect("two histograms with the kit's bounds always add");
    }

    /// The histogram itself, for iteration and quantiles.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Samples held.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// The histogram encoded as HdrHistogram's V2 deflate format, in base64.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&self.0, &mut bytes).expect("writing to a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reads what [`Hist::encode`] wrote, or any V2 histogram whose values fit the kit's bounds.
    pub fn decode(text: &str) -> Result<Hist, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("expected a base64 HdrHistogram, got {e}"))?;
        let read: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("expected an HdrHistogram V2 encoding: {e:?}"))?;
        let mut h = Hist::new();
        // A sample clamped to the highest value is stored as the top of its
        // bucket, a little above it: that is still in range.
        let highest = h.0.highest_equivalent(HIGHEST_US);
        if !read.is_empty() && read.max() > highest {
            return Err(format!("a histogram holds {} µs, above the kit's highest {HIGHEST_US}", read.max()));
        }
        h.0.add(&read).map_err(|e| format!("a histogram does not fit the kit's bounds: {e:?}"))?;
        Ok(h)
    }
}

impl Default for Hist {
    fn default() -> Hist {
        Hist::new()
    }
}

impl fmt::Debug for Hist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hist(n={}, p50={}, max={})", self.len(), self.quantile(0.5), self.0.max())
    }
}

impl Serialize for Hist {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Hist, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hist::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// The figures a table shows for one histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// Mean, to a tenth.
    pub mean: f64,
    /// Samples.
    pub count: u64,
}

impl Summary {
    /// The figures of `h` (all zero when it is empty).
    pub fn of(h: &Hist) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            p50: h.quantile(0.50),
            p95: h.quantile(0.95),
            p99: h.quantile(0.99),
            max: h.inner().max(),
            mean: (h.inner().mean() * 10.0).round() / 10.0,
            count: h.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_round_trips_through_its_text() {
        let mut h = Hist::new();
        for us in [1, 7, 1_000, 55_555, 3_000_000] {
            h.record(us);
        }
        let back = Hist::decode(&h.encode()).unwrap();
        assert_eq!(back, h);
        assert_eq!(Summary::of(&back), Summary::of(&h));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hist>(&json).unwrap(), h);
    }

    #[test]
    fn a_clamped_sample_survives_the_round_trip() {
        let mut h = Hist::new();
        h.record(u64::MAX);
        h.record(0);
        assert_eq!(Hist::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(Hist::decode("not base64!").unwrap_err().contains("base64"));
        assert!(Hist::decode("AAAA").unwrap_err().contains("V2"));
    }

    #[test]
    fn summaries_report_microseconds() {
        let mut h = Hist::new();
        for ms in 1..=100 {
            h.record(ms * 1_000);
        }
        let s = Summary::of(&h);
        assert_eq!(s.count, 100);
        assert!((49_900..=50_100).contains(&s.p50), "{s:?}");
        assert!((94_900..=95_100).contains(&s.p95), "{s:?}");
        assert_eq!(Summary::of(&Hist::new()), Summary::default());
    }
}

//! Per-(function, user) rate limits as token buckets.
//!
//! Each bucket is kept in its GCRA form: one "theoretical arrival time" per
//! key, which is a token bucket with `burst` tokens refilled one every
//! `interval`, stored as a single number. Time comes from the caller.

use std::collections::BTreeMap;

use syncspec_protocol::catalogue::Function;
use syncspec_protocol::wire::Ts;

/// A bucket's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Tokens the bucket holds when full.
    pub burst: u64,
    /// Nanoseconds to refill one token.
    pub interval_ns: u64,
}

impl Rate {
    /// `per_second` calls a second, with a burst of as many.
    pub const fn per_second(per_second: u64) -> Rate {
        Rate { burst: per_second, interval_ns: 1_000_000_000 / per_second }
    }

    /// Takes `n` tokens at `now` from the bucket whose theoretical arrival
    /// time is `tat` (0 for a full bucket), returning the new one, or how
    /// many nanoseconds until `n` tokens are there. More than `burst` tokens
    /// at once are never there.
    pub fn take(self, tat: Ts, now: Ts, n: u64) -> Result<Ts, u64> {
        let next = tat.max(now).saturating_add(n.saturating_mul(self.interval_ns));
        let limit = now.saturating_add(self.interval_ns.saturating_mul(self.burst));
        if next > limit {
            return Err(next - limit);
        }
        Ok(next)
    }
}

/// The catalogue's limit for high-frequency functions: 20 a second per user.
pub const HIGH_FREQUENCY: Rate = Rate::per_second(20);

/// Buckets by (function, user).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateLimiter {
    /// Invariant: every stored arrival time is later than some recent `now`;
    /// `prune` drops buckets that have refilled completely.
    tat: BTreeMap<(Function, String), Ts>,
}

impl RateLimiter {
    /// Takes a token for `(function, user)` at `now`, or says how many
    /// nanoseconds until one is available.
    pub fn try_take(&mut self, rate: Rate, function: Function, user: &str, now: Ts) -> Result<(), u64> {
        let key = (function, user.to_owned());
        let tat = rate.take(self.tat.get(&key).copied().unwrap_or(0), now, 1)?;
        self.tat.insert(key, tat);
        Ok(())
    }

    /// Forgets buckets that are full again at `now`.
    pub fn prune(&mut self, now: Ts) {
        self.tat.retain(|_, tat| *tat > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut rl = RateLimiter::default();
        let f = Function::CursorsMove;
        let accepted = (0..60).filter(|_| rl.try_take(HIGH_FREQUENCY, f, "u", 1_000).is_ok()).count();
        assert_eq!(accepted, 20);
        let wait = rl.try_take(HIGH_FREQUENCY, f, "u", 1_000).unwrap_err();
        assert_eq!(wait, 50_000_000);
        assert!(rl.try_take(HIGH_FREQUENCY, f, "u", 1_000 + wait).is_ok());
        assert!(rl.try_take(HIGH_FREQUENCY, f, "other", 1_000).is_ok());
        rl.prune(10_000_000_000);
        assert!(rl.tat.is_empty());
    }

    #[test]
    fn a_weighted_take_spends_as_many_tokens_and_never_more_than_the_burst() {
        let rate = Rate { burst: 10, interval_ns: 100 };
        let tat = rate.take(0, 1_000, 10).expect("a full bucket holds ten");
        assert_eq!(rate.take(tat, 1_000, 1), Err(100), "empty: one token in one interval");
        assert_eq!(rate.take(tat, 1_300, 4), Err(100), "three refilled, four asked");
        assert!(rate.take(tat, 1_400, 4).is_ok());
        assert!(rate.take(0, 1_000, 11).is_err(), "more than the burst is never there");
    }
}

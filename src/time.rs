//! Timestamps as coffer stores and prints them: UTC, millisecond precision,
//! RFC 3339 (`2026-01-01T00:00:00.000Z`), the same shape as the platform's
//! JSON output.

use std::fmt;
use std::str::FromStr;

/// A point in time, canonically formatted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(jiff::Timestamp);

impl Time {
    /// Returns the current time, truncated to milliseconds.
    pub fn now() -> Time {
        Time::from_timestamp(jiff::Timestamp::now())
    }

    /// Truncates a timestamp to milliseconds.
    pub fn from_timestamp(t: jiff::Timestamp) -> Time {
        let ms = t.as_millisecond();
        Time(jiff::Timestamp::from_millisecond(ms).expect("in range: came from a timestamp"))
    }

    /// Returns the underlying timestamp.
    pub fn timestamp(&self) -> jiff::Timestamp {
        self.0
    }

    /// Returns a rough, human description of how long ago this was
    /// relative to `now`: `just now`, `5 minutes ago`, `3 days ago`.
    pub fn ago(&self, now: Time) -> String {
        let secs = now.0.as_second() - self.0.as_second();
        if secs < 0 {
            return "in the future".into();
        }
        let (n, unit) = match secs {
            0..=9 => return "just now".into(),
            10..=59 => (secs, "second"),
            60..=3599 => (secs / 60, "minute"),
            3600..=86_399 => (secs / 3600, "hour"),
            86_400..=2_591_999 => (secs / 86_400, "day"),
            2_592_000..=31_535_999 => (secs / 2_592_000, "month"),
            _ => (secs / 31_536_000, "year"),
        };
        format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

impl FromStr for Time {
    type Err = String;

    /// Parses the canonical form only, so that a time always reads and
    /// writes as the same bytes (manifests are MACed over them).
    fn from_str(s: &str) -> Result<Time, String> {
        let t: jiff::Timestamp = s
            .parse()
            .map_err(|_| format!("{s:?} is not an RFC 3339 time"))?;
        let t = Time(t);
        if t.to_string() != s {
            return Err(format!(
                "{s:?} is not in canonical form (YYYY-MM-DDTHH:MM:SS.mmmZ)"
            ));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        let t: Time = "2026-01-02T03:04:05.678Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-01-02T03:04:05.678Z");
        let now = Time::now();
        assert_eq!(now.to_string().parse::<Time>().unwrap(), now);
    }

    #[test]
    fn non_canonical_times_are_refused() {
        for bad in [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.678+00:00",
            "2026-01-02 03:04:05.678Z",
            "yesterday",
        ] {
            assert!(bad.parse::<Time>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ago_reads_naturally() {
        let base: Time = "2026-01-10T00:00:00.000Z".parse().unwrap();
        let at = |s: &str| s.parse::<Time>().unwrap().ago(base);
        assert_eq!(at("2026-01-10T00:00:00.000Z"), "just now");
        assert_eq!(at("2026-01-09T23:59:00.000Z"), "1 minute ago");
        assert_eq!(at("2026-01-07T00:00:00.000Z"), "3 days ago");
        assert_eq!(at("2025-01-01T00:00:00.000Z"), "1 year ago");
    }
}

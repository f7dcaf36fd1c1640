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

impl Time {
    /// Appends the canonical form to `out` (what `Display` writes).
    pub(crate) fn push_to(&self, out: &mut Vec<u8>) {
        match self.digits() {
            Some(b) => out.extend_from_slice(&b),
            None => out.extend_from_slice(self.slow_text().as_bytes()),
        }
    }

    fn slow_text(&self) -> String {
        self.0.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// The canonical form for years 1000 to 9999, written digit by digit:
    /// manifests hold three times per secret and MACs cover them as text,
    /// and this is much faster than `strftime` (the tests check that it
    /// writes the same bytes).
    fn digits(&self) -> Option<[u8; 24]> {
        let dt = jiff::tz::Offset::UTC.to_datetime(self.0);
        if !(1000..=9999).contains(&dt.year()) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, dt.year() as u32);
        put(5, 2, dt.month() as u32);
        put(8, 2, dt.day() as u32);
        put(11, 2, dt.hour() as u32);
        put(14, 2, dt.minute() as u32);
        put(17, 2, dt.second() as u32);
        put(20, 3, dt.millisecond() as u32);
        Some(b)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.digits() {
            Some(b) => f.write_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => f.write_str(&self.slow_text()),
        }
    }
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` with a year from 1000 to 9999,
/// the form [`Time`]'s `Display` writes, or returns `None`.
fn parse_canonical(s: &str) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() != 24 {
        return None;
    }
    let num = |at: usize, width: usize| -> Option<u32> {
        b[at..at + width].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    for (at, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        if b[at] != sep {
            return None;
        }
    }
    let year = num(0, 4)?;
    if year < 1000 {
        return None;
    }
    let dt = jiff::civil::DateTime::new(
        year as i16,
        num(5, 2)? as i8,
        num(8, 2)? as i8,
        num(11, 2)? as i8,
        num(14, 2)? as i8,
        num(17, 2)? as i8,
        num(20, 3)? as i32 * 1_000_000,
    )
    .ok()?;
    jiff::tz::Offset::UTC.to_timestamp(dt).ok().map(Time)
}

impl FromStr for Time {
    type Err = String;

    /// Parses the canonical form only, so that a time always reads and
    /// writes as the same bytes (manifests are MACed over them).
    fn from_str(s: &str) -> Result<Time, String> {
        if let Some(t) = parse_canonical(s) {
            return Ok(t);
        }
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
    fn fast_paths_agree_with_jiff() {
        let slow = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let (first, last) = (-30_610_224_000_000i64, 253_402_207_200_000i64);
        let mut samples = vec![first - 1, first, -1, 0, 951_782_400_000, 4_107_456_000_000];
        samples.extend([last - 1, last, last + 1]);
        samples.extend((0..20_000).map(|i| first + i * ((last - first) / 20_000) + i * 7919));
        for ms in samples {
            let Ok(t) = jiff::Timestamp::from_millisecond(ms).map(Time) else {
                continue;
            };
            let text = slow(t.0);
            assert_eq!(t.to_string(), text, "{ms}");
            assert_eq!(text.parse::<Time>(), Ok(t), "{text}");
        }
        for odd in [
            "2026-02-29T00:00:00.000Z",
            "2024-02-30T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-12-31T23:59:60.000Z",
            "0999-01-01T00:00:00.000Z",
            "2100-02-29T00:00:00.000Z",
            "2026-04-31T00:00:00.000Z",
            "2026-00-10T00:00:00.000Z",
            "2026-01-00T00:00:00.000Z",
            "+2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00.000z",
        ] {
            assert_eq!(parse_canonical(odd), None, "{odd}");
            let slow_path = odd
                .parse::<jiff::Timestamp>()
                .ok()
                .filter(|t| slow(*t) == odd)
                .map(Time);
            assert_eq!(odd.parse::<Time>().ok(), slow_path, "{odd}");
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

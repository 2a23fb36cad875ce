//! Durations written the way Go writes them (`168h`, `1h30m`, `500ms`, `1.5h`).
//!
//! distribution reads durations with Go's `time.ParseDuration`, so its
//! configuration files use that syntax. [`parse_duration`] accepts the same
//! strings, except negative ones, which no key here allows. [`format_duration`]
//! prints a duration the way Go's `Duration.String` does, so a configuration
//! shown back to the operator looks like what they would write.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a Go duration string: a sequence of decimal numbers, each with an
/// optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such as
/// `168h`, `1h30m`, `10s`, `500ms` or `1.5h`. A bare `0` is zero.
///
/// # Errors
/// Returns a message naming the problem when the string is empty, negative,
/// lacks a unit, uses an unknown unit, or does not fit in a `Duration`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let original = s;
    let mut rest = s.trim();
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    } else if let Some(magnitude) = rest.strip_prefix('-') {
        if !magnitude.is_empty() && magnitude.chars().all(|c| c == '0' || c == '.') {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "invalid duration `{original}`: negative durations are not allowed"
        ));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration `{original}`: it is empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!(
                "invalid duration `{original}`: expected a number such as `10s` or `1h30m`"
            ));
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "invalid duration `{original}`: missing unit (use ns, us, ms, s, m or h)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{original}`: unknown unit `{other}` (use ns, us, ms, s, m or h)"
                ));
            }
        };
        let overflow = || format!("invalid duration `{original}`: too large");
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut value = whole.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // The fraction contributes at most one unit; digits past nanosecond
        // precision are dropped, as Go does.
        let mut scale = unit_nanos;
        for digit in frac_part.bytes().take(30) {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        rest = after_unit;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC)
        .map_err(|_| format!("invalid duration `{original}`: too large"))?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go's `Duration.String` does: `168h0m0s`,
/// `1h30m0s`, `10s`, `1.5s`, `500ms`, `0s`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < NANOS_PER_SEC {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let secs = d.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let secs_text = fraction(
        u128::from(seconds) * NANOS_PER_SEC + u128::from(d.subsec_nanos()),
        NANOS_PER_SEC,
    );
    if hours > 0 {
        format!("{hours}h{minutes}m{secs_text}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs_text}s")
    } else {
        format!("{secs_text}s")
    }
}

/// `value / unit` as a decimal with trailing zeros removed.
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rem = value % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Serde support: a `Duration` as a Go duration string. Deserializing also
/// accepts an integer number of nanoseconds, as Go's YAML decoder does.
pub(crate) mod go {
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use std::fmt;
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as `10s` or `1h30m`")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse_duration(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_nanos(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_nanos)
                .map_err(|_| E::custom("negative durations are not allowed"))
        }
    }

    /// The same, for `Option<Duration>`.
    pub(crate) mod opt {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] Duration);

        // serde's `with` passes `&Option<T>`, so the reference cannot be avoided.
        #[expect(clippy::ref_option, reason = "signature required by serde(with)")]
        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("168h", 168 * 3600 * 1000),
            ("24h", 24 * 3600 * 1000),
            ("1h30m", 90 * 60 * 1000),
            ("10s", 10_000),
            ("500ms", 500),
            ("1.5h", 90 * 60 * 1000),
            ("0", 0),
            ("0s", 0),
            (".5s", 500),
            ("1m0.25s", 60_250),
            ("+3s", 3000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("300us"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_duration("300µs"), Ok(Duration::from_micros(300)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("1.0000000001s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in [
            "",
            "10",
            "1x",
            "h",
            "-1s",
            "1h-3m",
            ".s",
            "1..5s",
            "99999999999999999999h",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(
            parse_duration("5d")
                .unwrap_err()
                .contains("unknown unit `d`")
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::from_secs(168 * 3600)), "168h0m0s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(format_duration(Duration::from_nanos(15)), "15ns");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for d in ["168h0m0s", "1h30m0s", "2m3.5s", "250ms"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }
}

//! The two time forms the inputs carry: RFC 3339 text (the event log) and nanoseconds since the
//! Unix epoch (OTLP). Both become nanoseconds, so the earliest event of a conversation can be
//! found whatever form and offset it was written in.

use regex::Regex;
use std::sync::OnceLock;

fn rfc3339() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$",
        )
        .expect("valid regex")
    })
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time (`2026-03-02T10:14:03Z`,
/// `2026-03-02T11:14:03.5+01:00`), or `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let c = rfc3339().captures(s)?;
    let num = |i: usize| c.get(i).map_or(0, |m| m.as_str().parse::<i64>().unwrap_or(0));
    let (y, mo, d, h, mi, sec) = (num(1), num(2), num(3), num(4), num(5), num(6));
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let frac = c.get(7).map_or(0i128, |m| {
        let digits: String = m.as_str().chars().chain(std::iter::repeat('0')).take(9).collect();
        digits.parse::<i128>().unwrap_or(0)
    });
    let offset_secs = match c.get(9) {
        Some(sign) => {
            let (oh, om) = (num(10), num(11));
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign.as_str() == "-" { -o } else { o }
        }
        None => 0,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + frac)
}

/// `2026-03-02T10:14:03.123Z` (UTC, milliseconds).
pub fn format_nanos(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let millis = nanos.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400) as i64;
    let rem = secs.rem_euclid(86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_nanoseconds_whatever_their_offset() {
        let z = parse_rfc3339("2026-03-02T10:14:03Z").unwrap();
        assert_eq!(z, 1_772_446_443_000_000_000);
        assert_eq!(parse_rfc3339("2026-03-02T11:14:03+01:00"), Some(z));
        assert_eq!(parse_rfc3339("2026-03-02T10:14:03.5Z"), Some(z + 500_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        for bad in ["2026-02-30T10:00:00Z", "2026-03-02 10:14", "yesterday", "2026-13-01T00:00:00Z", ""] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn nanoseconds_are_written_as_utc_with_milliseconds() {
        assert_eq!(format_nanos(1_772_446_443_123_456_789), "2026-03-02T10:14:03.123Z");
        assert_eq!(format_nanos(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_nanos(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    }
}

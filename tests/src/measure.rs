// SPDX-License-Identifier: MPL-2.0
//! Reading what benchmark runs in the lab leave behind: the bench's rusage lines, our
//! decoder's "in flight" TRACE lines, strace summaries; medians and means.

/// The maximum (requests queued, pictures not pushed) over the decoder's TRACE lines
/// `in flight: N requests queued, M pictures not pushed`; `None` without any.
pub fn max_in_flight(log: &str) -> Option<(u32, u32)> {
    log.lines()
        .filter_map(|line| {
            let rest = line.split_once("in flight: ")?.1;
            let (requests, rest) = rest.split_once(" requests queued, ")?;
            let (pictures, _) = rest.split_once(" pictures not pushed")?;
            Some((requests.parse::<u32>().ok()?, pictures.parse::<u32>().ok()?))
        })
        .reduce(|(a, b), (c, d)| (a.max(c), b.max(d)))
}

/// (user, sys) seconds from a line `USER SYS` (decimal seconds, as the lab benchmark's
/// rusage wrapper writes them).
pub fn parse_rusage(text: &str) -> Option<(f64, f64)> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let user = fields.next()?.ok()?;
    let sys = fields.next()?.ok()?;
    fields.next().is_none().then_some((user, sys))
}

/// Geometric mean of positive values; `None` when empty or any value is not positive.
pub fn geometric_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

/// Calls per syscall from an `strace -c` summary (the `total` row included); `None` when
/// the text has no `total` row.
pub fn parse_strace_summary(text: &str) -> Option<std::collections::BTreeMap<String, u64>> {
    let calls: std::collections::BTreeMap<String, u64> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors], syscall
            if !(5..=6).contains(&fields.len()) {
                return None;
            }
            Some((fields.last()?.to_string(), fields[3].parse().ok()?))
        })
        .collect();
    calls.contains_key("total").then_some(calls)
}

/// The median; `None` for no values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_takes_each_maximum() {
        let log = "\
0:00:01.0 12 0x1 TRACE v4l2statelessdec imp.rs:400:handle_frame:<d> in flight: 1 requests queued, 1 pictures not pushed
0:00:01.1 12 0x1 TRACE v4l2statelessdec imp.rs:383:handle_frame:<d> hidden frame 3
0:00:01.2 12 0x1 TRACE v4l2statelessdec imp.rs:400:handle_frame:<d> in flight: 3 requests queued, 2 pictures not pushed
0:00:01.3 12 0x1 TRACE v4l2statelessdec imp.rs:400:handle_frame:<d> in flight: 2 requests queued, 3 pictures not pushed
";
        assert_eq!(max_in_flight(log), Some((3, 3)));
        assert_eq!(max_in_flight("nothing here\n"), None);
    }

    #[test]
    fn rusage_reads_two_decimal_fields() {
        assert_eq!(parse_rusage("1.250000 0.031000\n"), Some((1.25, 0.031)));
        assert_eq!(parse_rusage("1.25\n"), None);
        assert_eq!(parse_rusage("1 2 3"), None);
        assert_eq!(parse_rusage("a b"), None);
    }

    #[test]
    fn geometric_mean_of_ratios() {
        let mean = geometric_mean(&[0.5, 2.0, 1.0]).unwrap();
        assert!((mean - 1.0).abs() < 1e-12);
        assert!((geometric_mean(&[4.0, 1.0]).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(geometric_mean(&[]), None);
        assert_eq!(geometric_mean(&[1.0, 0.0]), None);
        assert_eq!(geometric_mean(&[1.0, -2.0]), None);
    }

    #[test]
    fn strace_summary_counts_calls() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 57.06    0.000093          11       812           ioctl
 19.63    0.000032          10         3         1 openat
------ ----------- ----------- --------- --------- ----------------
100.00    0.000163           5       815         1 total
";
        let calls = parse_strace_summary(text).unwrap();
        assert_eq!(calls["ioctl"], 812);
        assert_eq!(calls["openat"], 3);
        assert_eq!(calls["total"], 815);
        assert_eq!(calls.len(), 3);
        assert_eq!(parse_strace_summary("garbage\n"), None);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Reading what benchmark runs in the lab leave behind: bash's `times`, our decoder's
//! "in flight" TRACE lines, and medians.

/// (user, sys) seconds of the waited-for children, from bash's `times` output: its second
/// line, e.g. `0m1.234s 0m0.056s` (the first line is the shell's own).
pub fn parse_times(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().nth(1)?;
    let mut fields = line.split_whitespace().map(|field| {
        let (min, sec) = field.strip_suffix('s')?.split_once('m')?;
        Some(min.parse::<f64>().ok()? * 60.0 + sec.parse::<f64>().ok()?)
    });
    Some((fields.next()??, fields.next()??))
}

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
    fn times_reads_the_children_line() {
        let text = "0m0.010s 0m0.020s\n1m2.500s 0m0.125s\n";
        assert_eq!(parse_times(text), Some((62.5, 0.125)));
        assert_eq!(parse_times("0m0.010s 0m0.020s\n"), None);
        assert_eq!(parse_times("x\n1.5 2.5\n"), None);
    }

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
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }
}

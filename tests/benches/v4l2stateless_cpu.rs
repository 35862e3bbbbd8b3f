// SPDX-License-Identifier: MPL-2.0
//! CPU benchmark of `gst-plugin-v4l2stateless`'s decoders against GStreamer's C
//! `v4l2sl*dec` (Debian's v4l2codecs), both on visl in the VM lab, in one boot.
//!
//! ```sh
//! cargo build --release -p gst-plugin-v4l2stateless
//! cargo bench -p mediapass-tests --bench v4l2stateless_cpu
//! ```
//!
//! For every stream of mediapass's generated Fluster suites (the same files the Fluster
//! tests use) and every codec our plugin implements, three `gst-launch-1.0` pipelines
//! run, interleaved, `MEDIAPASS_BENCH_REPS` times (default 5):
//!
//! * baseline: `filesrc ! PARSE ! fakesink` (process start, registry, file, parser, sink),
//! * C:        `filesrc ! PARSE ! v4l2sl<codec>dec ! video/x-raw ! fakesink`,
//! * ours:     `filesrc ! PARSE ! v4l2stateless<codec>dec ! video/x-raw ! fakesink`.
//!
//! CPU time is the pipeline process's own rusage (bash's `times` in a subshell: the
//! user and system time of its waited-for children). The table reports the median
//! over the repetitions, minus the baseline's median, per output frame. visl decodes
//! nothing (its work is in a kernel worker, not in these processes), so the user time
//! is the decoder element's own: parsing, controls, ioctls and the picture copy.
//!
//! Then frames in flight: ours with `render-delay` 0, 1, 2 and our TRACE line
//! "in flight: N requests queued, M pictures not pushed" after each decode; the table
//! gives the maximum of each, and the frames output (checksumsink) against the C
//! decoder's and the software decoder's counts.
//!
//! The guest is QEMU TCG: absolute times are those of an emulated CPU, several times
//! slower than the host; the ratio between two decoders on the same streams in the same
//! boot is the meaningful number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mediapass_tests::fluster::{Suite, Vector};
use mediapass_tests::measure::{max_in_flight, median, parse_times};
use mediapass_tests::v4l2stateless::{Codec, implemented_codecs};
use mediapass_tests::vmlab::{Lab, LabCommand};
use mediapass_tests::{built_plugin, plugin_dir};

const SIDES: &[&str] = &["base", "c", "ours"];
const RENDER_DELAYS: &[u32] = &[0, 1, 2];

fn main() {
    let reps: usize = std::env::var("MEDIAPASS_BENCH_REPS")
        .ok()
        .map(|v| v.parse().expect("MEDIAPASS_BENCH_REPS is a number"))
        .unwrap_or(5);
    assert!(reps >= 1, "MEDIAPASS_BENCH_REPS must be at least 1");
    built_plugin("libgstv4l2stateless.so");
    let codecs = implemented_codecs();
    assert!(
        !codecs.is_empty(),
        "our plugin registers no decoder element"
    );
    let keys: Vec<&str> = codecs.iter().map(|c| c.key).collect();
    let suite =
        Suite::generate(&plugin_dir().join("bench-suite"), &keys).unwrap_or_else(|e| panic!("{e}"));

    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-bench").unwrap();
    let script = guest_script(&suite.vectors, &results, reps);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "booting the lab: {} streams ({}), {reps} repetitions, host load {}",
        suite.vectors.len(),
        keys.join(", "),
        load.trim()
    );
    let started = std::time::Instant::now();
    let out = lab
        .run(
            &LabCommand::shell(&script)
                .rw_dir(&results)
                .timeout(std::time::Duration::from_secs(3600)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
    let wall = started.elapsed();

    println!(
        "\nCPU time per frame, userspace (user) and kernel (sys), median of {reps} runs minus \
         the parse-only baseline; visl in the VM lab (QEMU TCG)\n"
    );
    println!("{}", cpu_table(&suite.vectors, &results, reps));
    println!("\nFrames in flight (ours), maximum over the stream, and frames output\n");
    println!("{}", in_flight_table(&suite.vectors, &results));
    println!(
        "\nlab run: {:.0} s wall (boot included); host load before: {}",
        wall.as_secs_f64(),
        load.trim()
    );
}

fn codec_of(vector: &Vector) -> &'static Codec {
    Codec::by_key(&vector.codec).unwrap_or_else(|| panic!("unknown codec {}", vector.codec))
}

fn pipeline(vector: &Vector, side: &str, extra: &str, sink: &str) -> String {
    let codec = codec_of(vector);
    let decoder = match side {
        "base" => String::new(),
        "c" => format!("! {} {extra} ! video/x-raw ", codec.c),
        _ => format!("! {} {extra} ! video/x-raw ", codec.ours),
    };
    format!(
        "gst-launch-1.0 -q --no-fault filesrc location={} ! {} {decoder}! {sink}",
        vector.path.display(),
        codec.parse
    )
}

fn guest_script(vectors: &[Vector], dir: &Path, reps: usize) -> String {
    let mut script = String::from("set -u\n");
    // One warm-up run so the first measured one does not pay for cold caches.
    if let Some(v) = vectors.first() {
        script.push_str(&format!(
            "{} >/dev/null 2>&1\n",
            pipeline(v, "ours", "", "fakesink")
        ));
    }
    for rep in 0..reps {
        for vector in vectors {
            for side in SIDES {
                let base = dir.join(format!("{}.{side}.{rep}", vector.name));
                script.push_str(&format!(
                    "( timeout 300 {cmd} >/dev/null 2>{base}.stderr; echo $? >{base}.status; \
                     times >{base}.times )\n",
                    cmd = pipeline(vector, side, "", "fakesink"),
                    base = base.display()
                ));
            }
        }
    }
    for vector in vectors {
        let base = dir.join(format!("{}.c.frames", vector.name));
        script.push_str(&format!(
            "timeout 300 {cmd} >{base}.checksums 2>{base}.stderr; echo $? >{base}.status\n",
            cmd = pipeline(vector, "c", "", "checksumsink"),
            base = base.display()
        ));
        for delay in RENDER_DELAYS {
            let base = dir.join(format!("{}.rd{delay}", vector.name));
            script.push_str(&format!(
                "GST_DEBUG=v4l2statelessdec:7 GST_DEBUG_NO_COLOR=1 GST_DEBUG_FILE={base}.log \
                 timeout 300 {cmd} >{base}.checksums 2>{base}.stderr; echo $? >{base}.status\n",
                cmd = pipeline(
                    vector,
                    "ours",
                    &format!("render-delay={delay}"),
                    "checksumsink"
                ),
                base = base.display()
            ));
        }
    }
    script
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks a run's exit status file; panics with its stderr when it failed.
fn check_status(base: &Path) {
    let status = read(&with_ext(base, "status"));
    assert_eq!(
        status.trim(),
        "0",
        "{} failed:\n{}",
        base.display(),
        read(&with_ext(base, "stderr"))
    );
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn cpu_table(vectors: &[Vector], dir: &Path, reps: usize) -> String {
    let mut rows = vec![format!(
        "{:<22} {:>6} {:>9} {:>9} {:>9} {:>11} {:>11} {:>7} {:>10} {:>10}",
        "stream",
        "frames",
        "base ms",
        "C ms",
        "ours ms",
        "C us/frm",
        "ours us/frm",
        "ours/C",
        "C sys/frm",
        "ours sys/frm"
    )];
    let mut totals: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut total_frames = 0u32;
    for vector in vectors {
        let mut medians = BTreeMap::new();
        for side in SIDES {
            let (users, systems): (Vec<f64>, Vec<f64>) = (0..reps)
                .map(|rep| {
                    let base = dir.join(format!("{}.{side}.{rep}", vector.name));
                    check_status(&base);
                    let times = read(&with_ext(&base, "times"));
                    parse_times(&times).unwrap_or_else(|| {
                        panic!("{}: bad `times` output {times:?}", base.display())
                    })
                })
                .unzip();
            medians.insert(
                *side,
                (
                    median(users).expect("reps >= 1"),
                    median(systems).expect("reps >= 1"),
                ),
            );
        }
        let frames = f64::from(vector.frames);
        let per_frame = |side: &str| {
            let (user, sys) = medians[side];
            let (base_user, base_sys) = medians["base"];
            (
                (user - base_user) / frames * 1e6,
                (sys - base_sys) / frames * 1e6,
            )
        };
        let (c_user, c_sys) = per_frame("c");
        let (our_user, our_sys) = per_frame("ours");
        for side in ["c", "ours"] {
            let entry = totals.entry(side).or_default();
            entry.0 += medians[side].0 - medians["base"].0;
            entry.1 += medians[side].1 - medians["base"].1;
        }
        total_frames += vector.frames;
        rows.push(format!(
            "{:<22} {:>6} {:>9.0} {:>9.0} {:>9.0} {:>11.0} {:>11.0} {:>7.2} {:>10.0} {:>10.0}",
            vector.name,
            vector.frames,
            medians["base"].0 * 1e3,
            medians["c"].0 * 1e3,
            medians["ours"].0 * 1e3,
            c_user,
            our_user,
            our_user / c_user,
            c_sys,
            our_sys
        ));
    }
    let frames = f64::from(total_frames);
    let (c_user, c_sys) = totals["c"];
    let (our_user, our_sys) = totals["ours"];
    rows.push(format!(
        "{:<22} {:>6} {:>9} {:>9} {:>9} {:>11.0} {:>11.0} {:>7.2} {:>10.0} {:>10.0}",
        "all streams",
        total_frames,
        "",
        "",
        "",
        c_user / frames * 1e6,
        our_user / frames * 1e6,
        our_user / c_user,
        c_sys / frames * 1e6,
        our_sys / frames * 1e6
    ));
    rows.join("\n")
}

fn in_flight_table(vectors: &[Vector], dir: &Path) -> String {
    let mut header = format!("{:<22} {:>8} {:>8}", "stream", "sw out", "C out");
    for delay in RENDER_DELAYS {
        header.push_str(&format!(" {:>20}", format!("rd={delay}: req/pic/out")));
    }
    let mut rows = vec![header];
    for vector in vectors {
        let c = dir.join(format!("{}.c.frames", vector.name));
        check_status(&c);
        let c_out = read(&with_ext(&c, "checksums")).lines().count();
        let mut row = format!("{:<22} {:>8} {:>8}", vector.name, vector.frames, c_out);
        for delay in RENDER_DELAYS {
            let base = dir.join(format!("{}.rd{delay}", vector.name));
            check_status(&base);
            let out = read(&with_ext(&base, "checksums")).lines().count();
            let (requests, pictures) = max_in_flight(&read(&with_ext(&base, "log")))
                .unwrap_or_else(|| panic!("no 'in flight' line in {}.log", base.display()));
            row.push_str(&format!(" {:>20}", format!("{requests}/{pictures}/{out}")));
        }
        rows.push(row);
    }
    rows.join("\n")
}

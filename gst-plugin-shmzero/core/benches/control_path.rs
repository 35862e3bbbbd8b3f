// SPDX-License-Identifier: MPL-2.0
//! Cost of the shmzero control path per frame, without GStreamer: slot
//! bookkeeping, descriptor encode/send/recv/decode, the reader's bounds-checked
//! view of the mapping, and the release coming back. Writer and readers are
//! threads on real `SOCK_SEQPACKET` socket pairs; CPU time is per thread
//! (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! Run: `cargo bench -p shmzero-core --bench control_path`
//! (`-- --frames N` to change the frame count).

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::time::{ClockId, clock_gettime};
use shmzero_core::{
    BufferDescriptor, Channel, Message, ReaderId, ReaderSegments, SlotTable, VideoLayout,
    WriterSegment,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const CREDIT: u32 = 4;

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

struct Scenario {
    name: &'static str,
    width: u32,
    height: u32,
    readers: usize,
}

struct Result {
    fps: f64,
    writer_ms: f64,
    reader_ms: f64,
}

fn run(scenario: &Scenario, frames: u64) -> Result {
    let stride = scenario.width * 4;
    let frame_size = u64::from(stride) * u64::from(scenario.height);
    let n_slots = CREDIT * 2;
    let mut table = SlotTable::new();
    let layout = table.add_segment(frame_size, n_slots, 4096).unwrap();
    let segment = WriterSegment::create(layout.id, layout.size, "bench").unwrap();

    let mut writer_ends = Vec::new();
    let mut reader_threads = Vec::new();
    for _ in 0..scenario.readers {
        let (w, r) = Channel::pair().unwrap();
        let id = table.add_reader(CREDIT);
        w.send(
            &Message::NewSegment(segment.announcement()),
            Some(segment.share_fd()),
            TIMEOUT,
        )
        .unwrap();
        writer_ends.push((id, Arc::new(w)));
        reader_threads.push(std::thread::spawn(move || reader_loop(r, frames)));
    }

    let start = Instant::now();
    let cpu_start = thread_cpu();
    let mut sent_total = 0u64;
    for frame in 0..frames {
        let slot = loop {
            if let Some(slot) = table.alloc_in(layout.id).unwrap() {
                break slot;
            }
            service_releases(&mut table, &writer_ends, true);
        };
        // Live sources would drop frames for a full reader; the bench waits
        // instead, so every reader sees every frame.
        while table
            .readers()
            .any(|r| table.reader_stats(r).unwrap().in_flight >= CREDIT)
        {
            service_releases(&mut table, &writer_ends, true);
        }
        let (buffer, sent) = table.publish(slot, Instant::now()).unwrap();
        let descriptor = BufferDescriptor {
            buffer,
            segment: layout.id,
            offset: layout.slot_offset(slot.index),
            size: frame_size,
            pts: Some(frame * 33_333_333),
            dts: None,
            duration: Some(33_333_333),
            offset_start: Some(frame),
            offset_end: Some(frame + 1),
            flags: 0,
            video: Some(VideoLayout {
                format: 11,
                width: scenario.width,
                height: scenario.height,
                n_planes: 1,
                offsets: [0; 4],
                strides: [stride as i32, 0, 0, 0],
            }),
        };
        let message = Message::Buffer(descriptor);
        for reader in &sent {
            let (_, channel) = writer_ends.iter().find(|(id, _)| id == reader).unwrap();
            channel.send(&message, None, TIMEOUT).unwrap();
        }
        sent_total += sent.len() as u64;
        table.writer_release(slot).unwrap();
        service_releases(&mut table, &writer_ends, false);
    }
    // Drain the last releases so every reader sees every frame.
    while table
        .readers()
        .any(|r| table.reader_stats(r).unwrap().in_flight > 0)
    {
        service_releases(&mut table, &writer_ends, true);
    }
    let writer_cpu = thread_cpu() - cpu_start;
    drop(writer_ends);
    let mut reader_cpu = Duration::ZERO;
    for thread in reader_threads {
        reader_cpu += thread.join().unwrap();
    }
    let elapsed = start.elapsed();
    for reader in table.readers().collect::<Vec<_>>() {
        let stats = table.reader_stats(reader).unwrap();
        assert_eq!(stats.dropped, 0, "bench readers keep up; none may drop");
    }
    assert_eq!(sent_total, frames * scenario.readers as u64);
    Result {
        fps: frames as f64 / elapsed.as_secs_f64(),
        writer_ms: writer_cpu.as_secs_f64() * 1e3 / frames as f64,
        reader_ms: reader_cpu.as_secs_f64() * 1e3 / (frames as f64 * scenario.readers as f64),
    }
}

/// Reads releases; with `block`, waits until at least one arrived.
fn service_releases(table: &mut SlotTable, readers: &[(ReaderId, Arc<Channel>)], block: bool) {
    loop {
        let mut got = false;
        for (id, channel) in readers {
            // A reader that saw its last frame hangs up after its last release.
            while let Some(received) = channel
                .try_recv()
                .or_else(|e| if e.is_disconnect() { Ok(None) } else { Err(e) })
                .unwrap()
            {
                let Message::Release(buffer) = received.message else {
                    panic!("unexpected message")
                };
                table.release(*id, buffer).unwrap();
                got = true;
            }
        }
        if got || !block {
            return;
        }
        let mut fds: Vec<PollFd<'_>> = readers
            .iter()
            .map(|(_, c)| PollFd::from_borrowed_fd(c.as_fd(), PollFlags::IN))
            .collect();
        rustix::event::poll(&mut fds, None).unwrap();
    }
}

/// Maps the segment, views each buffer, releases it; returns its CPU time.
fn reader_loop(channel: Channel, frames: u64) -> Duration {
    let cpu_start = thread_cpu();
    let mut segments = ReaderSegments::new();
    let mut seen = 0;
    let mut checksum = 0u64;
    while seen < frames {
        let received = channel.recv(TIMEOUT).unwrap();
        match received.message {
            Message::NewSegment(announced) => {
                segments.insert(announced, received.fd.unwrap()).unwrap()
            }
            Message::Buffer(desc) => {
                let range = segments.range(&desc).unwrap();
                checksum = checksum.wrapping_add(range.as_ptr() as u64);
                drop(range);
                channel
                    .send(&Message::Release(desc.buffer), None, TIMEOUT)
                    .unwrap();
                seen += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    std::hint::black_box(checksum);
    thread_cpu() - cpu_start
}

fn main() {
    let mut frames = 20_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--frames" {
            frames = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--frames N");
        }
    }
    let scenarios = [
        Scenario {
            name: "1080p RGBA, 1 reader",
            width: 1920,
            height: 1080,
            readers: 1,
        },
        Scenario {
            name: "4K RGBA, 1 reader",
            width: 3840,
            height: 2160,
            readers: 1,
        },
        Scenario {
            name: "1080p RGBA, 3 readers",
            width: 1920,
            height: 1080,
            readers: 3,
        },
        Scenario {
            name: "1080p RGBA, 10 readers",
            width: 1920,
            height: 1080,
            readers: 10,
        },
    ];
    println!(
        "shmzero-core control path, {frames} frames per row (credit {CREDIT}, writer and readers as threads)"
    );
    println!();
    println!(
        "| scenario | frames/s | writer CPU ms/frame | reader CPU ms/frame (each) | writer % of a core at 30 fps |"
    );
    println!("|---|---|---|---|---|");
    for scenario in &scenarios {
        let r = run(scenario, frames);
        println!(
            "| {} | {:.0} | {:.4} | {:.4} | {:.3} % |",
            scenario.name,
            r.fps,
            r.writer_ms,
            r.reader_ms,
            r.writer_ms * 30.0 / 10.0
        );
    }
}

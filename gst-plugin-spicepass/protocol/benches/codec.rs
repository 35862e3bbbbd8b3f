//! Protocol cost per message, without I/O: `cargo bench -p spicepass-protocol`.
//! Prints one table; the numbers are recorded in PROTOCOL.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use spicepass_protocol::*;

/// CPU time of this thread in ns (first field of schedstat), so the numbers
/// mean "CPU per operation" even on a loaded machine; wall time otherwise.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU (or wall) ns since `start`.
struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu_ns(),
        }
    }

    fn elapsed_ns(&self) -> f64 {
        match (self.cpu, thread_cpu_ns()) {
            (Some(start), Some(now)) => now.saturating_sub(start) as f64,
            _ => self.wall.elapsed().as_nanos() as f64,
        }
    }
}

/// Runs `op` in batches until `budget` of wall time has passed; returns CPU
/// ns per call.
fn measure(budget: Duration, mut op: impl FnMut() -> usize) -> f64 {
    let mut calls = 0usize;
    let mut sink = 0usize;
    let clock = Clock::start();
    while clock.wall.elapsed() < budget {
        for _ in 0..1000 {
            sink = sink.wrapping_add(op());
        }
        calls += 1000;
    }
    black_box(sink);
    clock.elapsed_ns() / calls as f64
}

fn video_headers(count: usize) -> Vec<BufferHeader> {
    let frame = 33_333_333u64;
    let base = 3_600_000_000_000u64;
    (0..count)
        .map(|i| {
            let presentation = match i {
                0 => 0,
                _ => {
                    let (gop, index) = ((i - 1) / 3, (i - 1) % 3);
                    (3 * gop + if index == 0 { 3 } else { index }) as u64
                }
            };
            BufferHeader {
                dts: Some(base + i as u64 * frame),
                pts: Some(base + (presentation + 1) * frame),
                duration: Some(frame),
                offset: Some(i as u64),
                offset_end: Some(i as u64 + 1),
                flags: if i % 60 == 0 { 0 } else { 1 << 13 },
                // 1–50 KB, deterministic.
                payload_len: 1_000 + (i as u64 * 7_919) % 49_000,
            }
        })
        .collect()
}

fn hello_bytes(role: Role) -> Vec<u8> {
    let mut wire = Vec::new();
    Hello::new(role, 1)
        .encode(&mut wire)
        .expect("hello encodes");
    wire
}

fn main() {
    let budget = Duration::from_millis(400);
    let headers = video_headers(20_000);
    let mut rows: Vec<(String, f64, String)> = Vec::new();

    // Header encode: what the sink spends before writev(header, payload).
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let mut out = Vec::with_capacity(64);
    let mut index = 0;
    let ns = measure(budget, || {
        out.clear();
        let header = &headers[index % headers.len()];
        index += 1;
        encoder.encode_buffer(0, header, &mut out).expect("encodes");
        out.len()
    });
    rows.push(("encode buffer header".into(), ns, String::new()));

    // Header decode, payload consumed as if read straight into buffer memory.
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let frames: Vec<Vec<u8>> = headers
        .iter()
        .map(|header| {
            let mut frame = Vec::new();
            encoder
                .encode_buffer(0, header, &mut frame)
                .expect("encodes");
            frame
        })
        .collect();
    let frame_bytes: usize = frames.iter().map(Vec::len).sum();
    let fresh_decoder = || {
        let mut decoder = Decoder::new(Role::Src, Limits::default());
        decoder.push(&hello_bytes(Role::Sink));
        decoder.poll().expect("hello");
        decoder
    };
    let mut decoder = fresh_decoder();
    let mut index = 0;
    let ns = measure(budget, || {
        if index == frames.len() {
            decoder = fresh_decoder();
            index = 0;
        }
        decoder.push(&frames[index]);
        index += 1;
        match decoder.poll().expect("valid") {
            Some(Decoded::Frame(Frame {
                message: Message::Buffer(header),
                ..
            })) => {
                // The payload never enters the decoder: the caller reads it.
                decoder
                    .consume_payload(header.payload_len)
                    .expect("consume");
                header.payload_len as usize
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    rows.push(("push + decode buffer header".into(), ns, String::new()));

    // A whole stream through the decoder's own buffer in 64 KiB reads
    // (payload copied once by take_payload: the worst case, when the
    // payload arrived together with the header).
    let payload = vec![0x5au8; 50_000];
    let mut stream = hello_bytes(Role::Sink);
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let mut payload_bytes = 0u64;
    for header in &headers {
        encoder
            .encode_buffer(0, header, &mut stream)
            .expect("encodes");
        stream.extend_from_slice(&payload[..header.payload_len as usize]);
        payload_bytes += header.payload_len;
    }
    let mut memory = vec![0u8; 50_000];
    let clock = Clock::start();
    let mut rounds = 0u32;
    while clock.wall.elapsed() < budget * 2 || rounds == 0 {
        let mut decoder = Decoder::new(Role::Src, Limits::default());
        let mut buffers = 0;
        for chunk in stream.chunks(64 * 1024) {
            decoder.push(chunk);
            loop {
                if decoder.payload_remaining() > 0 {
                    if decoder.take_payload(&mut memory) == 0 {
                        break;
                    }
                    continue;
                }
                match decoder.poll().expect("valid") {
                    Some(Decoded::Frame(_)) => buffers += 1,
                    Some(Decoded::Hello(_)) => {}
                    None => break,
                }
            }
        }
        assert_eq!(buffers, headers.len());
        rounds += 1;
    }
    let elapsed_ns = clock.elapsed_ns();
    let per_buffer = elapsed_ns / (f64::from(rounds) * headers.len() as f64);
    let gbps = payload_bytes as f64 * f64::from(rounds) / elapsed_ns;
    rows.push((
        "decode 20000 buffers of 1-50 KB, 64 KiB reads, payload copied".into(),
        per_buffer,
        format!("{gbps:.1} GB/s"),
    ));

    // Events: a caps event each way.
    let caps = Message::Event(Event {
        direction: EventDirection::Downstream,
        event_type: 50 << 8 | 2 | 4 | 8,
        seqnum: 7,
        running_time_offset: 0,
        sticky: true,
        structure: Some("GstEventCaps, caps=(GstCaps)\"video/x-h264\\,\\ stream-format\\=\\(string\\)byte-stream\\,\\ alignment\\=\\(string\\)au\\,\\ width\\=\\(int\\)1920\\,\\ height\\=\\(int\\)1080\\,\\ framerate\\=\\(fraction\\)30/1\";".into()),
    });
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let ns = measure(budget, || {
        out.clear();
        encoder.encode(0, &caps, &mut out).expect("encodes");
        out.len()
    });
    rows.push((
        "encode caps event (~190 B structure)".into(),
        ns,
        String::new(),
    ));
    let mut one = hello_bytes(Role::Sink);
    Encoder::new(Role::Sink, Limits::default())
        .encode(0, &caps, &mut one)
        .expect("encodes");
    let ns = measure(budget, || {
        let mut decoder = Decoder::new(Role::Src, Limits::default());
        decoder.push(&one);
        decoder.poll().expect("hello");
        match decoder.poll().expect("valid") {
            Some(Decoded::Frame(frame)) => frame.seq as usize,
            other => panic!("unexpected {other:?}"),
        }
    });
    rows.push((
        "hello + caps event decode (new decoder each time)".into(),
        ns,
        String::new(),
    ));

    println!();
    println!(
        "spicepass-protocol codec cost, CPU ns per operation ({}; one thread, no I/O)",
        if thread_cpu_ns().is_some() {
            "thread CPU time from schedstat"
        } else {
            "wall time"
        }
    );
    println!("{:<64} {:>10}  notes", "operation", "CPU ns");
    for (name, ns, extra) in &rows {
        println!("{name:<64} {ns:>10.1}  {extra}");
    }
    println!(
        "framing: {:.1} bytes per buffer on average over the 20000-buffer stream (GDP: 62)",
        frame_bytes as f64 / headers.len() as f64
    );
}

// SPDX-License-Identifier: MPL-2.0
//! The pool shmzerosink proposes, as an upstream element sees it: ALLOCATION query,
//! GstVideoAlignment, GstVideoMeta, min/max buffers, bounded waits, no heap fallback.

use gst::prelude::*;
use gst_video::prelude::*;

mod common;

fn started_sink(dir: &common::TestDir, props: &[(&str, &dyn ToValue)]) -> gst::Element {
    gst::init().unwrap();
    gstshmzero::plugin_register_static().unwrap();
    let sink = gst::ElementFactory::make("shmzerosink")
        .property("socket-path", dir.socket("pool"))
        .build()
        .unwrap();
    for (name, value) in props {
        sink.set_property_from_value(name, &value.to_value());
    }
    sink.set_state(gst::State::Ready).unwrap();
    // READY → PAUSED starts the sink (listening socket, slot table); it waits for preroll.
    let _ = sink.set_state(gst::State::Paused);
    sink
}

fn proposed_pool(sink: &gst::Element, caps: &gst::Caps) -> (gst::BufferPool, u32, u32, u32) {
    let mut query = gst::query::Allocation::new(Some(caps), true);
    // What upstream's peer query lands in.
    assert!(sink.static_pad("sink").unwrap().query(&mut query));
    assert!(
        query
            .find_allocation_meta::<gst_video::VideoMeta>()
            .is_some()
    );
    let (pool, size, min, max) = query.allocation_pools().next().expect("a pool is proposed");
    (pool.expect("a real pool object"), size, min, max)
}

#[test]
fn pool_honours_video_alignment_and_adds_video_meta() {
    let dir = common::TestDir::new("pool-align");
    let sink = started_sink(&dir, &[("min-buffers", &2u32), ("max-buffers", &3u32)]);
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 100, 50)
        .build()
        .unwrap();
    let caps = info.to_caps().unwrap();
    let (pool, size, min, max) = proposed_pool(&sink, &caps);
    assert_eq!((size as usize, min, max), (info.size(), 2, 3));

    let mut config = pool.config();
    config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META);
    config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_ALIGNMENT);
    let mut align = gst_video::VideoAlignment::new(8, 8, 16, 16, &[127, 63, 63, 0]);
    config.set_video_alignment(&align);
    config.set_params(Some(&caps), size, min, max);
    pool.set_config(config).unwrap();
    pool.set_active(true).unwrap();

    let mut padded = info.clone();
    padded.align(&mut align).unwrap();
    let buffer = pool.acquire_buffer(None).unwrap();
    assert_eq!(buffer.size(), padded.size());
    let meta = buffer.meta::<gst_video::VideoMeta>().expect("video meta");
    assert_eq!(meta.stride(), padded.stride());
    assert_eq!(meta.offset(), padded.offset());
    assert!(
        meta.stride()
            .iter()
            .zip(&[128, 64, 64])
            .all(|(s, a)| s % a == 0),
        "{:?}",
        meta.stride()
    );
    let map = buffer.map_readable().unwrap();
    assert_eq!(map.as_ptr() as usize % 64, 0, "slot start not aligned");
    drop(map);

    // All slots taken: a DONTWAIT acquire reports "would block" (EOS), never a heap buffer.
    let second = pool.acquire_buffer(None).unwrap();
    let third = pool.acquire_buffer(None).unwrap();
    let params = gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
    assert_eq!(
        pool.acquire_buffer(Some(&params)).unwrap_err(),
        gst::FlowError::Eos
    );
    // A returned buffer frees its slot again.
    drop(second);
    let again = pool
        .acquire_buffer(Some(&params))
        .expect("a slot came back");
    // Flushing wakes and fails a blocked acquire instead of hanging.
    let waiter = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.acquire_buffer(None))
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    pool.set_flushing(true);
    assert_eq!(
        waiter.join().unwrap().unwrap_err(),
        gst::FlowError::Flushing
    );
    pool.set_flushing(false);
    drop((buffer, third, again));
    pool.set_active(false).unwrap();
    sink.set_state(gst::State::Null).unwrap();
    assert!(dir.entries().is_empty(), "socket left: {:?}", dir.entries());
}

#[test]
fn pool_buffers_are_writable_memfd_memory() {
    let dir = common::TestDir::new("pool-mem");
    let sink = started_sink(&dir, &[]);
    let caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgba, 64, 64)
        .build()
        .unwrap()
        .to_caps()
        .unwrap();
    let (pool, size, min, max) = proposed_pool(&sink, &caps);
    let mut config = pool.config();
    config.set_params(Some(&caps), size, min, max);
    pool.set_config(config).unwrap();
    pool.set_active(true).unwrap();
    let mut buffer = pool.acquire_buffer(None).unwrap();
    {
        let mut map = buffer.get_mut().unwrap().map_writable().unwrap();
        map.as_mut_slice().fill(0xab);
    }
    // Upstream's writes land in a shared memfd mapping of this process.
    let map = buffer.map_readable().unwrap();
    let addr = map.as_ptr() as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (s, e) = range.split_once('-').unwrap();
            let (s, e) = (
                usize::from_str_radix(s, 16).unwrap(),
                usize::from_str_radix(e, 16).unwrap(),
            );
            addr >= s && addr + map.len() <= e
        })
        .expect("mapped");
    assert!(
        line.contains("/memfd:shmzero-") && line.split_whitespace().nth(1) == Some("rw-s"),
        "{line}"
    );
    drop(map);
    drop(buffer);
    pool.set_active(false).unwrap();
    sink.set_state(gst::State::Null).unwrap();
}

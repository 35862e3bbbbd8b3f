// SPDX-License-Identifier: MPL-2.0
//! Segments travel over a real socket pair with SCM_RIGHTS; the reader sees
//! the writer's bytes in its own read-only mapping, without a copy.

use std::os::fd::AsFd;
use std::time::Duration;

use shmzero_core::segment::ClaimError;
use shmzero_core::{
    BufferDescriptor, BufferId, Channel, ChannelError, MapError, Message, ReaderSegments,
    SegmentId, WriterSegment,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn descriptor(segment: SegmentId, offset: u64, size: u64) -> BufferDescriptor {
    BufferDescriptor {
        buffer: BufferId(7),
        segment,
        offset,
        size,
        pts: Some(1_000),
        dts: None,
        duration: Some(33_333_333),
        offset_start: None,
        offset_end: None,
        flags: 0,
        video: None,
    }
}

#[test]
fn reader_sees_writer_bytes_in_its_own_mapping() {
    let (writer_end, reader_end) = Channel::pair().unwrap();
    let segment = WriterSegment::create(SegmentId(3), 1 << 20, "test").unwrap();
    let mut slot = segment.claim(4096, 4096).unwrap();
    slot.as_mut().fill(0xab);
    slot.as_mut()[0] = 1;

    writer_end
        .send(
            &Message::NewSegment(segment.announcement()),
            Some(segment.share_fd()),
            TIMEOUT,
        )
        .unwrap();
    writer_end
        .send(
            &Message::Buffer(descriptor(SegmentId(3), 4096, 4096)),
            None,
            TIMEOUT,
        )
        .unwrap();

    let reader = std::thread::spawn(move || {
        let mut segments = ReaderSegments::new();
        let first = reader_end.recv(TIMEOUT).unwrap();
        let Message::NewSegment(announced) = first.message else {
            panic!("expected a segment, got {:?}", first.message)
        };
        segments
            .insert(announced, first.fd.expect("fd attached"))
            .unwrap();
        let second = reader_end.recv(TIMEOUT).unwrap();
        let Message::Buffer(desc) = second.message else {
            panic!("expected a buffer")
        };
        assert!(second.fd.is_none());
        let range = segments.range(&desc).unwrap();
        let mapping = segments.get(desc.segment).unwrap();
        // The buffer's bytes are inside the received mapping: no copy.
        assert!(mapping.contains(range.as_ptr(), range.len()));
        assert_eq!(range.as_ptr(), mapping.as_ptr().wrapping_add(4096));
        (range.as_ref()[0], range.as_ref()[1], range.as_ref()[4095])
    });
    assert_eq!(reader.join().unwrap(), (1, 0xab, 0xab));
}

#[test]
fn segment_is_sealed_and_reader_fd_is_read_only() {
    let segment = WriterSegment::create(SegmentId(0), 65536, "sealed").unwrap();
    // Shrinking would make a reader's mapping fault: the seal forbids it.
    let err = rustix::fs::ftruncate(segment.memfd(), 4096).unwrap_err();
    assert_eq!(err, rustix::io::Errno::PERM);
    assert!(rustix::fs::ftruncate(segment.memfd(), 1 << 30).is_err());
    let seals = rustix::fs::fcntl_get_seals(segment.memfd()).unwrap();
    assert!(seals.contains(rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW));
    assert!(seals.contains(rustix::fs::SealFlags::SEAL));
    // The shared fd cannot be mapped writable.
    assert!(segment.share_is_read_only());
    // SAFETY: a fresh mapping at a kernel-chosen address; expected to fail,
    // and unmapped right away if it unexpectedly succeeds.
    let writable = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            4096,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            segment.share_fd(),
            0,
        )
    };
    match writable {
        Err(e) => assert_eq!(e, rustix::io::Errno::ACCESS),
        Ok(ptr) => {
            // SAFETY: the region was just mapped above and nothing else uses it.
            unsafe { rustix::mm::munmap(ptr, 4096).unwrap() };
            panic!("a reader could map the segment writable");
        }
    }
}

#[test]
fn unsealed_or_short_fds_are_refused() {
    let plain = rustix::fs::memfd_create("plain", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&plain, 8192).unwrap();
    let err = shmzero_core::ReaderSegment::map(SegmentId(1), plain, 8192).unwrap_err();
    assert!(matches!(err, MapError::NotSealed { .. }), "{err}");

    let segment = WriterSegment::create(SegmentId(2), 8192, "short").unwrap();
    let fd = segment.share_fd().try_clone_to_owned().unwrap();
    let err = shmzero_core::ReaderSegment::map(SegmentId(2), fd, 16384).unwrap_err();
    assert!(matches!(err, MapError::TooSmall { .. }), "{err}");
}

#[test]
fn reader_rejects_out_of_bounds_and_unknown_segments() {
    let segment = WriterSegment::create(SegmentId(5), 8192, "bounds").unwrap();
    let mut segments = ReaderSegments::new();
    let fd = segment.share_fd().try_clone_to_owned().unwrap();
    segments.insert(segment.announcement(), fd).unwrap();
    let fd = segment.share_fd().try_clone_to_owned().unwrap();
    assert!(matches!(
        segments.insert(segment.announcement(), fd),
        Err(MapError::Duplicate { .. })
    ));
    assert!(matches!(
        segments.range(&descriptor(SegmentId(5), 4096, 4097)),
        Err(MapError::OutOfBounds { .. })
    ));
    assert!(matches!(
        segments.range(&descriptor(SegmentId(5), u64::MAX, 2)),
        Err(MapError::OutOfBounds { .. })
    ));
    assert!(matches!(
        segments.range(&descriptor(SegmentId(6), 0, 1)),
        Err(MapError::UnknownSegment { .. })
    ));
    assert!(
        segments
            .range(&descriptor(SegmentId(5), 4096, 4096))
            .is_ok()
    );
}

#[test]
fn mapping_outlives_writer_and_retirement() {
    let segment = WriterSegment::create(SegmentId(9), 4096, "outlive").unwrap();
    let mut slot = segment.claim(0, 4096).unwrap();
    slot.as_mut()[100] = 42;
    let mut segments = ReaderSegments::new();
    segments
        .insert(
            segment.announcement(),
            segment.share_fd().try_clone_to_owned().unwrap(),
        )
        .unwrap();
    let range = segments.range(&descriptor(SegmentId(9), 0, 4096)).unwrap();
    // Writer gone, segment retired, table cleared: the held range still reads.
    drop(slot);
    drop(segment);
    assert!(segments.retire(SegmentId(9)));
    segments.clear();
    assert_eq!(range.as_ref()[100], 42);
}

#[test]
fn claims_never_overlap() {
    let segment = WriterSegment::create(SegmentId(1), 16384, "claims").unwrap();
    let a = segment.claim(0, 4096).unwrap();
    assert!(matches!(
        segment.claim(4095, 2),
        Err(ClaimError::Overlap { .. })
    ));
    assert!(matches!(
        segment.claim(0, 1),
        Err(ClaimError::Overlap { .. })
    ));
    let b = segment.claim(4096, 4096).unwrap();
    assert!(matches!(
        segment.claim(12288, 4097),
        Err(ClaimError::OutOfBounds { .. })
    ));
    assert!(matches!(segment.claim(0, 0), Err(ClaimError::Empty)));
    drop(a);
    let _a2 = segment.claim(0, 4096).unwrap();
    drop(b);
    let _b2 = segment.claim(2 * 4096, 8192).unwrap();
    let _b3 = segment.claim(4096, 4096).unwrap();
}

#[test]
fn fd_count_is_enforced_on_send_and_receive() {
    let (a, b) = Channel::pair().unwrap();
    let segment = WriterSegment::create(SegmentId(1), 4096, "fds").unwrap();
    // NewSegment without its fd, Release with one: refused before sending.
    assert!(matches!(
        a.try_send(&Message::NewSegment(segment.announcement()), None),
        Err(ChannelError::WrongFdCount { .. })
    ));
    assert!(matches!(
        a.try_send(&Message::Release(BufferId(1)), Some(segment.share_fd())),
        Err(ChannelError::WrongFdCount { .. })
    ));
    // Nothing was sent.
    assert!(b.try_recv().unwrap().is_none());
    let _ = b.as_fd();
}

#[test]
fn closed_peer_is_reported_as_closed() {
    let (a, b) = Channel::pair().unwrap();
    drop(b);
    let err = a
        .send(&Message::Release(BufferId(1)), None, TIMEOUT)
        .unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    let err = a.recv(TIMEOUT).unwrap_err();
    assert!(err.is_disconnect(), "{err}");
}

#[test]
fn reader_caps_the_number_of_mapped_segments() {
    let segment = WriterSegment::create(SegmentId(0), 4096, "many").unwrap();
    let mut segments = ReaderSegments::new();
    for id in 0..shmzero_core::segment::MAX_READER_SEGMENTS as u32 {
        let announced = shmzero_core::NewSegment {
            segment: SegmentId(id),
            size: 4096,
        };
        let fd = segment.share_fd().try_clone_to_owned().unwrap();
        segments.insert(announced, fd).unwrap();
    }
    let fd = segment.share_fd().try_clone_to_owned().unwrap();
    let announced = shmzero_core::NewSegment {
        segment: SegmentId(u32::MAX),
        size: 4096,
    };
    assert!(matches!(
        segments.insert(announced, fd),
        Err(MapError::TooManySegments { .. })
    ));
    // Retiring makes room again.
    assert!(segments.retire(SegmentId(0)));
    let fd = segment.share_fd().try_clone_to_owned().unwrap();
    segments.insert(announced, fd).unwrap();
}

#[test]
fn a_reader_that_stops_reading_never_blocks_the_writer() {
    let (writer_end, reader_end) = Channel::pair().unwrap();
    let message = Message::Buffer(descriptor(SegmentId(0), 0, 4096));
    let mut queued = 0u32;
    let full = loop {
        match writer_end.try_send(&message, None) {
            Ok(()) => queued += 1,
            Err(err) => break err,
        }
        assert!(queued < 1_000_000, "the socket never filled up");
    };
    assert!(matches!(full, ChannelError::WouldBlock), "{full}");
    // Far more than any credit: credits, not the socket, bound a reader.
    assert!(queued >= 64, "only {queued} descriptors fit");
    // A bounded send gives up after its timeout instead of hanging.
    let err = writer_end
        .send(&message, None, Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(err, ChannelError::Timeout(_)), "{err}");
    // Once the reader catches up, sending works again, in order.
    for _ in 0..queued {
        assert_eq!(reader_end.recv(TIMEOUT).unwrap().message, message);
    }
    writer_end.try_send(&message, None).unwrap();
}

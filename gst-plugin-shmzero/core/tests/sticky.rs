// SPDX-License-Identifier: MPL-2.0
//! The sticky-event set replayed to late readers.

use shmzero_core::{EventMessage, StickyEvents};

// GstEventType numbers as GStreamer 1.22 defines them (number << 8 | flags).
const STREAM_START: u32 = (40 << 8) | 0x0c | 0x10;
const CAPS: u32 = (50 << 8) | 0x04 | 0x08 | 0x10;
const SEGMENT: u32 = (70 << 8) | 0x04 | 0x08 | 0x10;
const TAG: u32 = (80 << 8) | 0x04 | 0x08 | 0x10 | 0x20;
const EOS: u32 = (110 << 8) | 0x04 | 0x08 | 0x10;
const CUSTOM_STICKY_MULTI: u32 = (180 << 8) | 0x04 | 0x08 | 0x10 | 0x20;

fn event(event_type: u32, sticky: bool, structure: &str) -> EventMessage {
    EventMessage {
        event_type,
        seqnum: 1,
        sticky,
        structure: structure.to_owned(),
    }
}

#[test]
fn replay_follows_gstreamer_sticky_order_and_keeps_the_latest() {
    let mut sticky = StickyEvents::new();
    // Stored out of order on purpose.
    assert!(sticky.store(&event(
        SEGMENT,
        true,
        "GstEventSegment, segment=(GstSegment)\"x\""
    )));
    assert!(sticky.store(&event(
        CAPS,
        true,
        "GstEventCaps, caps=(GstCaps)\"video/x-raw, width=(int)640\""
    )));
    assert!(sticky.store(&event(
        STREAM_START,
        true,
        "GstEventStreamStart, stream-id=(string)a"
    )));
    // A caps change replaces the old caps.
    assert!(sticky.store(&event(
        CAPS,
        true,
        "GstEventCaps, caps=(GstCaps)\"video/x-raw, width=(int)1920\""
    )));
    // Non-sticky events are not kept.
    assert!(!sticky.store(&event(
        (30 << 8) | 0x01,
        false,
        "GstEventFlushStop, reset-time=(boolean)true"
    )));
    let replay: Vec<u32> = sticky.iter().map(|e| e.event_type).collect();
    assert_eq!(replay, vec![STREAM_START, CAPS, SEGMENT]);
    assert!(sticky.iter().any(|e| e.structure.contains("1920")));
    assert!(!sticky.iter().any(|e| e.structure.contains("640")));
}

#[test]
fn multi_sticky_events_are_kept_per_structure_name() {
    let mut sticky = StickyEvents::new();
    sticky.store(&event(CUSTOM_STICKY_MULTI, true, "app-a, x=(int)1"));
    sticky.store(&event(CUSTOM_STICKY_MULTI, true, "app-b, x=(int)2"));
    sticky.store(&event(CUSTOM_STICKY_MULTI, true, "app-a, x=(int)3"));
    sticky.store(&event(
        TAG,
        true,
        "GstTagList-stream, taglist=(taglist)\"taglist\\;\"",
    ));
    sticky.store(&event(
        TAG,
        true,
        "GstTagList-global, taglist=(taglist)\"taglist\\;\"",
    ));
    assert_eq!(sticky.len(), 4);
    let structures: Vec<&str> = sticky.iter().map(|e| e.structure.as_str()).collect();
    assert!(structures.contains(&"app-a, x=(int)3"));
    assert!(structures.contains(&"app-b, x=(int)2"));
}

#[test]
fn flush_and_new_stream_can_drop_types() {
    let mut sticky = StickyEvents::new();
    sticky.store(&event(CAPS, true, "GstEventCaps"));
    sticky.store(&event(SEGMENT, true, "GstEventSegment"));
    sticky.store(&event(EOS, true, "GstEventEos"));
    // What a pad does on flush-stop: EOS and segment go.
    sticky.remove_type(EOS);
    sticky.remove_type(SEGMENT);
    let left: Vec<u32> = sticky.iter().map(|e| e.event_type).collect();
    assert_eq!(left, vec![CAPS]);
    sticky.retain(|e| e.event_type != CAPS);
    assert!(sticky.is_empty());
    sticky.store(&event(CAPS, true, "GstEventCaps"));
    sticky.clear();
    assert_eq!(sticky.len(), 0);
}

// SPDX-License-Identifier: MPL-2.0
//! GStreamer events ⇄ the wire form the control protocol carries
//! (GstEventType number, seqnum, sticky flag, structure string).
//!
//! Events travel as serialized structures, the same idea GDP uses, because that covers every
//! downstream event type (caps, segment, tags, stream-start, EOS, flush, gap, custom) with one
//! code path. Fields that cannot be serialized (object pointers such as a stream-start's
//! `GstStream`) are dropped on the way out instead of corrupting the string.

use gst::glib;
use gst::glib::translate::{FromGlib, IntoGlib, IntoGlibPtr, from_glib_full};
use gst::prelude::*;
use shmzero_core::EventMessage;

/// Why a wire event was not turned back into a `gst::Event`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("event type {0:#x} may not travel downstream between processes")]
    TypeNotAllowed(u32),
    #[error("event structure does not parse: {0:?}")]
    BadStructure(String),
}

/// Downstream event types a reader accepts from a writer. Anything else (upstream events, an
/// unknown number from a newer or corrupt peer) is refused rather than injected into a pipeline.
fn allowed_types() -> [gst::EventType; 15] {
    use gst::EventType as T;
    [
        T::StreamStart,
        T::Caps,
        T::Segment,
        T::Tag,
        T::Eos,
        T::FlushStart,
        T::FlushStop,
        T::Gap,
        T::StreamGroupDone,
        T::SegmentDone,
        T::Toc,
        T::Protection,
        T::CustomDownstream,
        T::CustomDownstreamSticky,
        T::CustomBoth,
    ]
}

/// Whether the writer forwards `event` to its readers at all.
pub fn is_forwarded(event: &gst::EventRef) -> bool {
    allowed_types().contains(&event.type_())
}

/// Serializes an event for the wire. Unserializable fields are dropped (see the module doc).
pub fn to_wire(event: &gst::EventRef) -> EventMessage {
    let structure = match event.structure() {
        None => String::new(),
        Some(s) => {
            let mut clean = s.to_owned();
            let unserializable: Vec<glib::GString> = s
                .iter()
                .filter(|(_, value)| value.serialize().is_err())
                .map(|(name, _)| glib::GString::from(name.as_str()))
                .collect();
            for name in &unserializable {
                clean.remove_field(name.as_str());
            }
            clean.to_string()
        }
    };
    EventMessage {
        event_type: event.type_().into_glib() as u32,
        seqnum: event.seqnum().into_glib(),
        sticky: event.is_sticky(),
        structure,
    }
}

/// Rebuilds an event from its wire form. The seqnum is left fresh: the caller maps remote
/// seqnums to local ones (see [`SeqnumMap`]).
pub fn from_wire(wire: &EventMessage) -> Result<gst::Event, EventError> {
    // SAFETY: GstEventType is a C enum stored as int; any value can be held, and we only go on
    // when it is one of the allowed known values.
    let type_ = unsafe { gst::EventType::from_glib(wire.event_type as i32) };
    if !allowed_types().contains(&type_) {
        return Err(EventError::TypeNotAllowed(wire.event_type));
    }
    // Some events (EOS, flush-start) carry no structure at all.
    let structure = if wire.structure.is_empty() {
        None
    } else if !has_valid_name(&wire.structure) {
        // GStreamer 1.22's parser would hit a g_critical on such a name before failing.
        return Err(EventError::BadStructure(wire.structure.clone()));
    } else {
        Some(
            wire.structure
                .parse::<gst::Structure>()
                .map_err(|_| EventError::BadStructure(wire.structure.clone()))?,
        )
    };
    let event = new_event(type_, structure);
    // A typed accessor that fails would mean the structure does not match its type: reject it
    // here instead of letting a downstream element trip over it.
    let consistent = match event.view() {
        gst::EventView::Caps(c) => c
            .structure()
            .and_then(|s| s.get::<gst::Caps>("caps").ok())
            .is_some(),
        gst::EventView::Segment(s) => s
            .structure()
            .and_then(|st| st.get::<gst::Segment>("segment").ok())
            .is_some(),
        gst::EventView::Tag(t) => t
            .structure()
            .and_then(|st| st.get::<gst::TagList>("taglist").ok())
            .is_some(),
        gst::EventView::StreamStart(s) => s
            .structure()
            .and_then(|st| st.get::<String>("stream-id").ok())
            .is_some(),
        gst::EventView::FlushStop(f) => f
            .structure()
            .is_some_and(|st| st.get::<bool>("reset-time").is_ok()),
        gst::EventView::Gap(g) => g.structure().is_some_and(|st| {
            st.get::<u64>("timestamp").is_ok() && st.get::<u64>("duration").is_ok()
        }),
        _ => true,
    };
    if !consistent {
        return Err(EventError::BadStructure(wire.structure.clone()));
    }
    Ok(event)
}

/// Whether the structure string starts with a name GStreamer accepts (a letter, then letters,
/// digits or `/-_.:+`), up to the first `,`, `;` or space.
fn has_valid_name(serialized: &str) -> bool {
    let name = serialized.split([',', ';', ' ']).next().unwrap_or_default();
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "/-_.:+".contains(c))
}

fn new_event(type_: gst::EventType, structure: Option<gst::Structure>) -> gst::Event {
    let structure = structure.map_or(std::ptr::null_mut(), |s| s.into_glib_ptr());
    // SAFETY: gst_event_new_custom takes ownership of a parentless structure (ours, just
    // parsed) or NULL, and returns a new event we own; `type_` is a known GstEventType.
    unsafe { from_glib_full(gst::ffi::gst_event_new_custom(type_.into_glib(), structure)) }
}

/// Maps the writer's seqnums to local ones so that events sharing a seqnum on the writer
/// (a flush-start/flush-stop pair) share one on the reader, without colliding with local seqnums.
#[derive(Debug, Default)]
pub struct SeqnumMap {
    recent: std::collections::VecDeque<(u32, gst::Seqnum)>,
}

impl SeqnumMap {
    const REMEMBERED: usize = 16;

    pub fn local(&mut self, remote: u32) -> gst::Seqnum {
        if let Some((_, local)) = self.recent.iter().find(|(r, _)| *r == remote) {
            return *local;
        }
        let local = gst::Seqnum::next();
        if self.recent.len() == Self::REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((remote, local));
        local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: gst::Event) -> gst::Event {
        let wire = to_wire(&event);
        let back = from_wire(&wire).expect("round trip");
        assert_eq!(back.type_(), event.type_());
        assert_eq!(wire.sticky, event.is_sticky());
        back
    }

    #[test]
    fn caps_segment_tags_stream_start_eos_flush_round_trip() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "RGBA")
            .field("width", 1920)
            .field("height", 1080)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let back = round_trip(gst::event::Caps::new(&caps));
        let gst::EventView::Caps(c) = back.view() else {
            panic!("not caps")
        };
        assert_eq!(c.caps(), caps.as_ref());

        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(gst::ClockTime::from_seconds(3));
        segment.set_rate(2.0);
        let back = round_trip(gst::event::Segment::new(&segment));
        let gst::EventView::Segment(s) = back.view() else {
            panic!("not segment")
        };
        let s = s.segment().downcast_ref::<gst::ClockTime>().unwrap();
        assert_eq!(s.start(), Some(gst::ClockTime::from_seconds(3)));
        assert_eq!(s.rate(), 2.0);

        let mut tags = gst::TagList::new();
        tags.make_mut()
            .add::<gst::tags::Title>(&"a \"quoted\" title", gst::TagMergeMode::Append);
        let back = round_trip(gst::event::Tag::new(tags.clone()));
        let gst::EventView::Tag(t) = back.view() else {
            panic!("not tag")
        };
        assert_eq!(
            t.tag().get::<gst::tags::Title>().unwrap().get(),
            "a \"quoted\" title"
        );

        let back = round_trip(
            gst::event::StreamStart::builder("my-stream")
                .group_id(gst::GroupId::next())
                .build(),
        );
        let gst::EventView::StreamStart(s) = back.view() else {
            panic!("not stream-start")
        };
        assert_eq!(s.stream_id(), "my-stream");

        round_trip(gst::event::Eos::new());
        round_trip(
            gst::event::Gap::builder(gst::ClockTime::from_seconds(1))
                .duration(gst::ClockTime::from_mseconds(40))
                .build(),
        );
        round_trip(gst::event::FlushStart::new());
        let back = round_trip(gst::event::FlushStop::new(true));
        let gst::EventView::FlushStop(f) = back.view() else {
            panic!("not flush-stop")
        };
        assert!(f.resets_time());

        let custom = gst::Structure::builder("my-app-event")
            .field("n", 7i32)
            .build();
        let back = round_trip(gst::event::CustomDownstream::new(custom));
        assert_eq!(back.structure().unwrap().get::<i32>("n").unwrap(), 7);
    }

    #[test]
    fn upstream_and_unknown_types_are_refused() {
        gst::init().unwrap();
        let seek = gst::event::Seek::new(
            1.0,
            gst::SeekFlags::FLUSH,
            gst::SeekType::Set,
            gst::ClockTime::ZERO,
            gst::SeekType::None,
            gst::ClockTime::NONE,
        );
        let wire = to_wire(&seek);
        assert!(!is_forwarded(&seek));
        assert!(matches!(
            from_wire(&wire),
            Err(EventError::TypeNotAllowed(t)) if t == wire.event_type
        ));
        let bogus = EventMessage {
            event_type: 0x7fff_ffff,
            seqnum: 1,
            sticky: false,
            structure: "x".into(),
        };
        assert!(matches!(
            from_wire(&bogus),
            Err(EventError::TypeNotAllowed(_))
        ));
    }

    #[test]
    fn garbage_structures_are_errors() {
        gst::init().unwrap();
        let caps_type = gst::EventType::Caps.into_glib() as u32;
        for garbage in [
            "",
            "GstEventCaps, caps=(int)3",
            "\u{1}\u{2}",
            "GstEventCaps, caps=(GstCaps)\"video/x-raw, width=(int)\"",
        ] {
            let wire = EventMessage {
                event_type: caps_type,
                seqnum: 1,
                sticky: true,
                structure: garbage.into(),
            };
            assert!(from_wire(&wire).is_err(), "{garbage:?} was accepted");
        }
    }

    #[test]
    fn seqnums_that_belong_together_stay_together() {
        gst::init().unwrap();
        let mut map = SeqnumMap::default();
        let a = map.local(10);
        let b = map.local(11);
        assert_ne!(a, b);
        assert_eq!(map.local(10), a);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever a hostile writer sends as an event, rebuilding it never panics, and an
        /// accepted event is of an allowed type.
        #[test]
        fn arbitrary_wire_events_never_panic(
            event_type in proptest::prelude::any::<u32>(),
            known in proptest::sample::select(allowed_types().to_vec()),
            use_known in proptest::prelude::any::<bool>(),
            structure in "(GstEvent[A-Za-z]{0,8}|[ -~]{0,40})(, [a-z-]{1,8}=\\([a-zA-Z]{1,10}\\)[ -~]{0,30}){0,3}",
        ) {
            gst::init().unwrap();
            let event_type = if use_known { known.into_glib() as u32 } else { event_type };
            let wire = EventMessage { event_type, seqnum: 1, sticky: false, structure };
            if let Ok(event) = from_wire(&wire) {
                proptest::prop_assert!(allowed_types().contains(&event.type_()));
            }
        }
    }
}

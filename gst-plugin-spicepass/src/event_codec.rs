// SPDX-License-Identifier: MPL-2.0
//! `gst::Event` ⇄ the protocol's generic event message.
//!
//! An event crosses as its numeric type, seqnum, running-time offset, stickiness and the
//! string form of its structure, and is rebuilt on the other side with
//! `gst_event_new_custom(type, structure)`: every event type whose structure fields have a
//! GValue serializer comes out equal (stream-start, caps, segment, tag, EOS, flush-start/stop,
//! gap, seek, QoS, navigation, latency, step, reconfigure, force-key-unit, custom events,
//! instant-rate-change...). Fields holding objects (the `GstStream` of stream-start, the
//! `GstStreamCollection` of stream-collection, `GstContext`...) cannot be serialized; such an
//! event is sent without those fields (rebuilt by the receiver if it parses) and the debug log
//! says so.

use gst::glib::prelude::*;
use gst::glib::translate::{IntoGlib, IntoGlibPtr, from_glib_full};
use spicepass_protocol::{Event as WireEvent, EventDirection};
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventDecodeError {
    #[error("event type {0:#x} is not a known GStreamer event type")]
    UnknownType(u32),
    #[error("event type {0} travels {1:?} but arrived as {2:?}")]
    WrongDirection(String, &'static str, EventDirection),
    #[error("cannot parse the structure of a {0} event: {1:?}")]
    Structure(String, String),
}

/// Serializes an event for the wire. `direction` is the way it travels here (flush events
/// travel both ways, so the type alone does not say).
pub fn to_wire(event: &gst::EventRef, direction: EventDirection) -> WireEvent {
    WireEvent {
        direction,
        event_type: event.type_().into_glib() as u32,
        seqnum: event.seqnum().into_glib(),
        running_time_offset: event.running_time_offset(),
        sticky: event.is_sticky(),
        structure: event.structure().map(serializable),
    }
}

/// Names of the fields [`to_wire`] leaves out because their values are objects (a
/// `GstStream`, a `GstStreamCollection`...) that have no string form the peer could parse.
pub fn unserializable_fields(event: &gst::EventRef) -> Vec<String> {
    event
        .structure()
        .map(|s| {
            s.iter()
                .filter(|(_, v)| is_object(v))
                .map(|(name, _)| name.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn is_object(value: &gst::glib::Value) -> bool {
    value.type_().is_a(gst::glib::Object::static_type())
}

fn serializable(structure: &gst::StructureRef) -> String {
    if !structure.iter().any(|(_, v)| is_object(v)) {
        return structure.to_string();
    }
    let mut owned = structure.to_owned();
    owned.filter_map_in_place(|_, v| (!is_object(&v)).then_some(v));
    owned.to_string()
}

/// Rebuilds an event from the wire. The direction must match the event type.
pub fn from_wire(wire: &WireEvent) -> Result<gst::Event, EventDecodeError> {
    let event_type: gst::EventType = known_event_type(wire.event_type)?;
    let expected_up = event_type.is_upstream();
    let expected_down = event_type.is_downstream();
    let ok = match wire.direction {
        EventDirection::Upstream => expected_up,
        EventDirection::Downstream => expected_down,
    };
    if !ok {
        return Err(EventDecodeError::WrongDirection(
            event_type.name().to_string(),
            if expected_up {
                "upstream"
            } else {
                "downstream"
            },
            wire.direction,
        ));
    }
    let structure = match &wire.structure {
        Some(text) => Some(gst::Structure::from_str(text).map_err(|_| {
            EventDecodeError::Structure(event_type.name().to_string(), text.clone())
        })?),
        None => None,
    };
    let mut event = new_custom(event_type, structure);
    {
        let event = event.make_mut();
        if wire.seqnum != 0 {
            // 0 is GST_SEQNUM_INVALID: keep the fresh seqnum the new event got.
            // SAFETY: `event` is a valid, writable (make_mut) event; any non-zero seqnum is valid.
            unsafe { gst::ffi::gst_event_set_seqnum(event.as_mut_ptr(), wire.seqnum) };
        }
        event.set_running_time_offset(wire.running_time_offset);
    }
    Ok(event)
}

/// Only values GStreamer 1.22 defines are accepted: a hostile peer's arbitrary number must
/// not become an event GStreamer cannot classify.
fn known_event_type(raw: u32) -> Result<gst::EventType, EventDecodeError> {
    use gst::EventType as T;
    const KNOWN: &[T] = &[
        T::FlushStart,
        T::FlushStop,
        T::StreamStart,
        T::Caps,
        T::Segment,
        T::StreamCollection,
        T::Tag,
        T::Buffersize,
        T::SinkMessage,
        T::StreamGroupDone,
        T::Eos,
        T::Toc,
        T::Protection,
        T::SegmentDone,
        T::Gap,
        T::InstantRateChange,
        T::Qos,
        T::Seek,
        T::Navigation,
        T::Latency,
        T::Step,
        T::Reconfigure,
        T::TocSelect,
        T::SelectStreams,
        T::InstantRateSyncTime,
        T::CustomUpstream,
        T::CustomDownstream,
        T::CustomDownstreamOob,
        T::CustomDownstreamSticky,
        T::CustomBoth,
        T::CustomBothOob,
    ];
    KNOWN
        .iter()
        .copied()
        .find(|t| t.into_glib() as u32 == raw)
        .ok_or(EventDecodeError::UnknownType(raw))
}

fn new_custom(event_type: gst::EventType, structure: Option<gst::Structure>) -> gst::Event {
    let structure_ptr = match structure {
        // Ownership of the structure moves into the event, as the C API expects.
        Some(s) => s.into_glib_ptr(),
        None => std::ptr::null_mut(),
    };
    // SAFETY: `event_type` is a valid GstEventType (checked against the known list) and the
    // structure is either NULL or an unparented structure we own; the call returns a new,
    // owned event.
    unsafe {
        from_glib_full(gst::ffi::gst_event_new_custom(
            event_type.into_glib(),
            structure_ptr,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: gst::Event) -> gst::Event {
        let direction = if event.is_downstream() {
            EventDirection::Downstream
        } else {
            EventDirection::Upstream
        };
        let wire = to_wire(&event, direction);
        let back = from_wire(&wire).expect("decodes");
        assert_eq!(back.type_(), event.type_());
        assert_eq!(back.seqnum(), event.seqnum());
        assert_eq!(back.running_time_offset(), event.running_time_offset());
        assert_eq!(
            back.structure().map(|s| s.to_string()),
            event.structure().map(|s| s.to_string()),
            "{:?}",
            event.type_()
        );
        back
    }

    #[test]
    fn every_serializable_event_type_round_trips() {
        gst::init().unwrap();
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(gst::ClockTime::from_seconds(3));
        segment.set_rate(1.5);
        segment.set_time(gst::ClockTime::from_seconds(2));
        let caps = gst::Caps::builder("video/x-vp8")
            .field("width", 320i32)
            .field("height", 240i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let mut tags = gst::TagList::new();
        tags.get_mut()
            .unwrap()
            .add::<gst::tags::Title>(&"a title", gst::TagMergeMode::Append);
        let events = vec![
            gst::event::StreamStart::builder("the-stream")
                .group_id(gst::GroupId::next())
                .build(),
            gst::event::Caps::new(&caps),
            gst::event::Segment::new(&segment),
            gst::event::Tag::new(tags),
            gst::event::Eos::new(),
            gst::event::FlushStart::new(),
            gst::event::FlushStop::new(true),
            gst::event::Gap::builder(gst::ClockTime::from_seconds(1))
                .duration(gst::ClockTime::from_mseconds(40))
                .build(),
            gst::event::CustomDownstream::new(
                gst::Structure::builder("x-custom").field("n", 7i32).build(),
            ),
            gst::event::InstantRateChange::new(2.0, gst::SegmentFlags::empty()),
            gst::event::Seek::new(
                1.0,
                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                gst::SeekType::Set,
                gst::ClockTime::from_seconds(5),
                gst::SeekType::None,
                gst::ClockTime::NONE,
            ),
            gst::event::Qos::new(
                gst::QOSType::Underflow,
                0.8,
                -2000,
                gst::ClockTime::from_seconds(1),
            ),
            gst::event::Navigation::new(
                gst::Structure::builder("application/x-gst-navigation")
                    .field("event", "mouse-button-press")
                    .field("button", 1i32)
                    .field("pointer_x", 10.0f64)
                    .field("pointer_y", 20.0f64)
                    .build(),
            ),
            gst::event::Latency::new(gst::ClockTime::from_mseconds(30)),
            gst::event::Step::new(gst::format::Buffers::ONE, 1.0, true, false),
            gst::event::Reconfigure::new(),
            gst_video_fku(),
            gst::event::CustomUpstream::new(
                gst::Structure::builder("x-up").field("s", "v").build(),
            ),
        ];
        for event in events {
            let back = round_trip(event.clone());
            if let gst::EventView::Segment(s) = back.view() {
                assert_eq!(s.segment(), &segment.clone().upcast());
            }
            if let gst::EventView::Caps(c) = back.view() {
                assert_eq!(c.caps(), caps.as_ref());
            }
        }
    }

    fn gst_video_fku() -> gst::Event {
        gst::event::CustomUpstream::new(
            gst::Structure::builder("GstForceKeyUnit")
                .field("running-time", u64::MAX)
                .field("all-headers", true)
                .field("count", 0u32)
                .build(),
        )
    }

    #[test]
    fn object_fields_are_left_out_and_the_rest_crosses() {
        gst::init().unwrap();
        let stream = gst::Stream::new(
            Some("the-stream"),
            None,
            gst::StreamType::VIDEO,
            gst::StreamFlags::empty(),
        );
        let event = gst::event::StreamStart::builder("the-stream")
            .group_id(gst::GroupId::next())
            .stream(stream)
            .build();
        assert_eq!(unserializable_fields(&event), vec!["stream".to_string()]);
        let back = from_wire(&to_wire(&event, EventDirection::Downstream)).expect("decodes");
        let gst::EventView::StreamStart(ss) = back.view() else {
            panic!("not a stream-start: {back:?}");
        };
        assert_eq!(ss.stream_id(), "the-stream");
        let gst::EventView::StreamStart(orig) = event.view() else {
            unreachable!()
        };
        assert_eq!(ss.group_id(), orig.group_id());
        assert!(ss.stream().is_none());
    }

    #[test]
    fn hostile_values_are_rejected() {
        gst::init().unwrap();
        let mut wire = to_wire(&gst::event::Eos::new(), EventDirection::Downstream);
        wire.event_type = 12345;
        assert!(matches!(
            from_wire(&wire),
            Err(EventDecodeError::UnknownType(12345))
        ));
        let mut wire = to_wire(&gst::event::Eos::new(), EventDirection::Downstream);
        wire.direction = EventDirection::Upstream;
        assert!(matches!(
            from_wire(&wire),
            Err(EventDecodeError::WrongDirection(..))
        ));
        let mut wire = to_wire(
            &gst::event::Latency::new(gst::ClockTime::ZERO),
            EventDirection::Upstream,
        );
        wire.structure = Some("not a structure, =(".into());
        assert!(matches!(
            from_wire(&wire),
            Err(EventDecodeError::Structure(..))
        ));
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The sticky events a writer replays to a reader that joins late.
//!
//! Keyed like GStreamer keys sticky events on a pad: by event type, and for
//! types that may be sticky several times (custom sticky events, tags with
//! different scopes…) also by structure name. Iteration follows the event
//! type number, which is GStreamer's sticky order (stream-start, caps,
//! segment, tags, …).

use std::collections::BTreeMap;

use crate::protocol::EventMessage;

/// The current sticky events, in replay order.
#[derive(Debug, Clone, Default)]
pub struct StickyEvents {
    events: BTreeMap<(u32, String), EventMessage>,
}

/// The structure name: the serialized structure up to its first `,` (or the
/// whole string when it has no fields).
fn structure_name(structure: &str) -> &str {
    structure
        .split([',', ';'])
        .next()
        .unwrap_or_default()
        .trim()
}

impl StickyEvents {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a sticky event, replacing the previous one with the same type
    /// and structure name. Non-sticky events are ignored; returns whether
    /// the event was stored.
    pub fn store(&mut self, event: &EventMessage) -> bool {
        if !event.sticky {
            return false;
        }
        let key = (
            event.event_type,
            structure_name(&event.structure).to_owned(),
        );
        self.events.insert(key, event.clone());
        true
    }

    /// Removes every stored event of `event_type` (e.g. EOS and segment on
    /// flush-stop, as GStreamer does on a pad).
    pub fn remove_type(&mut self, event_type: u32) {
        self.events.retain(|(t, _), _| *t != event_type);
    }

    /// Keeps only the events for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&EventMessage) -> bool) {
        self.events.retain(|_, e| keep(e));
    }

    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// The events to replay, in GStreamer's sticky order.
    pub fn iter(&self) -> impl Iterator<Item = &EventMessage> {
        self.events.values()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

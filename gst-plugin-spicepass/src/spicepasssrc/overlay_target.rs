// SPDX-License-Identifier: MPL-2.0
//! Finding the element downstream of `spicepasssrc` that renders the video (like playbin
//! finds its video sink's `GstVideoOverlay`): breadth-first through peer pads, into bins'
//! ghost pads and out of every element's source pads.

use std::collections::{HashSet, VecDeque};

use gst::prelude::*;
use gst_video::prelude::*;

/// Pads looked at, at most: a pipeline is small, a cycle must not loop forever.
const MAX_PADS: usize = 1024;

/// The first element downstream of `pad` that implements `GstVideoOverlay`.
pub fn find_downstream(pad: &gst::Pad) -> Option<gst::Element> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<gst::Pad> = pad.peer().into_iter().collect();
    let mut steps = 0;
    while let Some(pad) = queue.pop_front() {
        steps += 1;
        if steps > MAX_PADS {
            break;
        }
        // Into a bin: a ghost sink pad leads to its target inside.
        if let Some(ghost) = pad.downcast_ref::<gst::GhostPad>() {
            queue.extend(ghost.target());
            continue;
        }
        // Out of a bin: the internal pad of a ghost source pad leads to the ghost's peer.
        if let Some(ghost) = pad.parent().and_downcast::<gst::GhostPad>() {
            queue.extend(ghost.peer());
            continue;
        }
        let Some(element) = pad.parent_element() else {
            continue;
        };
        if !seen.insert(element.clone()) {
            continue;
        }
        if element.is::<gst_video::VideoOverlay>() {
            return Some(element);
        }
        queue.extend(element.src_pads().iter().filter_map(|p| p.peer()));
    }
    None
}

/// False if the element's overlay does not support render rectangles.
pub fn set_render_rectangle(element: &gst::Element, x: i32, y: i32, w: i32, h: i32) -> bool {
    element
        .dynamic_cast_ref::<gst_video::VideoOverlay>()
        .is_some_and(|o| o.set_render_rectangle(x, y, w, h).is_ok())
}

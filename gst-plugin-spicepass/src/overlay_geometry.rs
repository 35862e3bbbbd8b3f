// SPDX-License-Identifier: MPL-2.0
//! What the guest application told `spicepasssink` through `GstVideoOverlay`, reduced to the
//! wire's [`WindowGeometry`]. No GStreamer types: the element only forwards the calls.
//!
//! Mapping (the window handle names a guest window, meaningless on the client):
//! * `set_render_rectangle(x, y, w, h)` with `w > 0 && h > 0`: the video is shown there.
//! * a zero or negative width or height: hidden (the last position is kept).
//! * `set_window_handle(0)`: the application withdrew its window: hidden;
//!   any other handle: shown again (at the last rectangle, if it has a size).
//! * `expose()`: nothing changes, the current geometry is sent again.

use spicepass_protocol::WindowGeometry;

/// The overlay state as the guest application last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayGeometry {
    x: i32,
    y: i32,
    width: i32,
    height: i32,
    has_window: bool,
}

impl Default for OverlayGeometry {
    fn default() -> Self {
        Self {
            x: 0,
            y: 0,
            width: 0,
            height: 0,
            has_window: true,
        }
    }
}

impl OverlayGeometry {
    pub fn set_render_rectangle(&mut self, x: i32, y: i32, width: i32, height: i32) {
        self.x = x;
        self.y = y;
        self.width = width;
        self.height = height;
    }

    pub fn set_window_handle(&mut self, handle: usize) {
        self.has_window = handle != 0;
    }

    /// The geometry to send: sizes are clamped to 0 when the video is hidden.
    pub fn to_wire(self) -> WindowGeometry {
        let sized = self.width > 0 && self.height > 0;
        WindowGeometry {
            x: self.x,
            y: self.y,
            width: self.width.max(0).unsigned_abs(),
            height: self.height.max(0).unsigned_abs(),
            visible: sized && self.has_window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sized_rectangle_is_visible_where_it_was_set() {
        let mut g = OverlayGeometry::default();
        g.set_render_rectangle(10, 20, 320, 240);
        assert_eq!(
            g.to_wire(),
            WindowGeometry {
                x: 10,
                y: 20,
                width: 320,
                height: 240,
                visible: true
            }
        );
    }

    #[test]
    fn nothing_set_yet_is_hidden() {
        assert!(!OverlayGeometry::default().to_wire().visible);
    }

    #[test]
    fn window_handle_zero_hides_and_another_handle_shows_again() {
        let mut g = OverlayGeometry::default();
        g.set_render_rectangle(-5, 7, 100, 50);
        g.set_window_handle(0);
        assert!(!g.to_wire().visible);
        assert_eq!((g.to_wire().x, g.to_wire().width), (-5, 100));
        g.set_window_handle(0x4a0_0003);
        assert!(g.to_wire().visible);
    }

    #[test]
    fn negative_size_is_hidden_with_zero_size_on_the_wire() {
        let mut g = OverlayGeometry::default();
        g.set_render_rectangle(-1, -1, -1, -1);
        let w = g.to_wire();
        assert_eq!((w.width, w.height, w.visible), (0, 0, false));
    }

    proptest! {
        #[test]
        fn visible_exactly_when_sized_and_windowed(
            x: i32, y: i32, w: i32, h: i32, handle: usize
        ) {
            let mut g = OverlayGeometry::default();
            g.set_window_handle(handle);
            g.set_render_rectangle(x, y, w, h);
            let wire = g.to_wire();
            prop_assert_eq!(wire.visible, w > 0 && h > 0 && handle != 0);
            prop_assert_eq!((wire.x, wire.y), (x, y));
            prop_assert_eq!(i64::from(wire.width), i64::from(w.max(0)));
            prop_assert_eq!(i64::from(wire.height), i64::from(h.max(0)));
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The `GstVideoOverlay` vtable for `spicepasssink` (gstreamer-video 0.25 has no subclassing
//! support for this interface, so the C entry points are filled in here).

use gst::glib;
use gst::glib::subclass::prelude::*;
use gst_video::ffi;

use super::imp::SpicepassSink;

// SAFETY: the vtable entries below have exactly the C signatures of
// GstVideoOverlayInterface, and they only run on instances of SpicepassSink's type
// (GObject calls an interface's vfuncs with the implementing instance).
unsafe impl IsImplementable<SpicepassSink> for gst_video::VideoOverlay {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        let iface = iface.as_mut();
        iface.expose = Some(expose);
        iface.set_render_rectangle = Some(set_render_rectangle);
        iface.set_window_handle = Some(set_window_handle);
    }
}

/// The implementation behind a `GstVideoOverlay*` that GObject handed to one of our vfuncs.
///
/// # Safety
/// `overlay` must point to a live instance of `SpicepassSink`'s GObject type.
unsafe fn imp_of<'a>(overlay: *mut ffi::GstVideoOverlay) -> &'a SpicepassSink {
    // SAFETY: per the contract above the pointer is an instance of our subclass, whose
    // instance struct is `<SpicepassSink as ObjectSubclass>::Instance`.
    let instance = unsafe { &*(overlay as *mut <SpicepassSink as ObjectSubclass>::Instance) };
    instance.imp()
}

unsafe extern "C" fn expose(overlay: *mut ffi::GstVideoOverlay) {
    // SAFETY: only installed in SpicepassSink's interface vtable.
    unsafe { imp_of(overlay) }.overlay_expose();
}

unsafe extern "C" fn set_render_rectangle(
    overlay: *mut ffi::GstVideoOverlay,
    x: i32,
    y: i32,
    width: i32,
    height: i32,
) {
    // SAFETY: only installed in SpicepassSink's interface vtable.
    unsafe { imp_of(overlay) }.overlay_set_render_rectangle(x, y, width, height);
}

unsafe extern "C" fn set_window_handle(overlay: *mut ffi::GstVideoOverlay, handle: usize) {
    // SAFETY: only installed in SpicepassSink's interface vtable.
    unsafe { imp_of(overlay) }.overlay_set_window_handle(handle);
}

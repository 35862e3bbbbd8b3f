// SPDX-License-Identifier: MPL-2.0
//! Registration: scan the media devices (or read a fake description), then register a
//! GType per (device, codec) deriving from `GstV4l2StatelessDec`, with that device's
//! metadata and the codec's pad templates set in its class_init (like the C
//! v4l2codecs, whose element classes carry their device).

use std::ffi::{CString, c_void};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::glib::translate::{FromGlib, IntoGlib, IntoGlibPtr};
use gst::prelude::*;

use super::imp::CAT;
use crate::codec::{Codec, element_name};

/// Set to anything to register the elements against a fake device (for generating
/// documentation with gst-inspect on machines without a decoder).
pub const FAKE_DEVICES_ENV: &str = "GST_V4L2STATELESS_FAKE_DEVICES";

/// Codecs with a working element.
const SUPPORTED: [Codec; 5] = [
    Codec::Mpeg2,
    Codec::Vp8,
    Codec::Vp9,
    Codec::H264,
    Codec::Fwht,
];

/// Below Debian's v4l2codecs (PRIMARY + 1) and below software decoders: our elements
/// are never autoplugged unless a user raises them with `GST_PLUGIN_FEATURE_RANK`.
const RANK: gst::Rank = gst::Rank::NONE;

const DOC_URI: &str = "gst-plugin-v4l2stateless/README.md";

/// The device and codec an element class decodes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescription {
    pub codec: Codec,
    pub driver: String,
    pub media_device: PathBuf,
    pub video_device: PathBuf,
    pub element_name: String,
}

/// Registered element classes and their devices.
type Classes = Vec<(glib::Type, Arc<DeviceDescription>)>;

static CLASSES: LazyLock<Mutex<Classes>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The description of an instance's class (or of its nearest registered ancestor).
pub fn device_for(mut type_: glib::Type) -> Option<Arc<DeviceDescription>> {
    let classes = CLASSES.lock().unwrap();
    loop {
        if let Some((_, d)) = classes.iter().find(|(t, _)| *t == type_) {
            return Some(d.clone());
        }
        type_ = type_.parent()?;
    }
}

fn descriptions() -> Vec<DeviceDescription> {
    let mut found = Vec::new();
    let mut add = |codec: Codec, driver: &str, media: PathBuf, video: PathBuf| {
        let first = !found.iter().any(|d: &DeviceDescription| d.codec == codec);
        let node = video
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        found.push(DeviceDescription {
            codec,
            driver: driver.to_owned(),
            element_name: element_name(codec, &node, first),
            media_device: media,
            video_device: video,
        });
    };
    if std::env::var_os(FAKE_DEVICES_ENV).is_some() {
        gst::info!(
            CAT,
            "{FAKE_DEVICES_ENV} is set: registering against a fake device"
        );
        for codec in SUPPORTED {
            add(
                codec,
                "fake",
                "/dev/media-fake".into(),
                "/dev/video-fake".into(),
            );
        }
        return found;
    }
    let (decoders, skipped) = crate::media::scan::scan();
    for s in &skipped {
        gst::debug!(CAT, "skipping {}: {}", s.media_device.display(), s.reason);
    }
    if decoders.is_empty() {
        gst::info!(
            CAT,
            "no V4L2 stateless decoder found: no element registered"
        );
    }
    for decoder in decoders {
        match crate::device::probe(&decoder.video_device) {
            Ok(probed) => {
                for codec in probed.codecs {
                    if SUPPORTED.contains(&codec) {
                        add(
                            codec,
                            &decoder.driver,
                            decoder.media_device.clone(),
                            decoder.video_device.clone(),
                        );
                    } else {
                        gst::debug!(
                            CAT,
                            "{} offers {codec:?}, which has no element yet",
                            decoder.video_device.display()
                        );
                    }
                }
            }
            Err(e) => gst::debug!(CAT, "skipping {}: {e}", decoder.video_device.display()),
        }
    }
    found
}

pub fn register_all(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Rescan when decoders appear or go, or the fake-device switch changes (the registry
    // caches what we register).
    plugin.add_dependency(
        &[FAKE_DEVICES_ENV],
        &["/dev"],
        &["media"],
        gst::PluginDependencyFlags::FILE_NAME_IS_PREFIX,
    );
    for desc in descriptions() {
        if let Err(e) = register_class(plugin, desc.clone()) {
            gst::warning!(CAT, "cannot register {}: {e}", desc.element_name);
        }
    }
    Ok(())
}

/// `GstV4l2StatelessVp9Dec`, `GstV4l2StatelessVideo4vp9Dec`.
fn type_name(element_name: &str) -> String {
    let middle = element_name
        .trim_start_matches("v4l2stateless")
        .trim_end_matches("dec");
    let mut chars = middle.chars();
    let capitalised: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!("GstV4l2Stateless{capitalised}Dec")
}

fn sink_caps(codec: Codec) -> gst::Caps {
    match codec {
        // One picture per buffer, as mpegvideoparse outputs it.
        Codec::Mpeg2 => gst::Caps::builder("video/mpeg")
            .field("mpegversion", gst::IntRange::new(1, 2))
            .field("systemstream", false)
            .field("parsed", true)
            .build(),
        Codec::Vp8 => gst::Caps::builder("video/x-vp8").build(),
        Codec::Vp9 => gst::Caps::builder("video/x-vp9")
            .field("alignment", "frame")
            .build(),
        // GStreamer has no FWHT caps: one whole frame (fwht_cframe_hdr + payload) per
        // buffer, as vicodec's stateful encoder writes them.
        Codec::Fwht => gst::Caps::builder("video/x-fwht").build(),
        // One access unit per buffer in Annex-B form: h264parse converts avc input.
        // Progressive 8-bit 4:2:0 profiles (field pictures are refused).
        Codec::H264 => gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .field(
                "profile",
                gst::List::new([
                    "constrained-baseline",
                    "baseline",
                    "main",
                    "high",
                    "constrained-high",
                    "progressive-high",
                ]),
            )
            .build(),
    }
}

fn pad_templates(codec: Codec) -> Result<[gst::PadTemplate; 2], glib::BoolError> {
    let formats = || super::copy::FORMATS.iter().map(|(_, f)| *f);
    let mut src_caps = gst_video::VideoCapsBuilder::new()
        .features([gst_allocators::CAPS_FEATURE_MEMORY_DMABUF])
        .format_list(formats())
        .build();
    src_caps.merge(
        gst_video::VideoCapsBuilder::new()
            .format_list(formats())
            .build(),
    );
    Ok([
        gst::PadTemplate::new(
            "sink",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            &sink_caps(codec),
        )?,
        gst::PadTemplate::new(
            "src",
            gst::PadDirection::Src,
            gst::PadPresence::Always,
            &src_caps,
        )?,
    ])
}

fn register_class(plugin: &gst::Plugin, desc: DeviceDescription) -> Result<(), glib::BoolError> {
    let parent = super::V4l2StatelessDec::static_type();
    let name = CString::new(type_name(&desc.element_name))
        .map_err(|_| glib::bool_error!("bad type name"))?;
    let class_data = Box::into_raw(Box::new(ClassData::new(&desc)?));
    let type_ = subtype::register(parent, &name, class_data)?;
    CLASSES
        .lock()
        .unwrap()
        .push((type_, Arc::new(desc.clone())));
    gst::Element::register(Some(plugin), &desc.element_name, RANK, type_)
}

/// What class_init installs: owned C strings and pad templates. Leaked on purpose:
/// GTypes are never unregistered.
struct ClassData {
    long_name: CString,
    klass: CString,
    description: CString,
    author: CString,
    doc_uri: CString,
    templates: [gst::PadTemplate; 2],
}

impl ClassData {
    fn new(desc: &DeviceDescription) -> Result<Self, glib::BoolError> {
        let c = |s: String| CString::new(s).map_err(|_| glib::bool_error!("NUL in metadata"));
        let codec = desc.codec.short_name().to_uppercase();
        Ok(Self {
            long_name: c(format!("V4L2 stateless {codec} decoder ({})", desc.driver))?,
            klass: c("Codec/Decoder/Video/Hardware".into())?,
            description: c(format!(
                "Decodes {codec} with the V4L2 stateless decoder of {} ({}, requests on {})",
                desc.driver,
                desc.video_device.display(),
                desc.media_device.display()
            ))?,
            author: c("The mediapass developers".into())?,
            doc_uri: c(DOC_URI.into())?,
            templates: pad_templates(desc.codec)?,
        })
    }
}

/// The GType registration itself: the only FFI of the element.
mod subtype {
    use super::*;
    use gst::glib::gobject_ffi;

    pub fn register(
        parent: glib::Type,
        name: &CString,
        class_data: *mut ClassData,
    ) -> Result<glib::Type, glib::BoolError> {
        let mut query = gobject_ffi::GTypeQuery {
            type_: 0,
            type_name: std::ptr::null(),
            class_size: 0,
            instance_size: 0,
        };
        // SAFETY: `parent` is a registered, classed GType and `query` is a valid out
        // parameter.
        unsafe { gobject_ffi::g_type_query(parent.into_glib(), &mut query) };
        if query.type_ == 0 {
            return Err(glib::bool_error!("cannot query the parent type"));
        }
        let info = gobject_ffi::GTypeInfo {
            class_size: u16::try_from(query.class_size)
                .map_err(|_| glib::bool_error!("class too large"))?,
            base_init: None,
            base_finalize: None,
            class_init: Some(class_init),
            class_finalize: None,
            class_data: class_data as *const c_void,
            instance_size: u16::try_from(query.instance_size)
                .map_err(|_| glib::bool_error!("instance too large"))?,
            n_preallocs: 0,
            instance_init: None,
            value_table: std::ptr::null(),
        };
        // SAFETY: `info` describes a subclass with the parent's class and instance
        // sizes (no own fields); `name` is a valid C string; `class_data` is leaked and
        // lives for the rest of the process as class_init requires.
        let raw = unsafe {
            gobject_ffi::g_type_register_static(parent.into_glib(), name.as_ptr(), &info, 0)
        };
        if raw == 0 {
            return Err(glib::bool_error!(
                "g_type_register_static failed for {}",
                name.to_string_lossy()
            ));
        }
        // SAFETY: `raw` is the non-zero GType just registered.
        Ok(unsafe { glib::Type::from_glib(raw) })
    }

    unsafe extern "C" fn class_init(klass: glib::ffi::gpointer, data: glib::ffi::gpointer) {
        // SAFETY: GObject passes the `class_data` given at registration: a leaked
        // `ClassData` that is never freed.
        let data = unsafe { &*(data as *const ClassData) };
        let klass = klass as *mut gst::ffi::GstElementClass;
        // SAFETY: `klass` is this GType's class struct, a GstElementClass descendant;
        // the metadata strings are copied by GStreamer; pad templates are given a new
        // reference each.
        unsafe {
            gst::ffi::gst_element_class_set_metadata(
                klass,
                data.long_name.as_ptr(),
                data.klass.as_ptr(),
                data.description.as_ptr(),
                data.author.as_ptr(),
            );
            gst::ffi::gst_element_class_add_metadata(
                klass,
                c"doc-uri".as_ptr(),
                data.doc_uri.as_ptr(),
            );
            for templ in &data.templates {
                gst::ffi::gst_element_class_add_pad_template(klass, templ.clone().into_glib_ptr());
            }
        }
    }
}

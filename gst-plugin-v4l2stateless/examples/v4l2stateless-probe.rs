// SPDX-License-Identifier: MPL-2.0
//! Lists the stateless decoders this machine has, as the plugin's registration scan sees them:
//! one line per (device, codec) with the element name it would get.

use std::collections::HashSet;

use gstv4l2stateless::codec::element_name;
use gstv4l2stateless::{device, media};

fn main() {
    let (decoders, skipped) = media::scan::scan();
    for s in &skipped {
        println!("skipped {}: {}", s.media_device.display(), s.reason);
    }
    let mut named = HashSet::new();
    for d in &decoders {
        match device::probe(&d.video_device) {
            Ok(info) => {
                for codec in &info.codecs {
                    let node = d
                        .video_device
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let name = element_name(*codec, &node, named.insert(*codec));
                    println!(
                        "decoder driver={} media={} video={} mplane={} codec={} element={}",
                        d.driver,
                        d.media_device.display(),
                        d.video_device.display(),
                        info.mplane,
                        codec.short_name(),
                        name
                    );
                }
            }
            Err(e) => println!("unusable {}: {e}", d.video_device.display()),
        }
    }
    if decoders.is_empty() {
        println!("no stateless decoder found");
    }
}

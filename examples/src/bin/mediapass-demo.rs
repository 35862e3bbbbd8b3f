// SPDX-License-Identifier: MPL-2.0
//! The main demo. Until an element pair exists it shows what the built plugins register,
//! loaded from this build through `GST_PLUGIN_PATH` like any application would.

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    let registry = gst::Registry::get();
    for name in ["spicepass", "shmzero", "v4l2stateless"] {
        let plugin = registry.find_plugin(name).ok_or_else(|| {
            format!("plugin {name} not found: is GST_PLUGIN_PATH set to the build dir?")
        })?;
        let features = registry.features_by_plugin(name);
        println!(
            "{name} {} from {}: {} element(s)",
            plugin.version(),
            plugin
                .filename()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            features.len()
        );
        for f in features {
            println!("  {}", f.name());
        }
    }
    Ok(())
}

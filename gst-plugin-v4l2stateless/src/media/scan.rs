// SPDX-License-Identifier: MPL-2.0
//! Walks `/dev/media*` and returns each stateless decoder's media and video device paths.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{ioctl, topology::DecoderNode};

/// A decoder found on the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDecoder {
    pub driver: String,
    pub entity_name: String,
    pub media_device: PathBuf,
    pub video_device: PathBuf,
}

/// Why a media device was passed over; the plugin logs these so `GST_DEBUG` says why
/// nothing registered.
#[derive(Debug)]
pub struct Skipped {
    pub media_device: PathBuf,
    pub reason: String,
}

/// Resolves a char device number to its `/dev` path through sysfs (`DEVNAME=` in uevent),
/// which needs no udev daemon.
fn devnode_path(sys_root: &Path, major: u32, minor: u32) -> Option<PathBuf> {
    let uevent =
        std::fs::read_to_string(sys_root.join(format!("dev/char/{major}:{minor}/uevent"))).ok()?;
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(|name| Path::new("/dev").join(name))
}

/// Lists `/dev/media*` in numeric order.
fn media_devices(dev_root: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(dev_root) else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let index = name.strip_prefix("media")?.parse().ok()?;
            Some((index, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// Scans every media device and returns the decoders found and the devices skipped.
pub fn scan() -> (Vec<FoundDecoder>, Vec<Skipped>) {
    let mut decoders = Vec::new();
    let mut skipped = Vec::new();
    for media in media_devices(Path::new("/dev")) {
        let mut skip = |reason: String| {
            skipped.push(Skipped {
                media_device: media.clone(),
                reason,
            })
        };
        let file = match File::options().read(true).write(true).open(&media) {
            Ok(f) => f,
            Err(e) => {
                skip(format!("cannot open: {e}"));
                continue;
            }
        };
        let driver = match ioctl::driver_name(file.as_fd()) {
            Ok(d) => d,
            Err(e) => {
                skip(format!("MEDIA_IOC_DEVICE_INFO failed: {e}"));
                continue;
            }
        };
        let topology = match ioctl::topology(file.as_fd()) {
            Ok(t) => t,
            Err(e) => {
                skip(format!("MEDIA_IOC_G_TOPOLOGY failed: {e}"));
                continue;
            }
        };
        let nodes = topology.decoders();
        if nodes.is_empty() {
            skip(if topology.has_decoder_entity() {
                format!("{driver}: decoder entity has no V4L2 video interface")
            } else {
                format!("{driver}: no video decoder entity")
            });
        }
        for DecoderNode {
            entity_name,
            major,
            minor,
        } in nodes
        {
            match devnode_path(Path::new("/sys"), major, minor) {
                Some(video_device) => decoders.push(FoundDecoder {
                    driver: driver.clone(),
                    entity_name,
                    media_device: media.clone(),
                    video_device,
                }),
                None => skip(format!(
                    "{driver}: decoder {entity_name} has no device node for {major}:{minor}"
                )),
            }
        }
    }
    (decoders, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_devnodes_through_sysfs() {
        let root = std::env::temp_dir().join(format!("v4l2sl-scan-{}", std::process::id()));
        let dir = root.join("dev/char/81:3");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("uevent"), "MAJOR=81\nMINOR=3\nDEVNAME=video3\n").unwrap();
        assert_eq!(
            devnode_path(&root, 81, 3),
            Some(PathBuf::from("/dev/video3"))
        );
        assert_eq!(devnode_path(&root, 81, 4), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lists_media_devices_in_numeric_order() {
        let root = std::env::temp_dir().join(format!("v4l2sl-media-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        for name in ["media10", "media2", "video0", "mediaX"] {
            std::fs::write(root.join(name), "").unwrap();
        }
        let names: Vec<_> = media_devices(&root)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["media2", "media10"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

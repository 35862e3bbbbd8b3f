// SPDX-License-Identifier: MPL-2.0
//! Pure topology logic: which video device nodes belong to decoder entities.

/// `MEDIA_ENT_F_PROC_VIDEO_DECODER` from `<linux/media.h>`.
pub const ENT_F_PROC_VIDEO_DECODER: u32 = 0x4008;
/// `MEDIA_INTF_T_V4L_VIDEO` from `<linux/media.h>`.
pub const INTF_T_V4L_VIDEO: u32 = 0x200;
/// `MEDIA_LNK_FL_LINK_TYPE` / `MEDIA_LNK_FL_INTERFACE_LINK`.
pub const LNK_FL_LINK_TYPE: u32 = 0xf << 28;
pub const LNK_FL_INTERFACE_LINK: u32 = 1 << 28;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub id: u32,
    pub name: String,
    pub function: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    pub id: u32,
    pub intf_type: u32,
    pub major: u32,
    pub minor: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub source_id: u32,
    pub sink_id: u32,
    pub flags: u32,
}

/// What `MEDIA_IOC_G_TOPOLOGY` returned, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub entities: Vec<Entity>,
    pub interfaces: Vec<Interface>,
    pub links: Vec<Link>,
}

/// A decoder entity and the video device node (char major:minor) that drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderNode {
    pub entity_name: String,
    pub major: u32,
    pub minor: u32,
}

impl Topology {
    /// Every decoder entity with the V4L2 video interface linked to it.
    ///
    /// Interface links go from the interface (source) to the entity (sink); both directions
    /// are accepted because nothing in the uAPI promises the order.
    pub fn decoders(&self) -> Vec<DecoderNode> {
        let mut found = Vec::new();
        for entity in self
            .entities
            .iter()
            .filter(|e| e.function == ENT_F_PROC_VIDEO_DECODER)
        {
            let linked = self
                .links
                .iter()
                .filter(|l| l.flags & LNK_FL_LINK_TYPE == LNK_FL_INTERFACE_LINK)
                .filter_map(|l| {
                    if l.sink_id == entity.id {
                        Some(l.source_id)
                    } else if l.source_id == entity.id {
                        Some(l.sink_id)
                    } else {
                        None
                    }
                });
            for intf_id in linked {
                if let Some(intf) = self
                    .interfaces
                    .iter()
                    .find(|i| i.id == intf_id && i.intf_type == INTF_T_V4L_VIDEO)
                    && !found
                        .iter()
                        .any(|d: &DecoderNode| d.major == intf.major && d.minor == intf.minor)
                {
                    found.push(DecoderNode {
                        entity_name: entity.name.clone(),
                        major: intf.major,
                        minor: intf.minor,
                    });
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape visl's media device has: source, proc (decoder) and sink entities, one
    /// video interface linked to the source and sink I/O entities and to the decoder.
    fn visl_like() -> Topology {
        Topology {
            entities: vec![
                Entity {
                    id: 1,
                    name: "visl-source".into(),
                    function: 0x10001,
                },
                Entity {
                    id: 3,
                    name: "visl-proc".into(),
                    function: ENT_F_PROC_VIDEO_DECODER,
                },
                Entity {
                    id: 6,
                    name: "visl-sink".into(),
                    function: 0x10001,
                },
            ],
            interfaces: vec![Interface {
                id: 12,
                intf_type: INTF_T_V4L_VIDEO,
                major: 81,
                minor: 8,
            }],
            links: vec![
                Link {
                    source_id: 2,
                    sink_id: 4,
                    flags: 3,
                },
                Link {
                    source_id: 12,
                    sink_id: 1,
                    flags: LNK_FL_INTERFACE_LINK | 3,
                },
                Link {
                    source_id: 12,
                    sink_id: 3,
                    flags: LNK_FL_INTERFACE_LINK | 3,
                },
                Link {
                    source_id: 12,
                    sink_id: 6,
                    flags: LNK_FL_INTERFACE_LINK | 3,
                },
            ],
        }
    }

    #[test]
    fn finds_the_decoder_node() {
        assert_eq!(
            visl_like().decoders(),
            vec![DecoderNode {
                entity_name: "visl-proc".into(),
                major: 81,
                minor: 8
            }]
        );
    }

    #[test]
    fn ignores_data_links_and_non_video_interfaces() {
        let mut t = visl_like();
        t.links.retain(|l| l.sink_id != 3);
        t.links.push(Link {
            source_id: 12,
            sink_id: 3,
            flags: 3,
        }); // a data link, not an interface link
        assert!(t.decoders().is_empty());
        let mut t = visl_like();
        t.interfaces[0].intf_type = INTF_T_V4L_VIDEO + 3; // a subdev node
        assert!(t.decoders().is_empty());
    }

    #[test]
    fn encoders_are_not_decoders() {
        let mut t = visl_like();
        t.entities[1].function = 0x4007;
        assert!(t.decoders().is_empty());
    }
}

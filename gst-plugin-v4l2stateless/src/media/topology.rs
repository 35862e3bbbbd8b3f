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

/// A pad and the entity it belongs to: data links connect pads, not entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pad {
    pub id: u32,
    pub entity_id: u32,
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
    pub pads: Vec<Pad>,
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
    fn entity_of_pad(&self, pad_id: u32) -> Option<u32> {
        self.pads
            .iter()
            .find(|p| p.id == pad_id)
            .map(|p| p.entity_id)
    }

    /// Entities joined to `entity` by a data link (pad to pad), plus the entity itself.
    fn neighbourhood(&self, entity: u32) -> Vec<u32> {
        let mut ids = vec![entity];
        for link in self
            .links
            .iter()
            .filter(|l| l.flags & LNK_FL_LINK_TYPE != LNK_FL_INTERFACE_LINK)
        {
            let (Some(a), Some(b)) = (
                self.entity_of_pad(link.source_id),
                self.entity_of_pad(link.sink_id),
            ) else {
                continue;
            };
            for (this, other) in [(a, b), (b, a)] {
                if this == entity && !ids.contains(&other) {
                    ids.push(other);
                }
            }
        }
        ids
    }

    /// Whether any entity has the decoder function (for precise "why not" messages).
    pub fn has_decoder_entity(&self) -> bool {
        self.entities
            .iter()
            .any(|e| e.function == ENT_F_PROC_VIDEO_DECODER)
    }

    /// Every decoder entity with the V4L2 video interface that drives it.
    ///
    /// The mem2mem framework links the video interface to the I/O entities on either side
    /// of the decoder (source and sink), which data links connect to the decoder's pads, so
    /// the interface is searched on the decoder and its data-link neighbours. Interface
    /// links are accepted in both directions: the uAPI does not promise an order.
    pub fn decoders(&self) -> Vec<DecoderNode> {
        let mut found: Vec<DecoderNode> = Vec::new();
        for entity in self
            .entities
            .iter()
            .filter(|e| e.function == ENT_F_PROC_VIDEO_DECODER)
        {
            let near = self.neighbourhood(entity.id);
            let linked = self
                .links
                .iter()
                .filter(|l| l.flags & LNK_FL_LINK_TYPE == LNK_FL_INTERFACE_LINK)
                .filter_map(|l| {
                    if near.contains(&l.sink_id) {
                        Some(l.source_id)
                    } else if near.contains(&l.source_id) {
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
                        .any(|d| d.major == intf.major && d.minor == intf.minor)
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
        // What v4l2-mem2mem registers: source (I/O) -> proc (decoder) -> sink (I/O), pads
        // joined by data links, and the video interface linked to source and sink only.
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
            pads: vec![
                Pad {
                    id: 2,
                    entity_id: 1,
                },
                Pad {
                    id: 4,
                    entity_id: 3,
                },
                Pad {
                    id: 5,
                    entity_id: 3,
                },
                Pad {
                    id: 7,
                    entity_id: 6,
                },
            ],
            links: vec![
                Link {
                    source_id: 2,
                    sink_id: 4,
                    flags: 3,
                },
                Link {
                    source_id: 5,
                    sink_id: 7,
                    flags: 3,
                },
                Link {
                    source_id: 12,
                    sink_id: 1,
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
        t.links.truncate(2); // only the data links remain: no interface to open
        assert!(t.has_decoder_entity());
        assert!(t.decoders().is_empty());
        let mut t = visl_like();
        t.interfaces[0].intf_type = INTF_T_V4L_VIDEO + 3; // a subdev node
        assert!(t.decoders().is_empty());
    }

    #[test]
    fn encoders_are_not_decoders() {
        let mut t = visl_like();
        t.entities[1].function = 0x4007;
        assert!(!t.has_decoder_entity());
        assert!(t.decoders().is_empty());
    }
}

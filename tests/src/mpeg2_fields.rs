// SPDX-License-Identifier: MPL-2.0
//! Tiny, valid MPEG-2 streams of *field pictures*, written bit by bit.
//!
//! No encoder on the machine makes them: ffmpeg's mpeg2video codes interlaced video as
//! frame pictures only, and Debian 12's `mpeg2enc` (mjpegtools 2.1) crashes in
//! `Picture::VarSumBestMotionComp` as soon as `interlace-mode=2` (per-field coding) is
//! set. These streams are deliberately plain (grey pictures: intra macroblocks with a
//! zero DC only, predicted macroblocks without residual, zero motion vectors) but use
//! the syntax a decoder must get right for fields: both `picture_structure` orders,
//! I/P/B field pairs, and P second fields predicting from the first field of the same
//! frame (`motion_vertical_field_select`).

/// One stream: its coded frames in decode order, each a pair of fields.
#[derive(Debug, Clone)]
pub struct FieldStream {
    /// Luma width and height; the height must be a multiple of 32 (16 per field).
    pub width: u16,
    pub height: u16,
    /// The first field of every frame is the top one.
    pub top_field_first: bool,
    /// Frame coding types in decode order, `'I'`, `'P'` or `'B'` (a GOP header before
    /// every I frame; B frames take the two latest I/P frames as references).
    pub frames: &'static str,
    /// Every GOP closed (no B frame before the first I/P frame of a GOP needs the
    /// previous GOP).
    pub closed_gops: bool,
}

/// picture_structure values (ISO/IEC 13818-2 table 6-14).
const TOP_FIELD: u32 = 1;
const BOTTOM_FIELD: u32 = 2;

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, bits: u32, value: u32) {
        for i in (0..bits).rev() {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if value >> i & 1 != 0 {
                *self.bytes.last_mut().unwrap() |= 0x80 >> (self.used % 8);
            }
            self.used += 1;
        }
    }

    /// A bit string such as `"0010"` (variable-length codes as the tables print them).
    fn code(&mut self, code: &str) {
        for c in code.chars() {
            self.put(1, u32::from(c == '1'));
        }
    }

    fn align(&mut self) {
        self.used = self.used.div_ceil(8) * 8;
    }

    fn start_code(&mut self, code: u8) {
        self.align();
        self.bytes.extend_from_slice(&[0, 0, 1, code]);
        self.used += 32;
    }
}

impl FieldStream {
    /// The elementary stream (ends with a sequence end code).
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            self.width.is_multiple_of(16) && self.height.is_multiple_of(32) && self.width >= 32
        );
        let mut w = BitWriter::default();
        let low_delay = !self.frames.contains('B');
        let mut display_base = 0u32;
        let types: Vec<char> = self.frames.chars().collect();
        for (n, &kind) in types.iter().enumerate() {
            if kind == 'I' {
                self.sequence_headers(&mut w, low_delay);
                w.start_code(0xb8);
                // time_code: drop_frame, hours, minutes, marker, seconds, pictures.
                w.put(1, 0);
                w.put(5, 0);
                w.put(6, 0);
                w.put(1, 1);
                w.put(6, 0);
                w.put(6, 0);
                w.put(1, u32::from(self.closed_gops));
                w.put(1, 0);
                display_base = n as u32;
            }
            let temporal_reference = temporal_reference(&types, n) - display_base;
            let structures = if self.top_field_first {
                [TOP_FIELD, BOTTOM_FIELD]
            } else {
                [BOTTOM_FIELD, TOP_FIELD]
            };
            for (second, structure) in structures.into_iter().enumerate() {
                // An I frame's second field is a P field predicting from the first.
                let field_kind = if kind == 'I' && second == 1 {
                    'P'
                } else {
                    kind
                };
                self.field_picture(
                    &mut w,
                    field_kind,
                    temporal_reference,
                    structure,
                    second == 1,
                );
            }
        }
        w.start_code(0xb7);
        w.bytes
    }

    fn sequence_headers(&self, w: &mut BitWriter, low_delay: bool) {
        w.start_code(0xb3);
        w.put(12, u32::from(self.width));
        w.put(12, u32::from(self.height));
        w.put(4, 1); // aspect_ratio_information: square samples
        w.put(4, 3); // frame_rate_code: 25 Hz
        w.put(18, 2500); // bit_rate in 400 bit/s units
        w.put(1, 1); // marker
        w.put(10, 16); // vbv_buffer_size
        w.put(1, 0); // constrained_parameters_flag
        w.put(1, 0); // load_intra_quantiser_matrix
        w.put(1, 0); // load_non_intra_quantiser_matrix
        w.start_code(0xb5);
        w.put(4, 1); // sequence extension
        w.put(8, 0x48); // Main profile, Main level
        w.put(1, 0); // progressive_sequence: interlaced
        w.put(2, 1); // chroma_format 4:2:0
        w.put(2, 0);
        w.put(2, 0);
        w.put(12, 0);
        w.put(1, 1); // marker
        w.put(8, 0);
        w.put(1, u32::from(low_delay));
        w.put(2, 0);
        w.put(5, 0);
    }

    fn field_picture(
        &self,
        w: &mut BitWriter,
        kind: char,
        temporal_reference: u32,
        structure: u32,
        second_field: bool,
    ) {
        w.start_code(0x00);
        w.put(10, temporal_reference & 0x3ff);
        w.put(3, coding_type(kind));
        w.put(16, 0xffff); // vbv_delay: variable bit rate
        if kind != 'I' {
            w.put(1, 0); // full_pel_forward_vector
            w.put(3, 7); // forward_f_code: MPEG-1 field, 7 in MPEG-2
        }
        if kind == 'B' {
            w.put(1, 0);
            w.put(3, 7);
        }
        w.put(1, 0); // extra_bit_picture
        w.start_code(0xb5);
        w.put(4, 8); // picture coding extension
        let forward = if kind == 'I' { 15 } else { 1 };
        let backward = if kind == 'B' { 1 } else { 15 };
        for f_code in [forward, forward, backward, backward] {
            w.put(4, f_code);
        }
        w.put(2, 0); // intra_dc_precision: 8 bits
        w.put(2, structure);
        w.put(1, 0); // top_field_first: 0 in field pictures
        w.put(1, 0); // frame_pred_frame_dct: 0 in field pictures
        w.put(1, 0); // concealment_motion_vectors
        w.put(1, 0); // q_scale_type
        w.put(1, 0); // intra_vlc_format
        w.put(1, 0); // alternate_scan
        w.put(1, 0); // repeat_first_field
        w.put(1, 0); // chroma_420_type (= progressive_frame)
        w.put(1, 0); // progressive_frame
        w.put(1, 0); // composite_display_flag

        // A second P field predicts from the first field of its own frame (the other
        // parity); every other predicted field from the same parity of the reference.
        let own_parity = u32::from(structure == BOTTOM_FIELD);
        let forward_select = if second_field && kind == 'P' {
            1 - own_parity
        } else {
            own_parity
        };
        let mb_width = u32::from(self.width) / 16;
        let mb_rows = u32::from(self.height) / 32;
        for row in 0..mb_rows {
            w.start_code(row as u8 + 1);
            w.put(5, 8); // quantiser_scale_code
            w.put(1, 0); // extra_bit_slice
            match kind {
                'I' => {
                    for _ in 0..mb_width {
                        intra_macroblock(w, 1);
                    }
                }
                // The first and last macroblocks of a slice are coded, the others
                // skipped (zero motion, no residual).
                _ => {
                    predicted_macroblock(w, 1, kind, forward_select, own_parity);
                    predicted_macroblock(w, mb_width - 1, kind, forward_select, own_parity);
                }
            }
        }
    }
}

/// Display position of frame `n` of a decode order: an I/P frame comes after the B
/// frames that follow it in decode order.
fn temporal_reference(types: &[char], n: usize) -> u32 {
    if types[n] == 'B' {
        return n as u32 - 1;
    }
    let following_b = types[n + 1..].iter().take_while(|&&t| t == 'B').count();
    (n + following_b) as u32
}

fn coding_type(kind: char) -> u32 {
    match kind {
        'I' => 1,
        'P' => 2,
        'B' => 3,
        other => panic!("frame type {other:?}"),
    }
}

/// macroblock_address_increment codes (table B.1) for 1..=5.
fn address_increment(w: &mut BitWriter, increment: u32) {
    w.code(match increment {
        1 => "1",
        2 => "011",
        3 => "010",
        4 => "0011",
        5 => "0010",
        _ => panic!("address increment {increment} not in this writer's table"),
    });
}

/// Intra macroblock: six blocks with a zero DC difference and end of block.
fn intra_macroblock(w: &mut BitWriter, increment: u32) {
    address_increment(w, increment);
    w.code("1"); // macroblock_type (table B.2): intra
    for block in 0..6 {
        // dct_dc_size 0 (tables B.12 luma, B.13 chroma), then EOB (table B.14).
        w.code(if block < 4 { "100" } else { "00" });
        w.code("10");
    }
}

/// A forward (P) or bidirectional (B) field-predicted macroblock without residual,
/// zero motion vectors.
fn predicted_macroblock(
    w: &mut BitWriter,
    increment: u32,
    kind: char,
    forward_select: u32,
    own_parity: u32,
) {
    address_increment(w, increment);
    // macroblock_type: P "MC, not coded" (table B.3), B "interpolated, not coded" (B.4).
    w.code(if kind == 'P' { "001" } else { "10" });
    w.code("01"); // field_motion_type: field-based prediction
    w.put(1, forward_select);
    w.code("11"); // motion_code 0, horizontal and vertical
    if kind == 'B' {
        w.put(1, own_parity);
        w.code("11");
    }
}

/// The stream the state machine's unit tests decode (a committed copy):
/// `I P B B P B B | I B B P`, bottom field first, open GOPs.
pub const UNIT_TEST_STREAM: FieldStream = FieldStream {
    width: 64,
    height: 64,
    top_field_first: false,
    frames: "IPBBPBBIBBP",
    closed_gops: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// (picture_coding_type, picture_structure) of every picture, by scanning start
    /// codes (the writer's own output, independent of any parser under test).
    fn pictures(stream: &[u8]) -> Vec<(u8, u8)> {
        let mut out = Vec::new();
        let mut coding_type = 0;
        for i in 0..stream.len().saturating_sub(6) {
            if stream[i..i + 3] != [0, 0, 1] {
                continue;
            }
            match stream[i + 3] {
                0x00 => coding_type = stream[i + 5] >> 3 & 7,
                0xb5 if stream[i + 4] >> 4 == 8 => out.push((coding_type, stream[i + 6] & 3)),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn every_frame_is_two_fields_in_the_asked_order() {
        let stream = FieldStream {
            width: 64,
            height: 64,
            top_field_first: false,
            frames: "IPBB",
            closed_gops: false,
        }
        .encode();
        assert_eq!(
            pictures(&stream),
            [
                (1, 2),
                (2, 1),
                (2, 2),
                (2, 1),
                (3, 2),
                (3, 1),
                (3, 2),
                (3, 1)
            ]
        );
    }

    /// The unit tests of the MPEG-2 state machine decode a copy of this stream; keep it
    /// current (`MPEG2_FIELDS_BLESS=1` rewrites it).
    #[test]
    fn state_machine_testdata_is_this_writers_output() {
        let path = crate::workspace_root()
            .join("gst-plugin-v4l2stateless/src/stateless/testdata/fields-ipbb.m2v");
        let stream = UNIT_TEST_STREAM.encode();
        if std::env::var_os("MPEG2_FIELDS_BLESS").is_some() {
            std::fs::write(&path, &stream).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), stream, "{}", path.display());
    }

    /// ffmpeg's MPEG-2 decoder (an independent one) decodes every frame of streams in
    /// both field orders, with and without B frames, and reports no error.
    #[test]
    fn ffmpeg_decodes_every_frame_without_error() {
        for (n, stream) in [
            UNIT_TEST_STREAM,
            FieldStream {
                width: 80,
                height: 96,
                top_field_first: true,
                frames: "IPPPIPP",
                closed_gops: true,
            },
        ]
        .iter()
        .enumerate()
        {
            let path =
                std::env::temp_dir().join(format!("mpeg2-fields-{}-{n}.m2v", std::process::id()));
            std::fs::write(&path, stream.encode()).unwrap();
            let out = std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i"])
                .arg(&path)
                .args(["-f", "framemd5", "-"])
                .output()
                .expect("ffmpeg runs (tools/setup.sh installs it)");
            std::fs::remove_file(&path).unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.is_empty(),
                "{stream:?}: {stderr}"
            );
            let frames = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count();
            assert_eq!(frames, stream.frames.len(), "{stream:?}");
        }
    }

    #[test]
    fn temporal_references_follow_display_order() {
        let types: Vec<char> = "IPBBPBB".chars().collect();
        let tr: Vec<u32> = (0..types.len())
            .map(|n| temporal_reference(&types, n))
            .collect();
        assert_eq!(tr, [0, 3, 1, 2, 6, 4, 5]);
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The header syntax of 6.2.2 – 6.2.4. Every `parse` takes the bytes after the start
//! code value (extensions: starting with `extension_start_code_identifier`).

use super::Mpeg2Error;
use crate::bitreader::BitReader;

fn marker(r: &mut BitReader, after: &'static str) -> Result<(), Mpeg2Error> {
    if r.bit("marker_bit")? {
        Ok(())
    } else {
        Err(Mpeg2Error::MarkerBit(after))
    }
}

fn matrix(r: &mut BitReader, field: &'static str) -> Result<[u8; 64], Mpeg2Error> {
    let mut m = [0u8; 64];
    for value in &mut m {
        *value = r.bits_u8(8, field)?;
    }
    // A zero entry would divide by zero in inverse quantisation (6.3.11 forbids it).
    if m.contains(&0) {
        return Err(Mpeg2Error::Invalid { field, value: 0 });
    }
    Ok(m)
}

fn optional_matrix(
    r: &mut BitReader,
    load: &'static str,
    field: &'static str,
) -> Result<Option<[u8; 64]>, Mpeg2Error> {
    if r.bit(load)? {
        Ok(Some(matrix(r, field)?))
    } else {
        Ok(None)
    }
}

/// `sequence_header()` (6.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceHeader {
    pub horizontal_size_value: u16,
    pub vertical_size_value: u16,
    pub aspect_ratio_information: u8,
    pub frame_rate_code: u8,
    pub bit_rate_value: u32,
    pub vbv_buffer_size_value: u16,
    pub constrained_parameters_flag: bool,
    /// Loaded matrices, zig-zag order.
    pub intra_quantiser_matrix: Option<[u8; 64]>,
    pub non_intra_quantiser_matrix: Option<[u8; 64]>,
}

impl SequenceHeader {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        let horizontal_size_value = r.bits_u16(12, "horizontal_size_value")?;
        let vertical_size_value = r.bits_u16(12, "vertical_size_value")?;
        let aspect_ratio_information = r.bits_u8(4, "aspect_ratio_information")?;
        let frame_rate_code = r.bits_u8(4, "frame_rate_code")?;
        let bit_rate_value = r.bits(18, "bit_rate_value")?;
        marker(&mut r, "bit_rate_value")?;
        let vbv_buffer_size_value = r.bits_u16(10, "vbv_buffer_size_value")?;
        let constrained_parameters_flag = r.bit("constrained_parameters_flag")?;
        let intra_quantiser_matrix = optional_matrix(
            &mut r,
            "load_intra_quantiser_matrix",
            "intra_quantiser_matrix",
        )?;
        let non_intra_quantiser_matrix = optional_matrix(
            &mut r,
            "load_non_intra_quantiser_matrix",
            "non_intra_quantiser_matrix",
        )?;
        if horizontal_size_value == 0 || vertical_size_value == 0 {
            return Err(Mpeg2Error::Invalid {
                field: "horizontal_size_value/vertical_size_value",
                value: 0,
            });
        }
        Ok(Self {
            horizontal_size_value,
            vertical_size_value,
            aspect_ratio_information,
            frame_rate_code,
            bit_rate_value,
            vbv_buffer_size_value,
            constrained_parameters_flag,
            intra_quantiser_matrix,
            non_intra_quantiser_matrix,
        })
    }

    /// `horizontal_size` (`v4l2_ctrl_mpeg2_sequence.horizontal_size`).
    pub fn horizontal_size(&self, ext: Option<&SequenceExtension>) -> u32 {
        u32::from(self.horizontal_size_value)
            | ext.map_or(0, |e| u32::from(e.horizontal_size_extension) << 12)
    }

    /// `vertical_size` (`v4l2_ctrl_mpeg2_sequence.vertical_size`).
    pub fn vertical_size(&self, ext: Option<&SequenceExtension>) -> u32 {
        u32::from(self.vertical_size_value)
            | ext.map_or(0, |e| u32::from(e.vertical_size_extension) << 12)
    }

    /// `vbv_buffer_size` in units of 16 kbit (`v4l2_ctrl_mpeg2_sequence.vbv_buffer_size`).
    pub fn vbv_buffer_size(&self, ext: Option<&SequenceExtension>) -> u32 {
        u32::from(self.vbv_buffer_size_value)
            | ext.map_or(0, |e| u32::from(e.vbv_buffer_size_extension) << 10)
    }

    /// `bit_rate` in units of 400 bit/s.
    pub fn bit_rate(&self, ext: Option<&SequenceExtension>) -> u32 {
        self.bit_rate_value | ext.map_or(0, |e| u32::from(e.bit_rate_extension) << 18)
    }
}

/// `sequence_extension()` (6.2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceExtension {
    pub profile_and_level_indication: u8,
    pub progressive_sequence: bool,
    /// 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4.
    pub chroma_format: u8,
    pub horizontal_size_extension: u8,
    pub vertical_size_extension: u8,
    pub bit_rate_extension: u16,
    pub vbv_buffer_size_extension: u8,
    pub low_delay: bool,
    pub frame_rate_extension_n: u8,
    pub frame_rate_extension_d: u8,
}

impl SequenceExtension {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        r.skip(4, "extension_start_code_identifier")?;
        let profile_and_level_indication = r.bits_u8(8, "profile_and_level_indication")?;
        let progressive_sequence = r.bit("progressive_sequence")?;
        let chroma_format = r.bits_u8(2, "chroma_format")?;
        if chroma_format == 0 {
            return Err(Mpeg2Error::Invalid {
                field: "chroma_format",
                value: 0,
            });
        }
        let horizontal_size_extension = r.bits_u8(2, "horizontal_size_extension")?;
        let vertical_size_extension = r.bits_u8(2, "vertical_size_extension")?;
        let bit_rate_extension = r.bits_u16(12, "bit_rate_extension")?;
        marker(&mut r, "bit_rate_extension")?;
        let vbv_buffer_size_extension = r.bits_u8(8, "vbv_buffer_size_extension")?;
        let low_delay = r.bit("low_delay")?;
        let frame_rate_extension_n = r.bits_u8(2, "frame_rate_extension_n")?;
        let frame_rate_extension_d = r.bits_u8(5, "frame_rate_extension_d")?;
        Ok(Self {
            profile_and_level_indication,
            progressive_sequence,
            chroma_format,
            horizontal_size_extension,
            vertical_size_extension,
            bit_rate_extension,
            vbv_buffer_size_extension,
            low_delay,
            frame_rate_extension_n,
            frame_rate_extension_d,
        })
    }
}

/// `sequence_display_extension()` (6.2.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceDisplayExtension {
    pub video_format: u8,
    pub colour_description: bool,
    pub colour_primaries: u8,
    pub transfer_characteristics: u8,
    pub matrix_coefficients: u8,
    pub display_horizontal_size: u16,
    pub display_vertical_size: u16,
}

impl SequenceDisplayExtension {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        r.skip(4, "extension_start_code_identifier")?;
        let video_format = r.bits_u8(3, "video_format")?;
        let colour_description = r.bit("colour_description")?;
        // Unspecified (E.2.1 / Table 6-7 "reserved → assume 1/BT.709") when absent.
        let (mut colour_primaries, mut transfer_characteristics, mut matrix_coefficients) =
            (1, 1, 1);
        if colour_description {
            colour_primaries = r.bits_u8(8, "colour_primaries")?;
            transfer_characteristics = r.bits_u8(8, "transfer_characteristics")?;
            matrix_coefficients = r.bits_u8(8, "matrix_coefficients")?;
        }
        let display_horizontal_size = r.bits_u16(14, "display_horizontal_size")?;
        marker(&mut r, "display_horizontal_size")?;
        let display_vertical_size = r.bits_u16(14, "display_vertical_size")?;
        Ok(Self {
            video_format,
            colour_description,
            colour_primaries,
            transfer_characteristics,
            matrix_coefficients,
            display_horizontal_size,
            display_vertical_size,
        })
    }
}

/// `quant_matrix_extension()` (6.2.3.2); matrices in zig-zag order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantMatrixExtension {
    pub intra_quantiser_matrix: Option<[u8; 64]>,
    pub non_intra_quantiser_matrix: Option<[u8; 64]>,
    pub chroma_intra_quantiser_matrix: Option<[u8; 64]>,
    pub chroma_non_intra_quantiser_matrix: Option<[u8; 64]>,
}

impl QuantMatrixExtension {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        r.skip(4, "extension_start_code_identifier")?;
        Ok(Self {
            intra_quantiser_matrix: optional_matrix(
                &mut r,
                "load_intra_quantiser_matrix",
                "intra_quantiser_matrix",
            )?,
            non_intra_quantiser_matrix: optional_matrix(
                &mut r,
                "load_non_intra_quantiser_matrix",
                "non_intra_quantiser_matrix",
            )?,
            chroma_intra_quantiser_matrix: optional_matrix(
                &mut r,
                "load_chroma_intra_quantiser_matrix",
                "chroma_intra_quantiser_matrix",
            )?,
            chroma_non_intra_quantiser_matrix: optional_matrix(
                &mut r,
                "load_chroma_non_intra_quantiser_matrix",
                "chroma_non_intra_quantiser_matrix",
            )?,
        })
    }
}

/// `group_of_pictures_header()` (6.2.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOfPictures {
    /// The 25-bit `time_code` as coded.
    pub time_code: u32,
    pub drop_frame_flag: bool,
    pub time_code_hours: u8,
    pub time_code_minutes: u8,
    pub time_code_seconds: u8,
    pub time_code_pictures: u8,
    pub closed_gop: bool,
    pub broken_link: bool,
}

impl GroupOfPictures {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        let time_code = r.bits(25, "time_code")?;
        if time_code & (1 << 12) == 0 {
            return Err(Mpeg2Error::MarkerBit("time_code_minutes"));
        }
        Ok(Self {
            time_code,
            drop_frame_flag: time_code >> 24 != 0,
            time_code_hours: ((time_code >> 19) & 0x1f) as u8,
            time_code_minutes: ((time_code >> 13) & 0x3f) as u8,
            time_code_seconds: ((time_code >> 6) & 0x3f) as u8,
            time_code_pictures: (time_code & 0x3f) as u8,
            closed_gop: r.bit("closed_gop")?,
            broken_link: r.bit("broken_link")?,
        })
    }
}

/// `picture_coding_type` (Table 6-12); values as `V4L2_MPEG2_PIC_CODING_TYPE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureCodingType {
    I = 1,
    P = 2,
    B = 3,
    /// MPEG-1 DC intra-coded (D) picture.
    D = 4,
}

/// `picture_header()` (6.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureHeader {
    pub temporal_reference: u16,
    pub picture_coding_type: PictureCodingType,
    pub vbv_delay: u16,
    pub full_pel_forward_vector: bool,
    pub forward_f_code: u8,
    pub full_pel_backward_vector: bool,
    pub backward_f_code: u8,
}

impl PictureHeader {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        let temporal_reference = r.bits_u16(10, "temporal_reference")?;
        let picture_coding_type = match r.bits(3, "picture_coding_type")? {
            1 => PictureCodingType::I,
            2 => PictureCodingType::P,
            3 => PictureCodingType::B,
            4 => PictureCodingType::D,
            value => {
                return Err(Mpeg2Error::Invalid {
                    field: "picture_coding_type",
                    value,
                });
            }
        };
        let vbv_delay = r.bits_u16(16, "vbv_delay")?;
        let mut h = Self {
            temporal_reference,
            picture_coding_type,
            vbv_delay,
            full_pel_forward_vector: false,
            forward_f_code: 0,
            full_pel_backward_vector: false,
            backward_f_code: 0,
        };
        if matches!(
            picture_coding_type,
            PictureCodingType::P | PictureCodingType::B
        ) {
            h.full_pel_forward_vector = r.bit("full_pel_forward_vector")?;
            h.forward_f_code = r.bits_u8(3, "forward_f_code")?;
        }
        if picture_coding_type == PictureCodingType::B {
            h.full_pel_backward_vector = r.bit("full_pel_backward_vector")?;
            h.backward_f_code = r.bits_u8(3, "backward_f_code")?;
        }
        // extra_information_picture is reserved: skipped, bounded by the data.
        while r.bit("extra_bit_picture")? {
            r.skip(8, "extra_information_picture")?;
        }
        Ok(h)
    }
}

/// `picture_coding_extension()` (6.2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureCodingExtension {
    /// `f_code[s][t]`: s = 0 forward / 1 backward, t = 0 horizontal / 1 vertical.
    pub f_code: [[u8; 2]; 2],
    pub intra_dc_precision: u8,
    /// 1 = top field, 2 = bottom field, 3 = frame picture.
    pub picture_structure: u8,
    pub top_field_first: bool,
    pub frame_pred_frame_dct: bool,
    pub concealment_motion_vectors: bool,
    pub q_scale_type: bool,
    pub intra_vlc_format: bool,
    pub alternate_scan: bool,
    pub repeat_first_field: bool,
    pub chroma_420_type: bool,
    pub progressive_frame: bool,
    pub composite_display_flag: bool,
    pub v_axis: bool,
    pub field_sequence: u8,
    pub sub_carrier: bool,
    pub burst_amplitude: u8,
    pub sub_carrier_phase: u8,
}

impl PictureCodingExtension {
    pub fn parse(body: &[u8]) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        r.skip(4, "extension_start_code_identifier")?;
        let mut f_code = [[0u8; 2]; 2];
        for row in &mut f_code {
            for code in row.iter_mut() {
                *code = r.bits_u8(4, "f_code")?;
            }
        }
        let intra_dc_precision = r.bits_u8(2, "intra_dc_precision")?;
        let picture_structure = r.bits_u8(2, "picture_structure")?;
        if picture_structure == 0 {
            return Err(Mpeg2Error::Invalid {
                field: "picture_structure",
                value: 0,
            });
        }
        let mut e = Self {
            f_code,
            intra_dc_precision,
            picture_structure,
            top_field_first: r.bit("top_field_first")?,
            frame_pred_frame_dct: r.bit("frame_pred_frame_dct")?,
            concealment_motion_vectors: r.bit("concealment_motion_vectors")?,
            q_scale_type: r.bit("q_scale_type")?,
            intra_vlc_format: r.bit("intra_vlc_format")?,
            alternate_scan: r.bit("alternate_scan")?,
            repeat_first_field: r.bit("repeat_first_field")?,
            chroma_420_type: r.bit("chroma_420_type")?,
            progressive_frame: r.bit("progressive_frame")?,
            composite_display_flag: r.bit("composite_display_flag")?,
            v_axis: false,
            field_sequence: 0,
            sub_carrier: false,
            burst_amplitude: 0,
            sub_carrier_phase: 0,
        };
        if e.composite_display_flag {
            e.v_axis = r.bit("v_axis")?;
            e.field_sequence = r.bits_u8(3, "field_sequence")?;
            e.sub_carrier = r.bit("sub_carrier")?;
            e.burst_amplitude = r.bits_u8(7, "burst_amplitude")?;
            e.sub_carrier_phase = r.bits_u8(8, "sub_carrier_phase")?;
        }
        Ok(e)
    }

    /// Whether this is a field picture (`picture_structure` top or bottom field).
    pub fn is_field_picture(&self) -> bool {
        self.picture_structure != 3
    }
}

/// `slice()` header (6.2.4), up to the first macroblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceHeader {
    pub slice_vertical_position: u8,
    pub slice_vertical_position_extension: u8,
    pub quantiser_scale_code: u8,
    pub intra_slice_flag: bool,
    pub intra_slice: bool,
    /// Macroblock row of the slice (`mb_row`).
    pub mb_row: u32,
    /// Bits from the end of the start code to the first macroblock.
    pub header_bit_size: u32,
}

impl SliceHeader {
    /// `code` is the slice start code value (1..=0xAF), `vertical_size` the sequence's.
    /// Scalable (data-partitioned) streams are not supported: `priority_breakpoint`
    /// is never read.
    pub fn parse(code: u8, body: &[u8], vertical_size: u32) -> Result<Self, Mpeg2Error> {
        let mut r = BitReader::new(body);
        let mut slice_vertical_position_extension = 0;
        if vertical_size > 2800 {
            slice_vertical_position_extension =
                r.bits_u8(3, "slice_vertical_position_extension")?;
        }
        let quantiser_scale_code = r.bits_u8(5, "quantiser_scale_code")?;
        if quantiser_scale_code == 0 {
            return Err(Mpeg2Error::Invalid {
                field: "quantiser_scale_code",
                value: 0,
            });
        }
        let mut intra_slice_flag = false;
        let mut intra_slice = false;
        if r.peek(1, "intra_slice_flag")? == 1 {
            intra_slice_flag = r.bit("intra_slice_flag")?;
            intra_slice = r.bit("intra_slice")?;
            r.skip(7, "reserved_bits")?;
            while r.bit("extra_bit_slice")? {
                r.skip(8, "extra_information_slice")?;
            }
        } else {
            r.skip(1, "extra_bit_slice")?;
        }
        Ok(Self {
            slice_vertical_position: code,
            slice_vertical_position_extension,
            quantiser_scale_code,
            intra_slice_flag,
            intra_slice,
            mb_row: (u32::from(slice_vertical_position_extension) << 7) + u32::from(code) - 1,
            header_bit_size: r.position() as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpeg2::{Mpeg2Parser, Mpeg2Unit};
    use crate::test_bits::BitWriter;

    #[test]
    fn quant_matrix_extension_loads_chroma_matrices() {
        let mut w = BitWriter::default();
        w.put(8, 0xb5).put(4, 3);
        w.flag(false).flag(false).flag(true);
        for i in 0..64 {
            w.put(8, 100 + i);
        }
        w.flag(true);
        for i in 0..64 {
            w.put(8, 1 + i);
        }
        let mut parser = Mpeg2Parser::new();
        let unit = parser.parse_unit(&w.bytes()).unwrap();
        let Mpeg2Unit::QuantMatrixExtension(ext) = unit else {
            panic!("not a quant matrix extension: {unit:?}");
        };
        assert!(ext.intra_quantiser_matrix.is_none());
        assert_eq!(ext.chroma_intra_quantiser_matrix.unwrap()[63], 163);
        let q = parser.quant_matrices();
        assert_eq!(q.chroma_intra_quantiser_matrix[0], 100);
        assert_eq!(q.chroma_non_intra_quantiser_matrix[1], 2);
        assert_eq!(q.intra_quantiser_matrix[0], 8, "luma keeps the default");
    }

    #[test]
    fn field_picture_coding_extension() {
        let mut w = BitWriter::default();
        w.put(4, 8).put(4, 1).put(4, 2).put(4, 3).put(4, 4);
        w.put(2, 2).put(2, 2); // intra_dc_precision 10 bit, bottom field
        w.put(10, 0b01_0101_0100);
        let e = PictureCodingExtension::parse(&w.bytes()).unwrap();
        assert_eq!(e.f_code, [[1, 2], [3, 4]]);
        assert_eq!((e.intra_dc_precision, e.picture_structure), (2, 2));
        assert!(e.is_field_picture());
        assert!(!e.top_field_first && e.frame_pred_frame_dct && e.q_scale_type);
    }

    #[test]
    fn slice_with_intra_slice_and_extra_information() {
        let mut w = BitWriter::default();
        w.put(5, 7).flag(true).flag(true).put(7, 0);
        w.flag(true).put(8, 0xaa).flag(false); // one extra_information_slice
        w.put(6, 0b10_1010); // macroblock data
        let s = SliceHeader::parse(0x10, &w.bytes(), 576).unwrap();
        assert_eq!(s.quantiser_scale_code, 7);
        assert!(s.intra_slice_flag && s.intra_slice);
        assert_eq!(s.header_bit_size, 5 + 2 + 7 + 9 + 1);
        assert_eq!(s.mb_row, 15);
        // vertical_size > 2800 adds the 3-bit position extension.
        let mut w = BitWriter::default();
        w.put(3, 2).put(5, 1).flag(false);
        let s = SliceHeader::parse(1, &w.bytes(), 2880).unwrap();
        assert_eq!(s.mb_row, 256);
    }

    #[test]
    fn errors_name_the_field() {
        // Marker bit after bit_rate_value cleared.
        let mut w = BitWriter::default();
        w.put(12, 720)
            .put(12, 576)
            .put(4, 2)
            .put(4, 3)
            .put(18, 1000)
            .flag(false);
        w.put(16, 0);
        assert_eq!(
            SequenceHeader::parse(&w.bytes()),
            Err(Mpeg2Error::MarkerBit("bit_rate_value"))
        );
        let err = SequenceHeader::parse(&[0x2d, 0x02]).unwrap_err();
        assert!(err.to_string().contains("vertical_size_value"), "{err}");
        assert_eq!(
            Mpeg2Parser::new().parse_unit(&[0x01, 0x08]),
            Err(Mpeg2Error::SliceWithoutSequence)
        );
        assert!(matches!(
            PictureHeader::parse(&[0, 0]),
            Err(Mpeg2Error::Invalid {
                field: "picture_coding_type",
                value: 0
            })
        ));
    }
}

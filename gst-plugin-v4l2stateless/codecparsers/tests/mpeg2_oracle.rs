// SPDX-License-Identifier: MPL-2.0
//! MPEG-2 parser against ffmpeg's `trace_headers` on streams made by ffmpeg's
//! mpeg2video encoder (progressive, interlaced, 4:2:2 with display extension and
//! slice_vertical_position_extension, custom quantiser matrices).

mod ffmpeg_trace;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ffmpeg_trace::{base_name, require_tool, run, trace_headers, work_dir};
use mediapass_codecparsers::mpeg2::{Mpeg2Parser, Mpeg2Unit, units};

const NOT_COMPARED: &[&str] = &[
    "sequence_header_code",
    "extension_start_code",
    "group_start_code",
    "picture_start_code",
    "marker_bit",
    "extra_bit_picture",
    "extra_bit_slice",
    "reserved_bits",
    // Compared through the matrices they guard.
    "load_intra_quantiser_matrix",
    "load_non_intra_quantiser_matrix",
    "load_chroma_intra_quantiser_matrix",
    "load_chroma_non_intra_quantiser_matrix",
];

fn set(m: &mut HashMap<String, Vec<i64>>, name: impl Into<String>, value: impl Into<i64>) {
    m.insert(name.into(), vec![value.into()]);
}

fn put_matrix(m: &mut HashMap<String, Vec<i64>>, name: &str, matrix: &Option<[u8; 64]>) {
    if let Some(matrix) = matrix {
        for (i, v) in matrix.iter().enumerate() {
            set(m, format!("{name}[{i}]"), *v);
        }
    }
}

fn our_fields(unit: &Mpeg2Unit) -> HashMap<String, Vec<i64>> {
    let mut m = HashMap::new();
    match unit {
        Mpeg2Unit::SequenceHeader(s) => {
            set(&mut m, "horizontal_size_value", s.horizontal_size_value);
            set(&mut m, "vertical_size_value", s.vertical_size_value);
            set(
                &mut m,
                "aspect_ratio_information",
                s.aspect_ratio_information,
            );
            set(&mut m, "frame_rate_code", s.frame_rate_code);
            set(&mut m, "bit_rate_value", s.bit_rate_value);
            set(&mut m, "vbv_buffer_size_value", s.vbv_buffer_size_value);
            set(
                &mut m,
                "constrained_parameters_flag",
                s.constrained_parameters_flag,
            );
            put_matrix(&mut m, "intra_quantiser_matrix", &s.intra_quantiser_matrix);
            put_matrix(
                &mut m,
                "non_intra_quantiser_matrix",
                &s.non_intra_quantiser_matrix,
            );
        }
        Mpeg2Unit::SequenceExtension(e) => {
            set(&mut m, "extension_start_code_identifier", 1);
            set(
                &mut m,
                "profile_and_level_indication",
                e.profile_and_level_indication,
            );
            set(&mut m, "progressive_sequence", e.progressive_sequence);
            set(&mut m, "chroma_format", e.chroma_format);
            set(
                &mut m,
                "horizontal_size_extension",
                e.horizontal_size_extension,
            );
            set(&mut m, "vertical_size_extension", e.vertical_size_extension);
            set(&mut m, "bit_rate_extension", e.bit_rate_extension);
            set(
                &mut m,
                "vbv_buffer_size_extension",
                e.vbv_buffer_size_extension,
            );
            set(&mut m, "low_delay", e.low_delay);
            set(&mut m, "frame_rate_extension_n", e.frame_rate_extension_n);
            set(&mut m, "frame_rate_extension_d", e.frame_rate_extension_d);
        }
        Mpeg2Unit::SequenceDisplayExtension(e) => {
            set(&mut m, "extension_start_code_identifier", 2);
            set(&mut m, "video_format", e.video_format);
            set(&mut m, "colour_description", e.colour_description);
            set(&mut m, "colour_primaries", e.colour_primaries);
            set(
                &mut m,
                "transfer_characteristics",
                e.transfer_characteristics,
            );
            set(&mut m, "matrix_coefficients", e.matrix_coefficients);
            set(&mut m, "display_horizontal_size", e.display_horizontal_size);
            set(&mut m, "display_vertical_size", e.display_vertical_size);
        }
        Mpeg2Unit::QuantMatrixExtension(e) => {
            set(&mut m, "extension_start_code_identifier", 3);
            put_matrix(&mut m, "intra_quantiser_matrix", &e.intra_quantiser_matrix);
            put_matrix(
                &mut m,
                "non_intra_quantiser_matrix",
                &e.non_intra_quantiser_matrix,
            );
            put_matrix(
                &mut m,
                "chroma_intra_quantiser_matrix",
                &e.chroma_intra_quantiser_matrix,
            );
            put_matrix(
                &mut m,
                "chroma_non_intra_quantiser_matrix",
                &e.chroma_non_intra_quantiser_matrix,
            );
        }
        Mpeg2Unit::PictureCodingExtension(e) => {
            set(&mut m, "extension_start_code_identifier", 8);
            for s in 0..2 {
                for t in 0..2 {
                    set(&mut m, format!("f_code[{s}][{t}]"), e.f_code[s][t]);
                }
            }
            set(&mut m, "intra_dc_precision", e.intra_dc_precision);
            set(&mut m, "picture_structure", e.picture_structure);
            set(&mut m, "top_field_first", e.top_field_first);
            set(&mut m, "frame_pred_frame_dct", e.frame_pred_frame_dct);
            set(
                &mut m,
                "concealment_motion_vectors",
                e.concealment_motion_vectors,
            );
            set(&mut m, "q_scale_type", e.q_scale_type);
            set(&mut m, "intra_vlc_format", e.intra_vlc_format);
            set(&mut m, "alternate_scan", e.alternate_scan);
            set(&mut m, "repeat_first_field", e.repeat_first_field);
            set(&mut m, "chroma_420_type", e.chroma_420_type);
            set(&mut m, "progressive_frame", e.progressive_frame);
            set(&mut m, "composite_display_flag", e.composite_display_flag);
        }
        Mpeg2Unit::GroupOfPictures(g) => {
            set(&mut m, "time_code", g.time_code);
            set(&mut m, "closed_gop", g.closed_gop);
            set(&mut m, "broken_link", g.broken_link);
        }
        Mpeg2Unit::Picture(p) => {
            set(&mut m, "temporal_reference", p.temporal_reference);
            set(&mut m, "picture_coding_type", p.picture_coding_type as u8);
            set(&mut m, "vbv_delay", p.vbv_delay);
            set(&mut m, "full_pel_forward_vector", p.full_pel_forward_vector);
            set(&mut m, "forward_f_code", p.forward_f_code);
            set(
                &mut m,
                "full_pel_backward_vector",
                p.full_pel_backward_vector,
            );
            set(&mut m, "backward_f_code", p.backward_f_code);
        }
        Mpeg2Unit::Slice(s) => {
            set(&mut m, "slice_vertical_position", s.slice_vertical_position);
            set(
                &mut m,
                "slice_vertical_position_extension",
                s.slice_vertical_position_extension,
            );
            set(&mut m, "quantiser_scale_code", s.quantiser_scale_code);
            set(&mut m, "intra_slice_flag", s.intra_slice_flag);
            set(&mut m, "intra_slice", s.intra_slice);
        }
        _ => {}
    }
    m
}

#[derive(Debug, Default)]
struct Coverage {
    fields_compared: usize,
    slices: usize,
    b_pictures: usize,
    interlaced_pictures: usize,
    slice_position_extensions: usize,
    display_extensions: usize,
}

fn compare_with_trace(path: &Path) -> (Coverage, Mpeg2Parser) {
    let data = std::fs::read(path).unwrap();
    let trace = trace_headers(path);
    let ours: Vec<&[u8]> = units(&data).map(|(_, u)| u).collect();
    assert_eq!(
        ours.len(),
        trace.len(),
        "{}: unit count vs oracle {:?}",
        path.display(),
        trace.iter().map(|u| &u.title).collect::<Vec<_>>()
    );
    let mut parser = Mpeg2Parser::new();
    let mut c = Coverage::default();
    for (index, (unit, traced)) in ours.iter().zip(&trace).enumerate() {
        let what = format!("{} unit {index} ({})", path.display(), traced.title);
        let parsed = parser
            .parse_unit(unit)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let mine = our_fields(&parsed);
        for (name, values) in traced.by_name() {
            if NOT_COMPARED.contains(&base_name(&name)) {
                continue;
            }
            // extension_start_code_identifier is traced for every extension.
            let ours = mine
                .get(&name)
                .unwrap_or_else(|| panic!("{what}: we do not expose `{name}`"));
            assert_eq!(ours, &values, "{what}: `{name}`");
            c.fields_compared += values.len();
        }
        match &parsed {
            Mpeg2Unit::Slice(s) => {
                let last = traced.fields.last().unwrap();
                assert_eq!(
                    s.header_bit_size as usize,
                    last.pos + last.bits - 8,
                    "{what}: slice header size"
                );
                c.slices += 1;
                c.slice_position_extensions += usize::from(s.slice_vertical_position_extension > 0);
            }
            Mpeg2Unit::Picture(p) => {
                c.b_pictures += usize::from(p.picture_coding_type as u8 == 3);
            }
            Mpeg2Unit::PictureCodingExtension(e) => {
                c.interlaced_pictures += usize::from(!e.progressive_frame);
            }
            Mpeg2Unit::SequenceDisplayExtension(_) => c.display_extensions += 1,
            _ => {}
        }
    }
    (c, parser)
}

fn natural_to_zigzag(natural: &[u8]) -> Vec<u8> {
    // The zig-zag scan, written out independently of the crate's table.
    let mut out = Vec::with_capacity(64);
    for d in 0..15usize {
        let cells: Vec<(usize, usize)> = (0..=d)
            .filter(|&i| i < 8 && d - i < 8)
            .map(|i| (i, d - i))
            .collect();
        // Even diagonals run bottom-left → top-right (row decreasing).
        let ordered: Vec<(usize, usize)> = if d % 2 == 0 {
            cells.into_iter().rev().collect()
        } else {
            cells
        };
        for (row, col) in ordered {
            out.push(natural[row * 8 + col]);
        }
    }
    out
}

fn encode(dir: &Path, name: &str, size: &str, frames: u32, args: &[&str]) -> PathBuf {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let out = dir.join(format!("{name}.m2v"));
    run(Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={size}:rate=25"))
        .args(["-frames:v", &frames.to_string(), "-c:v", "mpeg2video"])
        .args(args)
        .args(["-f", "mpeg2video"])
        .arg(&out));
    out
}

#[test]
fn ffmpeg_mpeg2_streams_match_trace_headers() {
    let dir = work_dir("mpeg2");
    let intra: Vec<u8> = (8..72).collect();
    let inter: Vec<u8> = (0..64).map(|i| 90 - i).collect();
    let csv = |v: &[u8]| v.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
    let (intra_csv, inter_csv) = (csv(&intra), csv(&inter));

    let progressive = encode(
        &dir,
        "progressive",
        "352x288",
        12,
        &[
            "-g",
            "6",
            "-bf",
            "2",
            "-intra_matrix",
            &intra_csv,
            "-inter_matrix",
            &inter_csv,
        ],
    );
    let (c, parser) = compare_with_trace(&progressive);
    eprintln!("progressive: {c:?}");
    assert!(c.b_pictures > 0 && c.slices > 50, "{c:?}");
    let q = parser.quant_matrices();
    assert_eq!(q.intra_quantiser_matrix.to_vec(), natural_to_zigzag(&intra));
    assert_eq!(
        q.non_intra_quantiser_matrix.to_vec(),
        natural_to_zigzag(&inter)
    );
    assert_eq!(q.chroma_intra_quantiser_matrix, q.intra_quantiser_matrix);
    assert_eq!(
        q.chroma_non_intra_quantiser_matrix,
        q.non_intra_quantiser_matrix
    );

    let interlaced = encode(
        &dir,
        "interlaced",
        "352x288",
        8,
        &[
            "-bf",
            "2",
            "-flags",
            "+ilme+ildct",
            "-top",
            "1",
            "-alternate_scan",
            "1",
            "-intra_vlc",
            "1",
            "-non_linear_quant",
            "1",
            "-qmax",
            "28",
            "-intra_matrix",
            &intra_csv,
        ],
    );
    let (c, parser) = compare_with_trace(&interlaced);
    eprintln!("interlaced: {c:?}");
    assert!(c.interlaced_pictures > 0 && c.b_pictures > 0, "{c:?}");
    // Only the intra matrix was loaded: the non-intra one is the default (all 16).
    assert_eq!(parser.quant_matrices().non_intra_quantiser_matrix, [16; 64]);

    let tall = encode(
        &dir,
        "tall_422_display_ext",
        "128x2880",
        3,
        &[
            "-strict",
            "-1",
            "-pix_fmt",
            "yuv422p",
            "-seq_disp_ext",
            "always",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-colorspace",
            "bt709",
        ],
    );
    let (c, parser) = compare_with_trace(&tall);
    eprintln!("tall: {c:?}");
    assert!(
        c.slice_position_extensions > 0 && c.display_extensions > 0,
        "{c:?}"
    );
    assert_eq!(parser.sequence_extension().unwrap().chroma_format, 2);
    assert_eq!(parser.vertical_size(), Some(2880));
    // No matrix loaded: defaults.
    assert_eq!(
        parser.quant_matrices().intra_quantiser_matrix.to_vec(),
        natural_to_zigzag(&mediapass_codecparsers::mpeg2::DEFAULT_INTRA_MATRIX)
    );
}

#[test]
fn every_truncation_of_real_headers_is_a_typed_error() {
    let dir = work_dir("mpeg2_truncation");
    let path = encode(
        &dir,
        "trunc",
        "64x64",
        3,
        &[
            "-bf",
            "1",
            "-flags",
            "+ilme+ildct",
            "-intra_matrix",
            &(8..72)
                .map(|v: u8| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ],
    );
    let data = std::fs::read(&path).unwrap();
    let mut parser = Mpeg2Parser::new();
    let mut errors = 0;
    for (_, unit) in units(&data) {
        let is_header = !matches!(unit[0], 0x01..=0xaf | 0xb2);
        // Header units are short; every prefix of them must fail cleanly.
        if is_header {
            for len in 0..unit.len().min(200) {
                let result = parser.clone().parse_unit(&unit[..len]);
                if result.is_err() {
                    errors += 1;
                }
            }
        }
        parser.parse_unit(unit).unwrap();
    }
    assert!(errors > 20, "{errors}");
}

// SPDX-License-Identifier: MPL-2.0
//! VP9 compressed header: there is no oracle here, so a compressed-header *writer*
//! built on our bool encoder produces headers with known deltas; parsing them back
//! must give exactly those deltas (property test over random headers and updates).
//! Also the frame-context reset rules of `setup_past_independence`.

use mediapass_codecparsers::boolcoder::BoolEncoder;
use mediapass_codecparsers::vp9::compressed::INV_MAP_TABLE;
use mediapass_codecparsers::vp9::{
    CompressedHeader, FrameContexts, FrameType, InterpolationFilter, ProbTables, ReferenceMode,
    ResetFrameContext, TxMode, UncompressedHeader,
};
use proptest::prelude::*;

/// Visits every delta slot with its "coded" flag for the given header, in bitstream
/// order, so the same walk serves the generator and the writer.
fn walk(
    d: &mut ProbTables,
    tx_mode: TxMode,
    reference_mode: ReferenceMode,
    h: &UncompressedHeader,
    mut visit: impl FnMut(&mut u8, Slot),
) {
    let select = tx_mode == TxMode::Select;
    for p in d.tx8.iter_mut().flatten() {
        visit(p, Slot::Diff(select));
    }
    for p in d.tx16.iter_mut().flatten() {
        visit(p, Slot::Diff(select));
    }
    for p in d.tx32.iter_mut().flatten() {
        visit(p, Slot::Diff(select));
    }
    let max_tx = match tx_mode {
        TxMode::Only4x4 => 0,
        TxMode::Allow8x8 => 1,
        TxMode::Allow16x16 => 2,
        _ => 3,
    };
    for (tx, planes) in d.coef.iter_mut().enumerate() {
        visit(&mut 0, Slot::CoefGroup(tx <= max_tx));
        for bands in planes.iter_mut().flatten() {
            for (band, contexts) in bands.iter_mut().enumerate() {
                for (ctx, probs) in contexts.iter_mut().enumerate() {
                    let coded = tx <= max_tx && (band > 0 || ctx < 3);
                    for p in probs {
                        visit(p, Slot::Coef(coded));
                    }
                }
            }
        }
    }
    for p in &mut d.skip {
        visit(p, Slot::Diff(true));
    }
    let inter = !h.frame_is_intra();
    for p in d.inter_mode.iter_mut().flatten() {
        visit(p, Slot::Diff(inter));
    }
    let switchable = h.interpolation_filter == InterpolationFilter::Switchable;
    for p in d.interp_filter.iter_mut().flatten() {
        visit(p, Slot::Diff(inter && switchable));
    }
    for p in &mut d.is_inter {
        visit(p, Slot::Diff(inter));
    }
    visit(&mut 0, Slot::ReferenceMode(inter));
    for p in &mut d.comp_mode {
        visit(
            p,
            Slot::Diff(inter && reference_mode == ReferenceMode::Select),
        );
    }
    for p in d.single_ref.iter_mut().flatten() {
        visit(
            p,
            Slot::Diff(inter && reference_mode != ReferenceMode::Compound),
        );
    }
    for p in &mut d.comp_ref {
        visit(
            p,
            Slot::Diff(inter && reference_mode != ReferenceMode::Single),
        );
    }
    for p in d.y_mode.iter_mut().flatten() {
        visit(p, Slot::Diff(inter));
    }
    for p in d.uv_mode.iter_mut().flatten() {
        visit(p, Slot::Never);
    }
    for p in d.partition.iter_mut().flatten() {
        visit(p, Slot::Diff(inter));
    }
    let mv = &mut d.mv;
    for p in &mut mv.joint {
        visit(p, Slot::Mv(inter));
    }
    for i in 0..2 {
        visit(&mut mv.sign[i], Slot::Mv(inter));
        for p in &mut mv.classes[i] {
            visit(p, Slot::Mv(inter));
        }
        visit(&mut mv.class0_bit[i], Slot::Mv(inter));
        for p in &mut mv.bits[i] {
            visit(p, Slot::Mv(inter));
        }
    }
    for i in 0..2 {
        for p in mv.class0_fr[i].iter_mut().flatten() {
            visit(p, Slot::Mv(inter));
        }
        for p in &mut mv.fr[i] {
            visit(p, Slot::Mv(inter));
        }
    }
    for i in 0..2 {
        let hp = inter && h.allow_high_precision_mv;
        visit(&mut mv.class0_hp[i], Slot::Mv(hp));
        visit(&mut mv.hp[i], Slot::Mv(hp));
    }
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    /// `diff_update_prob`, coded or not in this header.
    Diff(bool),
    /// A coefficient probability (coded only under its `update_probs` flag).
    Coef(bool),
    /// The `update_probs` flag of one transform size.
    CoefGroup(bool),
    /// Where `frame_reference_mode` sits in the syntax.
    ReferenceMode(bool),
    Mv(bool),
    Never,
}

fn write_term_subexp(e: &mut BoolEncoder, d: u32) {
    match d {
        0..16 => {
            e.write_flag(false);
            e.write_literal(4, d);
        }
        16..32 => {
            e.write_literal(2, 0b10);
            e.write_literal(4, d - 16);
        }
        32..64 => {
            e.write_literal(3, 0b110);
            e.write_literal(5, d - 32);
        }
        64..129 => {
            e.write_literal(3, 0b111);
            e.write_literal(7, d - 64);
        }
        _ => {
            e.write_literal(3, 0b111);
            e.write_literal(7, (d + 1) >> 1);
            e.write_flag((d + 1) & 1 == 1);
        }
    }
}

fn write_compressed_header(
    h: &UncompressedHeader,
    tx_mode: TxMode,
    reference_mode: ReferenceMode,
    deltas: &ProbTables,
) -> Vec<u8> {
    let mut e = BoolEncoder::new();
    e.write_flag(false); // marker
    if !h.quant.lossless() {
        e.write_literal(2, (tx_mode as u32).min(3));
        if tx_mode as u8 >= 3 {
            e.write_flag(tx_mode == TxMode::Select);
        }
    }
    let mut d = *deltas;
    let coef_groups: Vec<bool> = deltas
        .coef
        .iter()
        .map(|t| {
            t.iter()
                .flatten()
                .flatten()
                .flatten()
                .flatten()
                .any(|&p| p != 0)
        })
        .collect();
    let mut group = 0;
    let mut group_on = false;
    let bias = h.ref_frame_sign_bias;
    let compound_allowed = bias[2] != bias[1] || bias[3] != bias[1];
    walk(&mut d, tx_mode, reference_mode, h, |p, slot| match slot {
        Slot::Diff(true) => {
            e.write_bool(252, *p != 0);
            if *p != 0 {
                let index = INV_MAP_TABLE.iter().position(|&v| v == *p).unwrap();
                write_term_subexp(&mut e, index as u32);
            }
        }
        Slot::Coef(true) if group_on => {
            e.write_bool(252, *p != 0);
            if *p != 0 {
                let index = INV_MAP_TABLE.iter().position(|&v| v == *p).unwrap();
                write_term_subexp(&mut e, index as u32);
            }
        }
        Slot::CoefGroup(coded) => {
            group_on = coded && coef_groups[group];
            if coded {
                e.write_flag(group_on);
            }
            group += 1;
        }
        Slot::ReferenceMode(true) if compound_allowed => {
            e.write_flag(reference_mode != ReferenceMode::Single);
            if reference_mode != ReferenceMode::Single {
                e.write_flag(reference_mode == ReferenceMode::Select);
            }
        }
        Slot::Mv(true) => {
            e.write_bool(252, *p != 0);
            if *p != 0 {
                e.write_literal(7, u32::from(*p >> 1));
            }
        }
        _ => {}
    });
    e.finish()
}

fn header(lossless: bool, intra: bool, switchable: bool, bias: u8, hp: bool) -> UncompressedHeader {
    let mut h = UncompressedHeader {
        frame_type: if intra {
            FrameType::KeyFrame
        } else {
            FrameType::NonKeyFrame
        },
        interpolation_filter: if switchable {
            InterpolationFilter::Switchable
        } else {
            InterpolationFilter::EightTap
        },
        allow_high_precision_mv: hp,
        ..Default::default()
    };
    h.quant.base_q_idx = if lossless { 0 } else { 60 };
    for i in 1..4 {
        h.ref_frame_sign_bias[i] = bias & (1 << (i - 1)) != 0;
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn compressed_header_round_trips(
        lossless in any::<bool>(),
        intra in any::<bool>(),
        switchable in any::<bool>(),
        bias in 0u8..8,
        hp in any::<bool>(),
        tx in 0u8..5,
        reference in 0u8..3,
        density in 0u32..40,
        seed in proptest::collection::vec(any::<u16>(), 2100),
    ) {
        let mut h = header(lossless, intra, switchable, bias, hp);
        let tx_mode = if lossless {
            TxMode::Only4x4
        } else {
            [TxMode::Only4x4, TxMode::Allow8x8, TxMode::Allow16x16, TxMode::Allow32x32, TxMode::Select][usize::from(tx)]
        };
        let b = h.ref_frame_sign_bias;
        let compound_allowed = b[2] != b[1] || b[3] != b[1];
        let reference_mode = if intra || !compound_allowed {
            ReferenceMode::Single
        } else {
            [ReferenceMode::Single, ReferenceMode::Compound, ReferenceMode::Select][usize::from(reference)]
        };
        // Random sparse deltas in the coded slots only.
        let mut deltas = ProbTables::zeroed();
        let mut k = 0;
        walk(&mut deltas, tx_mode, reference_mode, &h, |p, slot| {
            let r = seed[k % seed.len()];
            k += 1;
            let hit = u32::from(r % 1000) < density * 10;
            *p = match slot {
                Slot::Diff(true) | Slot::Coef(true) if hit => 1 + (r >> 8) as u8 % 254,
                Slot::Mv(true) if hit => (((r >> 8) as u8 & 0x7f) << 1) | 1,
                _ => 0,
            };
        });
        let data = write_compressed_header(&h, tx_mode, reference_mode, &deltas);
        h.compressed_header_size = data.len() as u16;
        let parsed = CompressedHeader::parse(&data, &h).unwrap();
        prop_assert_eq!(parsed.tx_mode, tx_mode);
        prop_assert_eq!(parsed.reference_mode, reference_mode);
        prop_assert_eq!(parsed.deltas, deltas);
        let nonzero = deltas.bytes().iter().filter(|&&v| v != 0).count();
        prop_assert_eq!(parsed.update_count, nonzero);

        // Forward updates keep every probability valid.
        let mut probs = ProbTables::defaults();
        probs.apply_deltas(&parsed.deltas);
        let coef_range = 12..12 + 1728;
        for (i, &p) in probs.bytes().iter().enumerate() {
            prop_assert!(p >= 1 || coef_range.contains(&i));
        }

        // A truncated header is an error, not a panic.
        if data.len() > 8 {
            h.compressed_header_size = (data.len() - 8) as u16;
            let _ = CompressedHeader::parse(&data[..data.len() - 8], &h);
        }
    }
}

#[test]
fn truncated_and_marked_headers_are_errors() {
    let mut h = header(false, true, false, 0, false);
    h.compressed_header_size = 10;
    assert!(CompressedHeader::parse(&[0; 4], &h).is_err());
    let mut e = BoolEncoder::new();
    e.write_flag(true);
    let data = e.finish();
    h.compressed_header_size = data.len() as u16;
    assert!(CompressedHeader::parse(&data, &h).is_err());
}

#[test]
fn frame_contexts_follow_setup_past_independence() {
    let mut contexts = FrameContexts::default();
    let mut changed = ProbTables::defaults();
    changed.skip = [1, 2, 3];
    contexts.contexts = [changed; 4];

    // Inter frame: loads the context it names, nothing is reset.
    let mut inter = header(false, false, true, 0, false);
    inter.frame_context_idx = 2;
    inter.coded_frame_context_idx = 2;
    assert_eq!(contexts.load_for(&inter).skip, [1, 2, 3]);

    // Intra-only with reset_frame_context = 2 resets only the coded context.
    let mut intra_only = header(false, false, false, 0, false);
    intra_only.intra_only = true;
    intra_only.reset_frame_context = ResetFrameContext::Current;
    intra_only.coded_frame_context_idx = 1;
    assert_eq!(contexts.load_for(&intra_only), ProbTables::defaults());
    assert_eq!(contexts.contexts[1], ProbTables::defaults());
    assert_eq!(contexts.contexts[0].skip, [1, 2, 3]);

    // Intra-only without reset keeps the saved contexts but starts from defaults.
    intra_only.reset_frame_context = ResetFrameContext::None;
    contexts.contexts = [changed; 4];
    assert_eq!(contexts.load_for(&intra_only), ProbTables::defaults());
    assert_eq!(contexts.contexts, [changed; 4]);

    // Error resilient and key frames reset all four.
    let mut resilient = header(false, false, true, 0, false);
    resilient.error_resilient_mode = true;
    contexts.load_for(&resilient);
    assert_eq!(contexts.contexts, [ProbTables::defaults(); 4]);
    contexts.contexts = [changed; 4];
    contexts.load_for(&header(false, true, false, 0, false));
    assert_eq!(contexts.contexts, [ProbTables::defaults(); 4]);

    // save_for honours refresh_frame_context.
    inter.refresh_frame_context = false;
    contexts.save_for(&inter, &changed);
    assert_eq!(contexts.contexts[2], ProbTables::defaults());
    inter.refresh_frame_context = true;
    contexts.save_for(&inter, &changed);
    assert_eq!(contexts.contexts[2], changed);
}

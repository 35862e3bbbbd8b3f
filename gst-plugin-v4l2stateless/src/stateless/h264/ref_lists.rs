// SPDX-License-Identifier: MPL-2.0
//! Reference picture lists of a frame's slice (8.2.4): initialisation for P and B
//! slices, then `ref_pic_list_modification()`. Entries are indices into the DPB's
//! pictures; `None` is a missing picture (corrupt stream or lost reference).

use mediapass_codecparsers::h264::RefPicListModification;

use super::dpb::Picture;

pub type RefList = Vec<Option<usize>>;

fn short_term(dpb: &[Picture]) -> impl Iterator<Item = (usize, &Picture)> {
    dpb.iter().enumerate().filter(|(_, p)| p.is_short_term())
}

/// Long-term frames by ascending `LongTermPicNum`.
fn long_term_sorted(dpb: &[Picture]) -> Vec<usize> {
    let mut long: Vec<(usize, u32)> = dpb
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.long_term_frame_idx().map(|idx| (i, idx)))
        .collect();
    long.sort_by_key(|&(_, idx)| idx);
    long.into_iter().map(|(i, _)| i).collect()
}

/// Initial list of a P/SP slice (8.2.4.2.1): short-term by descending `PicNum`, then
/// long-term by ascending `LongTermPicNum`.
pub fn initial_p_list(dpb: &[Picture]) -> Vec<usize> {
    let mut short: Vec<(usize, i32)> = short_term(dpb).map(|(i, p)| (i, p.pic_num())).collect();
    short.sort_by_key(|&(_, pic_num)| std::cmp::Reverse(pic_num));
    let mut list: Vec<usize> = short.into_iter().map(|(i, _)| i).collect();
    list.extend(long_term_sorted(dpb));
    list
}

/// Initial lists of a B slice (8.2.4.2.3) for a frame with `PicOrderCnt == current_poc`.
/// Non-existing frames are left out: they have no meaningful POC.
pub fn initial_b_lists(dpb: &[Picture], current_poc: i32) -> (Vec<usize>, Vec<usize>) {
    let existing = || short_term(dpb).filter(|(_, p)| p.timestamp.is_some());
    let mut before: Vec<(usize, i32)> = existing()
        .filter(|(_, p)| p.poc() < current_poc)
        .map(|(i, p)| (i, p.poc()))
        .collect();
    before.sort_by_key(|&(_, poc)| std::cmp::Reverse(poc));
    let mut after: Vec<(usize, i32)> = existing()
        .filter(|(_, p)| p.poc() >= current_poc)
        .map(|(i, p)| (i, p.poc()))
        .collect();
    after.sort_by_key(|&(_, poc)| poc);
    let long = long_term_sorted(dpb);
    let ids = |v: &[(usize, i32)]| v.iter().map(|&(i, _)| i).collect::<Vec<_>>();
    let mut list0 = ids(&before);
    list0.extend(ids(&after));
    list0.extend(&long);
    let mut list1 = ids(&after);
    list1.extend(ids(&before));
    list1.extend(&long);
    if list1.len() > 1 && list0 == list1 {
        list1.swap(0, 1);
    }
    (list0, list1)
}

/// Applies `ref_pic_list_modification()` (8.2.4.3) for frames to an initial list and
/// returns the `num_ref_idx_active` entries the slice uses.
///
/// `current_pic_num` is `CurrPicNum` (the frame's `frame_num`), `max_pic_num` is
/// `MaxPicNum`.
pub fn modify(
    initial: &[usize],
    modifications: &[RefPicListModification],
    dpb: &[Picture],
    num_ref_idx_active: usize,
    current_pic_num: i32,
    max_pic_num: i32,
) -> Result<RefList, String> {
    let mut list: RefList = initial
        .iter()
        .take(num_ref_idx_active)
        .map(|&i| Some(i))
        .collect();
    if modifications.is_empty() {
        return Ok(list);
    }
    // Room for the entry shifted out by each insertion (8-37).
    list.resize(num_ref_idx_active + 1, None);
    let mut pred = current_pic_num;
    for (ref_idx, m) in modifications.iter().enumerate() {
        if ref_idx >= num_ref_idx_active {
            return Err("more list modifications than active references".into());
        }
        let picture = match m.modification_of_pic_nums_idc {
            0 | 1 => {
                let abs_diff = i32::try_from(m.value)
                    .ok()
                    .and_then(|v| v.checked_add(1))
                    .filter(|&v| v <= max_pic_num)
                    .ok_or("abs_diff_pic_num_minus1 out of range")?;
                let mut no_wrap = if m.modification_of_pic_nums_idc == 0 {
                    pred - abs_diff
                } else {
                    pred + abs_diff
                };
                if no_wrap < 0 {
                    no_wrap += max_pic_num;
                } else if no_wrap >= max_pic_num {
                    no_wrap -= max_pic_num;
                }
                pred = no_wrap;
                let pic_num = if no_wrap > current_pic_num {
                    no_wrap - max_pic_num
                } else {
                    no_wrap
                };
                dpb.iter()
                    .position(|p| p.is_short_term() && p.pic_num() == pic_num)
            }
            2 => dpb
                .iter()
                .position(|p| p.long_term_frame_idx() == Some(m.value)),
            other => return Err(format!("modification_of_pic_nums_idc {other}")),
        };
        // Insert at ref_idx, then drop the later duplicate of the same picture (8-38).
        list.insert(ref_idx, picture);
        let mut out: RefList = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            if i <= ref_idx || entry.is_none() || *entry != picture {
                out.push(*entry);
            }
        }
        out.truncate(num_ref_idx_active + 1);
        list = out;
    }
    list.truncate(num_ref_idx_active);
    Ok(list)
}

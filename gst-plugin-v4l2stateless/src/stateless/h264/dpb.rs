// SPDX-License-Identifier: MPL-2.0
//! The decoded picture buffer for frames (8.2.5 reference marking, C.4 bumping): which
//! pictures are short-/long-term references, which still wait to be output, and in
//! which order they leave.

use mediapass_codecparsers::h264::MemoryManagementOperation;

/// How a picture is used for inter prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    Unused,
    ShortTerm,
    /// With its `LongTermFrameIdx`.
    LongTerm(u32),
}

/// One decoded frame (or a "non-existing" frame inferred from a `frame_num` gap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Timestamp of the decoded picture; `None` for non-existing frames (8.2.5.2),
    /// which have no picture buffer.
    pub timestamp: Option<u64>,
    pub frame_num: u32,
    /// `FrameNumWrap` (8-27), relative to the picture being decoded.
    pub frame_num_wrap: i32,
    pub top_field_order_cnt: i32,
    pub bottom_field_order_cnt: i32,
    pub reference: Reference,
    pub needed_for_output: bool,
}

impl Picture {
    /// `PicOrderCnt()` of a frame.
    pub fn poc(&self) -> i32 {
        self.top_field_order_cnt.min(self.bottom_field_order_cnt)
    }

    pub fn is_short_term(&self) -> bool {
        self.reference == Reference::ShortTerm
    }

    pub fn long_term_frame_idx(&self) -> Option<u32> {
        match self.reference {
            Reference::LongTerm(idx) => Some(idx),
            _ => None,
        }
    }

    pub fn is_reference(&self) -> bool {
        self.reference != Reference::Unused
    }

    /// `PicNum` of a short-term frame (8-28).
    pub fn pic_num(&self) -> i32 {
        self.frame_num_wrap
    }
}

/// Why a marking operation could not be applied (corrupt stream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkingError {
    #[error("memory_management_control_operation {0} names no reference picture")]
    NoSuchPicture(u8),
    #[error("memory_management_control_operation {0} is not valid")]
    BadOperation(u8),
    #[error("long_term_frame_idx {idx} exceeds MaxLongTermFrameIdx {max:?}")]
    LongTermIndex { idx: u32, max: Option<u32> },
}

/// What marking decided for the current picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentMarking {
    pub reference: Reference,
    /// The picture carried `memory_management_control_operation == 5`.
    pub mmco5: bool,
}

/// Frames in decoding order; removal keeps the order (V4L2 DPB entries follow it).
#[derive(Debug, Clone, Default)]
pub struct Dpb {
    pictures: Vec<Picture>,
    /// `MaxLongTermFrameIdx`; `None` is "no long-term frame indices".
    max_long_term_frame_idx: Option<u32>,
    /// Frame buffers (`max_dec_frame_buffering`).
    size: usize,
    /// Pictures that may wait for output before the earliest one must leave.
    max_num_reorder: usize,
}

impl Dpb {
    pub fn set_limits(&mut self, size: usize, max_num_reorder: usize) {
        self.size = size.clamp(1, 16);
        self.max_num_reorder = max_num_reorder.min(self.size);
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn pictures(&self) -> &[Picture] {
        &self.pictures
    }

    /// Reference frames in DPB order.
    pub fn references(&self) -> impl Iterator<Item = &Picture> {
        self.pictures.iter().filter(|p| p.is_reference())
    }

    /// Timestamps the device must keep: references and pictures waiting for output.
    pub fn live_timestamps(&self) -> Vec<u64> {
        let mut live: Vec<u64> = self.pictures.iter().filter_map(|p| p.timestamp).collect();
        live.sort_unstable();
        live.dedup();
        live
    }

    /// Recomputes `FrameNumWrap` of the short-term frames for the current picture (8.2.4.1).
    pub fn update_frame_num_wrap(&mut self, current_frame_num: u32, max_frame_num: u32) {
        for p in &mut self.pictures {
            if p.is_short_term() {
                p.frame_num_wrap = if p.frame_num > current_frame_num {
                    p.frame_num as i32 - max_frame_num as i32
                } else {
                    p.frame_num as i32
                };
            }
        }
    }

    /// Marks every reference unused (IDR, MMCO 5).
    pub fn mark_all_unused(&mut self) {
        for p in &mut self.pictures {
            p.reference = Reference::Unused;
        }
        self.max_long_term_frame_idx = None;
    }

    fn count(&self, short: bool) -> usize {
        self.pictures
            .iter()
            .filter(|p| {
                if short {
                    p.is_short_term()
                } else {
                    p.long_term_frame_idx().is_some()
                }
            })
            .count()
    }

    /// Sliding window marking (8.2.5.3): at `max_num_ref_frames` references, the short-term
    /// frame with the smallest `FrameNumWrap` stops being a reference.
    pub fn sliding_window(&mut self, max_num_ref_frames: u32) {
        let max = (max_num_ref_frames as usize).max(1);
        while self.count(true) + self.count(false) >= max && self.count(true) > 0 {
            if let Some(oldest) = self
                .pictures
                .iter_mut()
                .filter(|p| p.is_short_term())
                .min_by_key(|p| p.frame_num_wrap)
            {
                oldest.reference = Reference::Unused;
            }
        }
    }

    fn unmark_long_term_idx(&mut self, idx: u32) {
        for p in &mut self.pictures {
            if p.long_term_frame_idx() == Some(idx) {
                p.reference = Reference::Unused;
            }
        }
    }

    fn check_long_term_idx(&self, idx: u32) -> Result<(), MarkingError> {
        match self.max_long_term_frame_idx {
            Some(max) if idx <= max => Ok(()),
            max => Err(MarkingError::LongTermIndex { idx, max }),
        }
    }

    /// Adaptive marking (8.2.5.4) of a frame with `CurrPicNum == current_pic_num`.
    pub fn apply_mmcos(
        &mut self,
        operations: &[MemoryManagementOperation],
        current_pic_num: i32,
    ) -> Result<CurrentMarking, MarkingError> {
        let mut current = CurrentMarking {
            reference: Reference::ShortTerm,
            mmco5: false,
        };
        for op in operations {
            let code = op.memory_management_control_operation;
            let pic_num_x =
                || i64::from(current_pic_num) - (i64::from(op.difference_of_pic_nums_minus1) + 1);
            match code {
                1 => {
                    let x = pic_num_x();
                    let p = self
                        .pictures
                        .iter_mut()
                        .find(|p| p.is_short_term() && i64::from(p.pic_num()) == x)
                        .ok_or(MarkingError::NoSuchPicture(1))?;
                    p.reference = Reference::Unused;
                }
                2 => {
                    let p = self
                        .pictures
                        .iter_mut()
                        .find(|p| p.long_term_frame_idx() == Some(op.long_term_pic_num))
                        .ok_or(MarkingError::NoSuchPicture(2))?;
                    p.reference = Reference::Unused;
                }
                3 => {
                    let x = pic_num_x();
                    self.check_long_term_idx(op.long_term_frame_idx)?;
                    let pos = self
                        .pictures
                        .iter()
                        .position(|p| p.is_short_term() && i64::from(p.pic_num()) == x)
                        .ok_or(MarkingError::NoSuchPicture(3))?;
                    self.unmark_long_term_idx(op.long_term_frame_idx);
                    self.pictures[pos].reference = Reference::LongTerm(op.long_term_frame_idx);
                }
                4 => {
                    let max = op.max_long_term_frame_idx_plus1.checked_sub(1);
                    for p in &mut self.pictures {
                        if let Some(idx) = p.long_term_frame_idx()
                            && max.is_none_or(|max| idx > max)
                        {
                            p.reference = Reference::Unused;
                        }
                    }
                    self.max_long_term_frame_idx = max;
                }
                5 => {
                    self.mark_all_unused();
                    current.mmco5 = true;
                }
                6 => {
                    self.check_long_term_idx(op.long_term_frame_idx)?;
                    self.unmark_long_term_idx(op.long_term_frame_idx);
                    current.reference = Reference::LongTerm(op.long_term_frame_idx);
                }
                other => return Err(MarkingError::BadOperation(other)),
            }
        }
        Ok(current)
    }

    /// Marking of an IDR picture (8.2.5.1): everything else unused; the IDR is long-term
    /// with index 0 when `long_term_reference_flag` says so.
    pub fn mark_idr(&mut self, long_term_reference_flag: bool) -> Reference {
        self.mark_all_unused();
        if long_term_reference_flag {
            self.max_long_term_frame_idx = Some(0);
            Reference::LongTerm(0)
        } else {
            Reference::ShortTerm
        }
    }

    fn remove_unneeded(&mut self) {
        self.pictures
            .retain(|p| p.is_reference() || p.needed_for_output);
    }

    /// Outputs the waiting picture with the smallest POC (C.4.5.3).
    fn bump(&mut self) -> Option<u64> {
        let pos = self
            .pictures
            .iter()
            .enumerate()
            .filter(|(_, p)| p.needed_for_output)
            .min_by_key(|(_, p)| p.poc())
            .map(|(i, _)| i)?;
        self.pictures[pos].needed_for_output = false;
        let timestamp = self.pictures[pos].timestamp;
        self.remove_unneeded();
        timestamp
    }

    fn waiting(&self) -> usize {
        self.pictures.iter().filter(|p| p.needed_for_output).count()
    }

    /// Outputs every waiting picture in POC order and empties the DPB (IDR or MMCO 5
    /// without `no_output_of_prior_pics_flag`, end of stream).
    pub fn flush(&mut self) -> Vec<u64> {
        let mut out = Vec::new();
        while self.waiting() > 0 {
            out.extend(self.bump());
        }
        self.pictures.clear();
        out
    }

    /// Drops every picture without output (`no_output_of_prior_pics_flag`); returns the
    /// timestamps never shown.
    pub fn discard_all(&mut self) -> Vec<u64> {
        let dropped = self
            .pictures
            .iter()
            .filter(|p| p.needed_for_output)
            .filter_map(|p| p.timestamp)
            .collect();
        self.pictures.clear();
        dropped
    }

    /// Stores a decoded (and marked) picture, outputting what must leave first (C.4.5).
    /// Returns the output timestamps in order.
    pub fn store(&mut self, picture: Picture) -> Vec<u64> {
        let mut out = Vec::new();
        self.remove_unneeded();
        while self.pictures.len() >= self.size {
            // A non-reference picture that precedes everything waiting leaves at once.
            if !picture.is_reference()
                && self
                    .pictures
                    .iter()
                    .filter(|p| p.needed_for_output)
                    .all(|p| picture.poc() < p.poc())
            {
                out.extend(picture.timestamp.filter(|_| picture.needed_for_output));
                return out;
            }
            if self.waiting() == 0 {
                // Only references left and all in use: the stream exceeds its DPB size.
                // Keep going (the device has spare buffers) rather than lose pictures.
                break;
            }
            out.extend(self.bump());
        }
        if picture.is_reference() || picture.needed_for_output {
            self.pictures.push(picture);
        }
        while self.waiting() > self.max_num_reorder {
            out.extend(self.bump());
        }
        out
    }

    pub fn clear(&mut self) {
        self.pictures.clear();
        self.max_long_term_frame_idx = None;
    }
}

// SPDX-License-Identifier: MPL-2.0
use thiserror::Error;

use crate::bitreader::{ExpGolombError, OutOfData};

/// Why an H.264 NAL unit could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum H264Error {
    #[error(transparent)]
    OutOfData(#[from] OutOfData),
    #[error(transparent)]
    ExpGolomb(#[from] ExpGolombError),
    #[error("{field} = {value} is out of range")]
    OutOfRange { field: &'static str, value: i64 },
    #[error("empty NAL unit")]
    EmptyNal,
    #[error("forbidden_zero_bit is set")]
    ForbiddenZeroBit,
    #[error("PPS {pps_id} refers to SPS {sps_id}, which has not been received")]
    MissingSps { pps_id: u32, sps_id: u32 },
    #[error("slice refers to PPS {0}, which has not been received")]
    MissingPps(u32),
    #[error("too many {0} entries")]
    TooManyEntries(&'static str),
}

use crate::bitreader::BitReader;

/// `ue(v)` limited to `max` (inclusive).
pub(crate) fn ue_max(r: &mut BitReader, field: &'static str, max: u32) -> Result<u32, H264Error> {
    let value = r.ue(field)?;
    if value > max {
        return Err(H264Error::OutOfRange {
            field,
            value: i64::from(value),
        });
    }
    Ok(value)
}

/// `se(v)` limited to `min..=max`.
pub(crate) fn se_range(
    r: &mut BitReader,
    field: &'static str,
    min: i32,
    max: i32,
) -> Result<i32, H264Error> {
    let value = r.se(field)?;
    if !(min..=max).contains(&value) {
        return Err(H264Error::OutOfRange {
            field,
            value: i64::from(value),
        });
    }
    Ok(value)
}

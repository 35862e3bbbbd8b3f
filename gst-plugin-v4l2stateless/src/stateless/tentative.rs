// SPDX-License-Identifier: MPL-2.0
//! Parsing on a copy of the parser state, so that a frame which fails (corrupt
//! bitstream, device error) leaves the state machine exactly as it was.

use super::backend::DecodeError;

/// Runs `parse` on a clone of `parser`. The caller commits the returned parser once
/// the decode job was accepted; a parse error becomes [`DecodeError::Bitstream`].
pub fn parse_on_copy<P, T, PE, BE>(
    parser: &P,
    parse: impl FnOnce(&mut P) -> Result<T, PE>,
) -> Result<(P, T), DecodeError<BE>>
where
    P: Clone,
    PE: std::fmt::Display,
    BE: std::error::Error + 'static,
{
    let mut copy = parser.clone();
    let parsed = parse(&mut copy).map_err(|e| DecodeError::Bitstream(e.to_string()))?;
    Ok((copy, parsed))
}

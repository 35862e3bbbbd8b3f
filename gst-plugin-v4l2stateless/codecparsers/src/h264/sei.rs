// SPDX-License-Identifier: MPL-2.0
//! `sei_rbsp()` framing (7.3.2.3): the decoder needs none of the payloads, so only the
//! message boundaries are parsed, bounds-checked, and the payloads handed out raw.

use super::{H264Error, more_rbsp_data};

/// One `sei_message()`: its type and its raw payload bytes (RBSP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeiMessage {
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

fn read_ff_coded(rbsp: &[u8], pos: &mut usize, field: &'static str) -> Result<u32, H264Error> {
    let mut value: u32 = 0;
    loop {
        let byte = *rbsp.get(*pos).ok_or(crate::bitreader::OutOfData {
            field,
            bit_pos: *pos * 8,
            bit_len: rbsp.len() * 8,
        })?;
        *pos += 1;
        value = value.saturating_add(u32::from(byte));
        if byte != 0xff {
            return Ok(value);
        }
    }
}

/// Splits an SEI RBSP (after the NAL header) into its messages.
pub fn parse_sei_messages(rbsp: &[u8]) -> Result<Vec<SeiMessage>, H264Error> {
    let mut messages = Vec::new();
    let mut pos = 0;
    while more_rbsp_data(rbsp, pos * 8) {
        let payload_type = read_ff_coded(rbsp, &mut pos, "payload_type")?;
        let payload_size = read_ff_coded(rbsp, &mut pos, "payload_size")? as usize;
        let payload =
            rbsp.get(pos..pos.saturating_add(payload_size))
                .ok_or(crate::bitreader::OutOfData {
                    field: "sei_payload",
                    bit_pos: pos * 8,
                    bit_len: rbsp.len() * 8,
                })?;
        pos += payload_size;
        messages.push(SeiMessage {
            payload_type,
            payload: payload.to_vec(),
        });
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_messages_and_rejects_overruns() {
        // type 5 (user data unregistered) size 2, type 255+1 size 1, stop bit.
        let rbsp = [5, 2, 0xaa, 0xbb, 0xff, 1, 1, 0xcc, 0x80];
        let msgs = parse_sei_messages(&rbsp).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].payload, vec![0xaa, 0xbb]);
        assert_eq!(msgs[1].payload_type, 256);
        assert!(parse_sei_messages(&[5, 9, 0xaa, 0x80]).is_err());
        assert!(parse_sei_messages(&[0x80]).unwrap().is_empty());
    }
}

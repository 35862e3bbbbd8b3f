//! Reading and writing the fields of a message body. The body is complete in
//! memory (its length came first), so running out of bytes means the peer
//! lied about the length: a typed error naming the field.

use crate::error::ProtocolError;
use crate::varint::{self, VarintRead};

/// Cursor over one message body.
pub(crate) struct BodyReader<'a> {
    bytes: &'a [u8],
    message: &'static str,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], message: &'static str) -> Self {
        BodyReader { bytes, message }
    }

    fn truncated(&self, field: &'static str) -> ProtocolError {
        ProtocolError::Truncated {
            message: self.message,
            field,
        }
    }

    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        match varint::get(self.bytes) {
            VarintRead::Value(value, used) => {
                self.bytes = &self.bytes[used..];
                Ok(value)
            }
            VarintRead::Incomplete => Err(self.truncated(field)),
            VarintRead::Overflow => Err(ProtocolError::InvalidVarint { field }),
        }
    }

    pub(crate) fn varint_u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        let value = self.varint(field)?;
        u32::try_from(value).map_err(|_| ProtocolError::InvalidValue { field, value })
    }

    pub(crate) fn signed(&mut self, field: &'static str) -> Result<i64, ProtocolError> {
        self.varint(field).map(varint::unzigzag)
    }

    pub(crate) fn signed_i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        let raw = self.varint(field)?;
        i32::try_from(varint::unzigzag(raw))
            .map_err(|_| ProtocolError::InvalidValue { field, value: raw })
    }

    /// A flags varint whose bits outside `known` must be zero.
    pub(crate) fn flags(&mut self, field: &'static str, known: u64) -> Result<u64, ProtocolError> {
        let value = self.varint(field)?;
        if value & !known != 0 {
            return Err(ProtocolError::InvalidValue { field, value });
        }
        Ok(value)
    }

    /// Bytes of the body not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn u16_le(&mut self, field: &'static str) -> Result<u16, ProtocolError> {
        let Some((head, tail)) = self.bytes.split_first_chunk::<2>() else {
            return Err(self.truncated(field));
        };
        self.bytes = tail;
        Ok(u16::from_le_bytes(*head))
    }

    /// A varint length followed by that many UTF-8 bytes.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let len = self.varint(field)?;
        let len = usize::try_from(len).map_err(|_| self.truncated(field))?;
        let Some(text) = self.bytes.get(..len) else {
            return Err(self.truncated(field));
        };
        self.bytes = &self.bytes[len..];
        String::from_utf8(text.to_vec()).map_err(|_| ProtocolError::InvalidUtf8 { field })
    }
}

/// Helpers to append fields; the counterpart of [`BodyReader`].
pub(crate) trait BodyWriter {
    fn varint(&mut self, value: u64);
    fn signed(&mut self, value: i64);
    fn string(&mut self, text: &str);
}

impl BodyWriter for Vec<u8> {
    fn varint(&mut self, value: u64) {
        varint::put(self, value);
    }

    fn signed(&mut self, value: i64) {
        varint::put(self, varint::zigzag(value));
    }

    fn string(&mut self, text: &str) {
        varint::put(self, text.len() as u64);
        self.extend_from_slice(text.as_bytes());
    }
}

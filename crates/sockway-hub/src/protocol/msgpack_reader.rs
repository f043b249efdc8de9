//! A MessagePack reader over one message body (the MessagePack spec's formats), bounded by it.
//!
//! Every length a peer declares is checked against the bytes that are left before anything is
//! allocated, so a short message cannot make the reader reserve more than the message holds
//! (a general-purpose decoder preallocates up to 64 KiB per declared string or binary); nesting
//! is bounded by [`MAX_DEPTH`] so a deep message cannot exhaust the stack.

use rmp::Marker;
use rmpv::{Integer, Value};

/// How deeply arrays and maps may nest in a value: 128 levels, `serde_json`'s limit, so both
/// protocols accept the same shapes.
pub(super) const MAX_DEPTH: usize = 128;

/// Why a value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadError {
    /// The body ends inside the value.
    Truncated,
    /// Not the MessagePack type that was expected here.
    WrongType,
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// Arrays and maps nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The reserved marker `0xC1`.
    Reserved,
}

impl ReadError {
    /// The reason in words, for an error message.
    pub(super) fn describe(self) -> &'static str {
        match self {
            ReadError::Truncated => "the message ends inside it",
            ReadError::WrongType => "it has another type",
            ReadError::InvalidUtf8 => "a string in it is not UTF-8",
            ReadError::TooDeep => "it nests arrays and maps more than 128 deep",
            ReadError::Reserved => "it uses the reserved marker 0xC1",
        }
    }
}

/// Reads values off the front of a message body.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

type Read<T> = Result<T, ReadError>;

impl<'a> Reader<'a> {
    /// A reader of `body`.
    pub(super) fn new(body: &'a [u8]) -> Self {
        Reader { rest: body }
    }

    fn take(&mut self, count: usize) -> Read<&'a [u8]> {
        if count > self.rest.len() {
            return Err(ReadError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Read<[u8; N]> {
        let bytes = self.take(N)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn u8(&mut self) -> Read<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Read<u16> {
        self.take_array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Read<u32> {
        self.take_array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Read<u64> {
        self.take_array().map(u64::from_be_bytes)
    }

    fn marker(&mut self) -> Read<Marker> {
        self.u8().map(Marker::from_u8)
    }

    /// A length, widened (lengths are at most `u32::MAX`).
    fn len32(&mut self) -> Read<usize> {
        self.u32().map(|length| length as usize)
    }

    fn marker_len(&mut self, marker: Marker) -> Read<Option<usize>> {
        Ok(Some(match marker {
            Marker::FixArray(length) | Marker::FixMap(length) | Marker::FixStr(length) => {
                usize::from(length)
            }
            Marker::Array16 | Marker::Map16 | Marker::Str16 | Marker::Bin16 => {
                usize::from(self.u16()?)
            }
            Marker::Array32 | Marker::Map32 | Marker::Str32 | Marker::Bin32 => self.len32()?,
            Marker::Str8 | Marker::Bin8 => usize::from(self.u8()?),
            _ => return Ok(None),
        }))
    }

    /// The length of an array.
    pub(super) fn array_len(&mut self) -> Read<usize> {
        match self.marker()? {
            marker @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => {
                self.marker_len(marker).map(|length| length.unwrap_or(0))
            }
            _ => Err(ReadError::WrongType),
        }
    }

    /// The number of entries of a map.
    pub(super) fn map_len(&mut self) -> Read<usize> {
        match self.marker()? {
            marker @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => {
                self.marker_len(marker).map(|length| length.unwrap_or(0))
            }
            _ => Err(ReadError::WrongType),
        }
    }

    /// An integer of any width, widened.
    pub(super) fn int(&mut self) -> Read<i128> {
        Ok(match self.marker()? {
            Marker::FixPos(value) => i128::from(value),
            Marker::FixNeg(value) => i128::from(value),
            Marker::U8 => i128::from(self.u8()?),
            Marker::U16 => i128::from(self.u16()?),
            Marker::U32 => i128::from(self.u32()?),
            Marker::U64 => i128::from(self.u64()?),
            Marker::I8 => i128::from(self.u8()? as i8),
            Marker::I16 => i128::from(self.u16()? as i16),
            Marker::I32 => i128::from(self.u32()? as i32),
            Marker::I64 => i128::from(self.u64()? as i64),
            _ => return Err(ReadError::WrongType),
        })
    }

    /// A boolean.
    pub(super) fn bool(&mut self) -> Read<bool> {
        match self.marker()? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(ReadError::WrongType),
        }
    }

    /// A string, borrowed from the body, or `None` for `nil`.
    pub(super) fn str_or_nil(&mut self) -> Read<Option<&'a str>> {
        let marker = self.marker()?;
        if marker == Marker::Null {
            return Ok(None);
        }
        if !matches!(
            marker,
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32
        ) {
            return Err(ReadError::WrongType);
        }
        let length = self.marker_len(marker)?.unwrap_or(0);
        let bytes = self.take(length)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ReadError::InvalidUtf8)
    }

    /// Any value, as an owned [`Value`].
    pub(super) fn value(&mut self) -> Read<Value> {
        self.value_within(MAX_DEPTH)
    }

    fn value_within(&mut self, depth: usize) -> Read<Value> {
        let marker = self.marker()?;
        Ok(match marker {
            Marker::Null => Value::Nil,
            Marker::True => Value::Boolean(true),
            Marker::False => Value::Boolean(false),
            Marker::FixPos(value) => Value::Integer(Integer::from(value)),
            Marker::FixNeg(value) => Value::Integer(Integer::from(value)),
            Marker::U8 => Value::Integer(Integer::from(self.u8()?)),
            Marker::U16 => Value::Integer(Integer::from(self.u16()?)),
            Marker::U32 => Value::Integer(Integer::from(self.u32()?)),
            Marker::U64 => Value::Integer(Integer::from(self.u64()?)),
            Marker::I8 => Value::Integer(Integer::from(self.u8()? as i8)),
            Marker::I16 => Value::Integer(Integer::from(self.u16()? as i16)),
            Marker::I32 => Value::Integer(Integer::from(self.u32()? as i32)),
            Marker::I64 => Value::Integer(Integer::from(self.u64()? as i64)),
            Marker::F32 => Value::F32(f32::from_bits(self.u32()?)),
            Marker::F64 => Value::F64(f64::from_bits(self.u64()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let length = self.marker_len(marker)?.unwrap_or(0);
                let text =
                    std::str::from_utf8(self.take(length)?).map_err(|_| ReadError::InvalidUtf8)?;
                Value::String(text.into())
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let length = self.marker_len(marker)?.unwrap_or(0);
                Value::Binary(self.take(length)?.to_vec())
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let length = self.marker_len(marker)?.unwrap_or(0);
                let depth = depth.checked_sub(1).ok_or(ReadError::TooDeep)?;
                // Every element takes at least one byte.
                let mut items = Vec::with_capacity(length.min(self.rest.len()));
                for _ in 0..length {
                    items.push(self.value_within(depth)?);
                }
                Value::Array(items)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let length = self.marker_len(marker)?.unwrap_or(0);
                let depth = depth.checked_sub(1).ok_or(ReadError::TooDeep)?;
                // Every entry takes at least two bytes.
                let mut entries = Vec::with_capacity(length.min(self.rest.len() / 2));
                for _ in 0..length {
                    let key = self.value_within(depth)?;
                    entries.push((key, self.value_within(depth)?));
                }
                Value::Map(entries)
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => {
                let length = usize::from(self.u8()?);
                self.ext(length)?
            }
            Marker::Ext16 => {
                let length = usize::from(self.u16()?);
                self.ext(length)?
            }
            Marker::Ext32 => {
                let length = self.len32()?;
                self.ext(length)?
            }
            Marker::Reserved => return Err(ReadError::Reserved),
        })
    }

    /// An extension value's type and data (e.g. the timestamps .NET clients send as type -1).
    fn ext(&mut self, length: usize) -> Read<Value> {
        let kind = self.u8()? as i8;
        Ok(Value::Ext(kind, self.take(length)?.to_vec()))
    }
}

//! One singular field of a request message, encoded on its own and
//! appended after the message's fixed bytes: the per-request part of a
//! templated message. Protobuf's parsers keep the last value of a singular
//! scalar field and merge a singular message field that appears twice, so
//! `fixed ++ field(user.id = 42)` decodes as the whole message with
//! `user.id` set — without re-encoding the rest. A repeated or map field
//! would gain an element instead of being replaced, so those are never
//! patched ([`super::message`] falls back to a full encode for them).
//!
//! [`FieldPath`] is resolved once at prepare (field numbers, wire types,
//! what a value must look like); [`append`] runs per request and takes the
//! rendered text: a JSON string's contents ([`Rendered::Text`]) or a JSON
//! value ([`Rendered::Json`]), read the way the protobuf JSON mapping reads
//! them (an integer may be quoted, bytes are base64, an enum is its name
//! or number).

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use thiserror::Error;

/// Deepest field path patched in place (deeper ones use a full encode).
pub const MAX_DEPTH: usize = 32;

/// How a leaf's value is written.
#[derive(Debug, Clone)]
enum Leaf {
    Int {
        bits32: bool,
        zigzag: bool,
        fixed: bool,
    },
    Uint {
        bits32: bool,
        fixed: bool,
    },
    Double,
    Float,
    Bool,
    Str,
    Bytes,
    Enum(prost_reflect::EnumDescriptor),
    /// A message-typed leaf (a well-known type such as Timestamp, or an
    /// object): decoded through prost-reflect's JSON mapping.
    Message(MessageDescriptor),
}

/// A singular field inside the request message, resolved at prepare.
#[derive(Debug, Clone)]
pub struct FieldPath {
    /// The dotted path as the config writes it (`user.id`), for errors.
    pub name: String,
    /// Keys (tag and wire type) of the enclosing message fields, outermost
    /// first, then the leaf's key.
    keys: Vec<u64>,
    leaf: Leaf,
}

/// A per-request value that does not fit its field: the request fails
/// with this error (the config itself was fine).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {what}")]
pub struct FieldError {
    pub path: String,
    pub what: String,
}

/// Why a field cannot be patched in place.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    #[error("{0}: a repeated or map field is replaced only by a full encode")]
    Repeated(String),
    #[error("{0}: nested deeper than {MAX_DEPTH}")]
    TooDeep(String),
    #[error("{0}: not a field of a message")]
    NotAMessage(String),
}

/// The rendered value of a templated field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendered<'a> {
    /// The contents of a JSON string (a template inside quotes): already
    /// unescaped text.
    Text(&'a [u8]),
    /// A JSON value (a template standing where a value goes).
    Json(&'a [u8]),
}

const VARINT: u64 = 0;
const I64: u64 = 1;
const LEN: u64 = 2;
const I32: u64 = 5;

impl FieldPath {
    /// Resolves `fields` (outermost first) as a patchable path.
    pub fn new(name: &str, fields: &[FieldDescriptor]) -> Result<FieldPath, PathError> {
        if fields.len() > MAX_DEPTH {
            return Err(PathError::TooDeep(name.to_string()));
        }
        let mut keys = Vec::with_capacity(fields.len());
        let (last, parents) = fields
            .split_last()
            .ok_or_else(|| PathError::NotAMessage(name.to_string()))?;
        for f in parents {
            if f.is_list() || f.is_map() {
                return Err(PathError::Repeated(name.to_string()));
            }
            if !matches!(f.kind(), Kind::Message(_)) {
                return Err(PathError::NotAMessage(name.to_string()));
            }
            keys.push(key(f.number(), LEN));
        }
        if last.is_list() || last.is_map() {
            return Err(PathError::Repeated(name.to_string()));
        }
        let (leaf, wire) = match last.kind() {
            Kind::Int32 => (
                Leaf::Int {
                    bits32: true,
                    zigzag: false,
                    fixed: false,
                },
                VARINT,
            ),
            Kind::Int64 => (
                Leaf::Int {
                    bits32: false,
                    zigzag: false,
                    fixed: false,
                },
                VARINT,
            ),
            Kind::Sint32 => (
                Leaf::Int {
                    bits32: true,
                    zigzag: true,
                    fixed: false,
                },
                VARINT,
            ),
            Kind::Sint64 => (
                Leaf::Int {
                    bits32: false,
                    zigzag: true,
                    fixed: false,
                },
                VARINT,
            ),
            Kind::Sfixed32 => (
                Leaf::Int {
                    bits32: true,
                    zigzag: false,
                    fixed: true,
                },
                I32,
            ),
            Kind::Sfixed64 => (
                Leaf::Int {
                    bits32: false,
                    zigzag: false,
                    fixed: true,
                },
                I64,
            ),
            Kind::Uint32 => (
                Leaf::Uint {
                    bits32: true,
                    fixed: false,
                },
                VARINT,
            ),
            Kind::Uint64 => (
                Leaf::Uint {
                    bits32: false,
                    fixed: false,
                },
                VARINT,
            ),
            Kind::Fixed32 => (
                Leaf::Uint {
                    bits32: true,
                    fixed: true,
                },
                I32,
            ),
            Kind::Fixed64 => (
                Leaf::Uint {
                    bits32: false,
                    fixed: true,
                },
                I64,
            ),
            Kind::Double => (Leaf::Double, I64),
            Kind::Float => (Leaf::Float, I32),
            Kind::Bool => (Leaf::Bool, VARINT),
            Kind::String => (Leaf::Str, LEN),
            Kind::Bytes => (Leaf::Bytes, LEN),
            Kind::Enum(e) => (Leaf::Enum(e), VARINT),
            Kind::Message(m) => (Leaf::Message(m), LEN),
        };
        keys.push(key(last.number(), wire));
        Ok(FieldPath {
            name: name.to_string(),
            keys,
            leaf,
        })
    }
}

fn key(number: u32, wire: u64) -> u64 {
    (u64::from(number) << 3) | wire
}

/// Reused buffers of [`append`]: a warm caller does not allocate for
/// scalar fields.
#[derive(Debug, Default)]
pub struct Scratch {
    value: Vec<u8>,
    text: String,
}

/// Appends `fixed` and then each field's value to `out`: the whole
/// message, its templated fields set.
pub fn patch(
    out: &mut Vec<u8>,
    fixed: &[u8],
    fields: &[(&FieldPath, Rendered<'_>)],
    scratch: &mut Scratch,
) -> Result<(), FieldError> {
    out.extend_from_slice(fixed);
    for (path, value) in fields {
        append(out, path, *value, scratch)?;
    }
    Ok(())
}

/// Appends one field (with its enclosing message headers) to `out`.
pub fn append(
    out: &mut Vec<u8>,
    path: &FieldPath,
    value: Rendered<'_>,
    scratch: &mut Scratch,
) -> Result<(), FieldError> {
    let err = |what: &str| FieldError {
        path: path.name.clone(),
        what: what.to_string(),
    };
    let v = &mut scratch.value;
    v.clear();
    match &path.leaf {
        Leaf::Int {
            bits32,
            zigzag,
            fixed,
        } => {
            let n = int(value).ok_or_else(|| err("expected an integer"))?;
            if *bits32 && i32::try_from(n).is_err() {
                return Err(err("expected a 32-bit integer"));
            }
            match (zigzag, fixed, bits32) {
                (true, _, true) => varint(v, u64::from(((n << 1) ^ (n >> 31)) as u32)),
                (true, _, false) => varint(v, ((n << 1) ^ (n >> 63)) as u64),
                (false, true, true) => v.extend_from_slice(&(n as i32).to_le_bytes()),
                (false, true, false) => v.extend_from_slice(&n.to_le_bytes()),
                (false, false, _) => varint(v, n as u64),
            }
        }
        Leaf::Uint { bits32, fixed } => {
            let n = uint(value).ok_or_else(|| err("expected a non-negative integer"))?;
            if *bits32 && u32::try_from(n).is_err() {
                return Err(err("expected a 32-bit unsigned integer"));
            }
            match (fixed, bits32) {
                (true, true) => v.extend_from_slice(&(n as u32).to_le_bytes()),
                (true, false) => v.extend_from_slice(&n.to_le_bytes()),
                (false, _) => varint(v, n),
            }
        }
        Leaf::Double => {
            let x = float(value).ok_or_else(|| err("expected a number"))?;
            v.extend_from_slice(&x.to_le_bytes());
        }
        Leaf::Float => {
            let x = float(value).ok_or_else(|| err("expected a number"))?;
            if x.is_finite() && (x as f32).is_infinite() {
                return Err(err("expected a number in float's range"));
            }
            v.extend_from_slice(&(x as f32).to_le_bytes());
        }
        Leaf::Bool => {
            let b = match value {
                Rendered::Json(b"true") | Rendered::Text(b"true") => true,
                Rendered::Json(b"false") | Rendered::Text(b"false") => false,
                _ => return Err(err("expected true or false")),
            };
            v.push(u8::from(b));
        }
        Leaf::Str => {
            let s = text(value, &mut scratch.text).ok_or_else(|| err("expected a string"))?;
            varint(v, s.len() as u64);
            v.extend_from_slice(s.as_bytes());
        }
        Leaf::Bytes => {
            let s =
                text(value, &mut scratch.text).ok_or_else(|| err("expected a base64 string"))?;
            let s = s.trim_end_matches('=');
            let raw = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(s)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
                .map_err(|_| err("expected a base64 string"))?;
            varint(v, raw.len() as u64);
            v.extend_from_slice(&raw);
        }
        Leaf::Enum(e) => {
            let n = match int(value) {
                Some(n) => i32::try_from(n).map_err(|_| err("expected an enum value"))?,
                None => {
                    let name = text(value, &mut scratch.text)
                        .ok_or_else(|| err("expected an enum name or number"))?;
                    match e.get_value_by_name(name) {
                        Some(ev) => ev.number(),
                        None => {
                            let names: Vec<String> =
                                e.values().map(|v| v.name().to_string()).collect();
                            return Err(err(&format!(
                                "no value {name:?} in enum {} (it has {})",
                                e.full_name(),
                                names.join(", ")
                            )));
                        }
                    }
                }
            };
            varint(v, n as i64 as u64);
        }
        Leaf::Message(m) => {
            let json: Vec<u8> = match value {
                Rendered::Json(j) => j.to_vec(),
                Rendered::Text(t) => {
                    let s = std::str::from_utf8(t).map_err(|_| err("expected UTF-8 text"))?;
                    serde_json::to_vec(s).expect("a string serialises")
                }
            };
            let mut de = serde_json::Deserializer::from_slice(&json);
            let msg =
                DynamicMessage::deserialize(m.clone(), &mut de).map_err(|e| err(&e.to_string()))?;
            de.end().map_err(|e| err(&e.to_string()))?;
            let n = msg.encoded_len();
            varint(v, n as u64);
            msg.encode_raw(v);
        }
    }
    // The enclosing messages' headers, outermost first: each length is
    // what follows it inside its message.
    let leaf_len = varint_len(*path.keys.last().expect("a path has a leaf")) + v.len();
    let parents = &path.keys[..path.keys.len() - 1];
    let mut lens = [0usize; MAX_DEPTH];
    let mut inner = leaf_len;
    for (i, &k) in parents.iter().enumerate().rev() {
        lens[i] = inner;
        inner += varint_len(k) + varint_len(inner as u64);
    }
    for (i, &k) in parents.iter().enumerate() {
        varint(out, k);
        varint(out, lens[i] as u64);
    }
    varint(out, *path.keys.last().expect("a path has a leaf"));
    out.extend_from_slice(v);
    Ok(())
}

/// Writes a base-128 varint.
pub fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// The bytes of a number: a JSON number as it is, a JSON string's or a
/// text's contents (the JSON mapping accepts quoted numbers).
fn number_text(value: Rendered<'_>) -> Option<&str> {
    let b = match value {
        Rendered::Text(t) => t,
        Rendered::Json(j) => match j {
            [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => inner,
            _ => j,
        },
    };
    std::str::from_utf8(b).ok().map(str::trim)
}

fn int(value: Rendered<'_>) -> Option<i64> {
    let s = number_text(value)?;
    s.parse::<i64>()
        .ok()
        .or_else(|| integral(s)?.try_into().ok())
}

fn uint(value: Rendered<'_>) -> Option<u64> {
    let s = number_text(value)?;
    s.parse::<u64>()
        .ok()
        .or_else(|| integral(s)?.try_into().ok())
}

/// `1e3` and `42.0` are integers in the JSON mapping.
fn integral(s: &str) -> Option<i128> {
    let x: f64 = s.parse().ok()?;
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 1.9e19).then_some(x as i128)
}

fn float(value: Rendered<'_>) -> Option<f64> {
    match number_text(value)? {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        s if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        s => s.parse().ok(),
    }
}

/// A string value: a text as it is (UTF-8), a JSON string unescaped.
fn text<'a>(value: Rendered<'a>, buf: &'a mut String) -> Option<&'a str> {
    match value {
        Rendered::Text(t) => std::str::from_utf8(t).ok(),
        Rendered::Json(j) => match j {
            [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => std::str::from_utf8(inner).ok(),
            _ => {
                *buf = serde_json::from_slice::<String>(j).ok()?;
                Some(buf.as_str())
            }
        },
    }
}

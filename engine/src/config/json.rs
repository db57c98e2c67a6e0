//! Config text to a JSON value, strictly: a size limit, a UTF-8 byte-order
//! mark skipped (some editors write one), and a duplicate key refused with
//! its path and position instead of the last one silently winning (what
//! `serde_json::Value` does).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Largest config accepted, in bytes. A config is a few KB; one generated
/// from a HAR file or an OpenAPI spec with the endpoint limit's worth of
/// endpoints stays far below this. Data sets are separate files.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Parses config text: a leading BOM is skipped, a key given twice in an
/// object is an error naming the key's path, line and column.
pub fn parse(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict { path: "" }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| format!("invalid JSON: {e}"))?;
    Ok(value)
}

/// Builds a [`Value`] like serde_json does, refusing duplicate keys.
struct Strict<'p> {
    /// Where this value is, e.g. `endpoints[1].headers`.
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, out.len());
            match seq.next_element_seed(Strict { path: &path })? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{path}: the key \"{key}\" is given twice"
                )));
            }
            let value = map.next_value_seed(Strict { path: &path })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn refuses_duplicate_keys_naming_their_path_and_place() {
        let e = parse("{\"target\": \"a\",\n \"target\": \"b\"}").unwrap_err();
        assert!(
            e.contains("target: the key \"target\" is given twice"),
            "{e}"
        );
        assert!(e.contains("line 2"), "{e}");
        let e = parse(r#"{"endpoints": [{"name": "a"}, {"name": "b", "name": "c"}]}"#).unwrap_err();
        assert!(e.contains("endpoints[1].name: the key \"name\""), "{e}");
        // the same key in two objects is fine
        assert!(parse(r#"{"a": {"x": 1}, "b": {"x": 2}}"#).is_ok());
    }

    #[test]
    fn skips_a_byte_order_mark_and_rejects_trailing_text() {
        assert_eq!(parse("\u{feff}{\"a\": 1}").unwrap()["a"], 1);
        assert!(parse("{} {}").unwrap_err().contains("trailing"));
        assert!(parse("").unwrap_err().contains("EOF"));
    }
}

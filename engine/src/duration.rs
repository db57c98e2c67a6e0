//! Human-readable durations in configs: `"500ms"`, `"30s"`, `"2m"`, `"1h30m"`.
//!
//! Configs are written by people, so a duration is a string with a unit
//! (humantime's grammar), never a bare number whose unit a reader must guess.
//! Written back (in the resolved `config.json`) in the same form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A [`Duration`] that (de)serializes as a human-readable string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h 30m"`; the error says what was wrong.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration; write e.g. \"500ms\", \"30s\" or \"2m\"".into());
        }
        humantime::parse_duration(t).map(Dur).map_err(|e| {
            format!("invalid duration \"{s}\": {e} (write e.g. \"500ms\", \"30s\" or \"2m\")")
        })
    }

    pub const fn from_secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        // humantime writes "2m 30s"; a config reads better without the spaces
        // and humantime parses both.
        let s = humantime::format_duration(self.0).to_string();
        f.write_str(&s.replace(' ', ""))
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with a unit: \"500ms\", \"30s\", \"2m\", \"1h30m\".",
            "pattern": "^\\s*([0-9]+\\s*[a-zµ]+\\s*)+$"
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\", \"30s\" or \"2m\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for (s, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h30m", 5_400_000),
            ("0s", 0),
        ] {
            assert_eq!(Dur::parse(s).unwrap().0, Duration::from_millis(ms), "{s}");
        }
    }

    #[test]
    fn rejects_bare_numbers_and_unknown_units() {
        assert!(Dur::parse("30").is_err());
        assert!(Dur::parse("5x").unwrap_err().contains("5x"));
        assert!(Dur::parse("").is_err());
        let e = serde_json::from_str::<Dur>("30").unwrap_err().to_string();
        assert!(e.contains("duration string"), "{e}");
    }

    #[test]
    fn round_trips_through_display() {
        for s in ["500ms", "30s", "2m30s", "0s", "1h"] {
            let d = Dur::parse(s).unwrap();
            assert_eq!(Dur::parse(&d.to_string()).unwrap(), d);
        }
        assert_eq!(Dur::parse("2m30s").unwrap().to_string(), "2m30s");
    }
}

//! JSON Schemas of the run contract, generated from the Rust types. The
//! committed copies in `schemas/` are what `analytics/` and other readers
//! rely on; a test fails when they drift from the types
//! (`UPDATE_SCHEMAS=1 cargo test -p userflux-engine schema` rewrites them).

use serde_json::Value;

/// Every schema, by the file it is committed as.
pub fn all() -> Vec<(&'static str, Value)> {
    let to = |s: schemars::Schema| s.to_value();
    vec![
        (
            "config.schema.json",
            to(schemars::schema_for!(crate::config::Config)),
        ),
        (
            "status.schema.json",
            to(schemars::schema_for!(crate::status::Status)),
        ),
        (
            "summary.schema.json",
            to(schemars::schema_for!(crate::summary::Summary)),
        ),
        (
            "sample.schema.json",
            to(schemars::schema_for!(crate::samples::SampleLine)),
        ),
        (
            "timeline-histograms.schema.json",
            to(schemars::schema_for!(crate::summary::SecondHistograms)),
        ),
        (
            "live.schema.json",
            to(schemars::schema_for!(crate::live::LiveSecond)),
        ),
        (
            "control.schema.json",
            to(schemars::schema_for!(crate::live::ControlLine)),
        ),
    ]
}

/// One schema by name (`config`, `status`, `summary`, `sample`,
/// `timeline-histograms`, `live`, `control`).
pub fn by_name(name: &str) -> Option<Value> {
    let file = format!("{name}.schema.json");
    all().into_iter().find(|(f, _)| *f == file).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn committed_schemas_match_the_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for (file, schema) in super::all() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(file);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "{} differs from the types; run UPDATE_SCHEMAS=1 cargo test -p userflux-engine schema and commit it",
                path.display()
            );
        }
    }

    #[test]
    fn schemas_describe_the_contract() {
        let s = super::by_name("sample").unwrap();
        let props = s["properties"].as_object().unwrap();
        for f in ["t", "ep", "st", "err", "lat", "co", "b", "w"] {
            assert!(props.contains_key(f), "sample schema lacks {f}");
            assert!(props[f]["description"].is_string(), "{f} is undocumented");
        }
        let c = super::by_name("config").unwrap();
        assert_eq!(
            c["additionalProperties"], false,
            "unknown config fields are rejected"
        );
        assert!(super::by_name("nope").is_none());
    }
}

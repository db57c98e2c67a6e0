//! Autoscale settings as written (every field optional), how an endpoint's
//! settings are merged over the global defaults, and the resolved values the
//! controller runs with.
//!
//! Resolution order: built-in defaults ← global `autoscale` ← endpoint
//! `autoscale`; an endpoint's `false` turns autoscale off (fixed allocation).

use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Upper bound of an endpoint's workers when no `max_workers` is given.
pub const DEFAULT_MAX_WORKERS: u32 = 1000;

/// Autoscale fields as written; absent ones come from the level below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleSpec {
    /// Requests per second the endpoint should reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Fewest workers (VUs); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_workers: Option<u32>,
    /// Most workers; default the global `max_workers`, else 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// How often the endpoint is evaluated; default 2s, at least 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Dur>,
    /// No second change within this time of the last; default 2s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Dur>,
    /// Scale up below this fraction of `target_rps`; default 0.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_threshold: Option<f64>,
    /// Scale down above this fraction of `target_rps`; default 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_threshold: Option<f64>,
    /// Largest step up, as a fraction of the current workers (at least 1); default 0.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_factor: Option<f64>,
    /// Largest step down, as a fraction of the current workers (at least 1); default 0.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_factor: Option<f64>,
    /// Back off when the last interval's error rate is above this (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Back off when the last interval's p99 latency is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99: Option<Dur>,
}

/// An endpoint's `autoscale`: `false` (fixed allocation), `true` (the global
/// settings) or an object merged over them.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointAutoscale {
    Off,
    On(AutoscaleSpec),
}

impl schemars::JsonSchema for EndpointAutoscale {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EndpointAutoscale".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let object = generator.subschema_for::<AutoscaleSpec>();
        schemars::json_schema!({
            "description": "false: fixed VUs; true: the global autoscale; an object: merged over the global autoscale.",
            "oneOf": [{"type": "boolean"}, object]
        })
    }
}

impl Serialize for EndpointAutoscale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EndpointAutoscale::Off => s.serialize_bool(false),
            EndpointAutoscale::On(spec) => spec.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for EndpointAutoscale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EndpointAutoscale, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = EndpointAutoscale;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("false, true, or an autoscale object")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<EndpointAutoscale, E> {
                Ok(if v {
                    EndpointAutoscale::On(AutoscaleSpec::default())
                } else {
                    EndpointAutoscale::Off
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<EndpointAutoscale, A::Error> {
                AutoscaleSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(EndpointAutoscale::On)
            }
        }
        d.deserialize_any(V)
    }
}

/// Resolved settings of one autoscaled endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Autoscale {
    pub target_rps: f64,
    pub min_workers: u32,
    pub max_workers: u32,
    pub interval: Duration,
    pub cooldown: Duration,
    pub scale_up_threshold: f64,
    pub scale_down_threshold: f64,
    pub scale_up_factor: f64,
    pub scale_down_factor: f64,
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
}

impl AutoscaleSpec {
    /// This spec's fields, with `base`'s where this one has none.
    pub fn merged_over(&self, base: &AutoscaleSpec) -> AutoscaleSpec {
        AutoscaleSpec {
            target_rps: self.target_rps.or(base.target_rps),
            min_workers: self.min_workers.or(base.min_workers),
            max_workers: self.max_workers.or(base.max_workers),
            interval: self.interval.or(base.interval),
            cooldown: self.cooldown.or(base.cooldown),
            scale_up_threshold: self.scale_up_threshold.or(base.scale_up_threshold),
            scale_down_threshold: self.scale_down_threshold.or(base.scale_down_threshold),
            scale_up_factor: self.scale_up_factor.or(base.scale_up_factor),
            scale_down_factor: self.scale_down_factor.or(base.scale_down_factor),
            max_error_rate: self.max_error_rate.or(base.max_error_rate),
            max_p99: self.max_p99.or(base.max_p99),
        }
    }

    /// Fills every field that has a built-in default (`target_rps` has none).
    pub fn with_defaults(&self, global_max_workers: Option<u32>) -> AutoscaleSpec {
        let defaults = AutoscaleSpec {
            target_rps: None,
            min_workers: Some(1),
            max_workers: Some(global_max_workers.unwrap_or(DEFAULT_MAX_WORKERS)),
            interval: Some(Dur::from_secs(2)),
            cooldown: Some(Dur::from_secs(2)),
            scale_up_threshold: Some(0.9),
            scale_down_threshold: Some(1.1),
            scale_up_factor: Some(0.25),
            scale_down_factor: Some(0.25),
            max_error_rate: None,
            max_p99: None,
        };
        self.merged_over(&defaults)
    }

    /// The controller's view; call on a spec that passed [`AutoscaleSpec::field_problems`] and [`AutoscaleSpec::merged_problems`].
    pub fn resolved(&self) -> Autoscale {
        let d = self.with_defaults(None);
        Autoscale {
            target_rps: d.target_rps.unwrap_or(0.0),
            min_workers: d.min_workers.unwrap_or(1),
            max_workers: d.max_workers.unwrap_or(DEFAULT_MAX_WORKERS),
            interval: d.interval.unwrap_or_default().0,
            cooldown: d.cooldown.unwrap_or_default().0,
            scale_up_threshold: d.scale_up_threshold.unwrap_or(0.9),
            scale_down_threshold: d.scale_down_threshold.unwrap_or(1.1),
            scale_up_factor: d.scale_up_factor.unwrap_or(0.25),
            scale_down_factor: d.scale_down_factor.unwrap_or(0.25),
            max_error_rate: d.max_error_rate,
            max_p99_ms: d.max_p99.map(|p| p.0.as_secs_f64() * 1000.0),
        }
    }

    /// Range checks of the fields present, named under `at`
    /// (`autoscale` or `endpoints[1].autoscale`).
    pub fn field_problems(&self, at: &str, out: &mut Vec<String>) {
        let mut bad = |f: &str, why: String| out.push(format!("{at}.{f}: {why}"));
        if let Some(t) = self.target_rps
            && !(t.is_finite() && t > 0.0)
        {
            bad("target_rps", format!("must be above 0, got {t}"));
        }
        if self.min_workers == Some(0) {
            bad("min_workers", "must be at least 1".into());
        }
        if self.max_workers == Some(0) {
            bad("max_workers", "must be at least 1".into());
        }
        if let Some(i) = self.interval
            && i.0 < Duration::from_secs(1)
        {
            bad(
                "interval",
                format!("must be at least 1s (the aggregator's tick), got {i}"),
            );
        }
        for (f, v) in [
            ("scale_up_threshold", self.scale_up_threshold),
            ("scale_down_threshold", self.scale_down_threshold),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                bad(f, format!("must be above 0, got {v}"));
            }
        }
        if let Some(v) = self.scale_up_factor
            && !(v.is_finite() && v > 0.0 && v <= 10.0)
        {
            bad(
                "scale_up_factor",
                format!("must be above 0 and at most 10, got {v}"),
            );
        }
        if let Some(v) = self.scale_down_factor
            && !(v.is_finite() && v > 0.0 && v <= 1.0)
        {
            bad(
                "scale_down_factor",
                format!("must be above 0 and at most 1, got {v}"),
            );
        }
        if let Some(v) = self.max_error_rate
            && !(0.0..=1.0).contains(&v)
        {
            bad(
                "max_error_rate",
                format!("must be between 0 and 1, got {v}"),
            );
        }
        if self.max_p99.is_some_and(|p| p.is_zero()) {
            bad("max_p99", "must be above 0".into());
        }
    }

    /// Checks that need the merged, defaulted values of one endpoint.
    pub fn merged_problems(&self, at: &str, out: &mut Vec<String>) {
        if self.target_rps.is_none() {
            out.push(format!(
                "{at}.target_rps: required where autoscale is on (set it on the endpoint or in the global autoscale)"
            ));
        }
        if let (Some(min), Some(max)) = (self.min_workers, self.max_workers)
            && min > max
        {
            out.push(format!(
                "{at}: min_workers {min} is above max_workers {max}"
            ));
        }
        if let (Some(up), Some(down)) = (self.scale_up_threshold, self.scale_down_threshold)
            && up >= down
        {
            out.push(format!(
                "{at}: scale_up_threshold {up} must be below scale_down_threshold {down}, or every rate both scales up and down"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_fields_win_over_global_over_defaults() {
        let global = AutoscaleSpec {
            target_rps: Some(100.0),
            max_workers: Some(50),
            ..Default::default()
        };
        let ep = AutoscaleSpec {
            target_rps: Some(300.0),
            cooldown: Some(Dur::from_secs(5)),
            ..Default::default()
        };
        let m = ep.merged_over(&global).with_defaults(Some(80)).resolved();
        assert_eq!(m.target_rps, 300.0);
        assert_eq!(m.max_workers, 50);
        assert_eq!(m.cooldown, Duration::from_secs(5));
        assert_eq!(m.interval, Duration::from_secs(2));
        assert_eq!(
            (m.min_workers, m.scale_up_threshold, m.scale_down_factor),
            (1, 0.9, 0.25)
        );
        let d = AutoscaleSpec::default().with_defaults(Some(80));
        assert_eq!(
            d.max_workers,
            Some(80),
            "the global max_workers bounds an endpoint by default"
        );
    }

    #[test]
    fn parses_false_true_and_objects() {
        let off: EndpointAutoscale = serde_json::from_str("false").unwrap();
        assert_eq!(off, EndpointAutoscale::Off);
        let on: EndpointAutoscale = serde_json::from_str("true").unwrap();
        assert_eq!(on, EndpointAutoscale::On(AutoscaleSpec::default()));
        let obj: EndpointAutoscale = serde_json::from_str(r#"{"target_rps": 5}"#).unwrap();
        assert_eq!(
            obj,
            EndpointAutoscale::On(AutoscaleSpec {
                target_rps: Some(5.0),
                ..Default::default()
            })
        );
        assert!(serde_json::from_str::<EndpointAutoscale>(r#"{"target": 5}"#).is_err());
        assert_eq!(serde_json::to_string(&off).unwrap(), "false");
    }
}

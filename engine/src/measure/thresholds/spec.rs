//! A threshold as a config writes it: an expression, or k6's object form
//! with its abort settings; read with an error that says what was wrong.

use crate::duration::Dur;
use serde::{Deserialize, Serialize};

/// A threshold as written in a config: an expression, or the object form
/// (k6's `abortOnFail`/`delayAbortEval` keys, or snake_case).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Expr(String),
    Full(ThresholdObject),
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ThresholdObject {
    pub threshold: String,
    /// Stop the run as soon as the threshold fails (k6: `abortOnFail`).
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Do not abort during this first part of the run (k6: `delayAbortEval`).
    #[serde(default)]
    pub delay_abort_eval: Dur,
}

/// By hand rather than serde's untagged enum, whose only message for any
/// mistake is "data did not match any variant": each error here says
/// which key or type was wrong (issue #20).
impl<'de> Deserialize<'de> for ThresholdSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ThresholdSpec, D::Error> {
        use serde::de::Error;
        const KNOWN: &str =
            "threshold, abortOnFail, delayAbortEval (or abort_on_fail, delay_abort_eval)";
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(e) => Ok(ThresholdSpec::Expr(e)),
            serde_json::Value::Object(m) => {
                let (mut threshold, mut abort, mut delay) = (None, false, Dur::default());
                for (k, v) in m {
                    let bad =
                        |what: &str| D::Error::custom(format!("{k}: expected {what}, got {v}"));
                    match k.as_str() {
                        "threshold" => {
                            threshold = Some(
                                v.as_str()
                                    .ok_or_else(|| bad("a string such as \"p(95)<200\""))?
                                    .to_string(),
                            )
                        }
                        "abortOnFail" | "abort_on_fail" => {
                            abort = v.as_bool().ok_or_else(|| bad("true or false"))?
                        }
                        "delayAbortEval" | "delay_abort_eval" => {
                            let text = v
                                .as_str()
                                .ok_or_else(|| bad("a duration such as \"10s\""))?;
                            delay = Dur::parse(text)
                                .map_err(|e| D::Error::custom(format!("{k}: {e}")))?;
                        }
                        other => {
                            return Err(D::Error::custom(format!(
                                "unknown key \"{other}\" in a threshold object (known: {KNOWN})"
                            )));
                        }
                    }
                }
                let threshold = threshold.ok_or_else(|| {
                    D::Error::custom(format!(
                        "a threshold object needs \"threshold\" (known keys: {KNOWN})"
                    ))
                })?;
                Ok(ThresholdSpec::Full(ThresholdObject {
                    threshold,
                    abort_on_fail: abort,
                    delay_abort_eval: delay,
                }))
            }
            other => Err(D::Error::custom(format!(
                "a threshold is a string such as \"p(95)<200\" or an object {{\"threshold\": \"p(95)<200\", \"abortOnFail\": true}}, got {other}"
            ))),
        }
    }
}

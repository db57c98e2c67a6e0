//! A unit's request message: the config's `grpc.message`, a JSON object or
//! a string holding a JSON template, compiled against the method's input
//! descriptor when the run is prepared.
//!
//! A message with no `{{ }}` is encoded once ([`MessageTemplate::Fixed`]).
//! A templated one keeps its fixed part encoded once and, per request,
//! renders only the templated fields and appends them
//! ([`MessageTemplate::Patched`], see [`super::field`]) — protobuf keeps the
//! last value of a singular field. A template inside a repeated or map
//! field, or in a field name, cannot be patched that way (appending adds
//! an element rather than replacing one): such a message is re-rendered as
//! JSON text and fully encoded per request ([`MessageTemplate::Full`]).
//!
//! Finding the templated fields in a template *string*: each expression is
//! replaced by a marker (in a JSON string, the marker alone; standing where
//! a value goes, the marker in quotes), the text is parsed as JSON, and
//! every string holding markers is a templated field. Marker characters are
//! from Unicode's private use area, which the config's text must not hold.

use super::field::{self, FieldError, FieldPath, PathError, Rendered, Scratch};
use super::frame;
use crate::data::DataSet;
use crate::template::{Ctx, Expr, Part, RenderError, Scope, Template};
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::Value;
use std::sync::Arc;
use thiserror::Error;

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// What is wrong with the config's message; the path is inside the message
/// (the caller prefixes `grpc.message`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// Not JSON (after templates were set aside).
    #[error("not a JSON object: {0}")]
    Json(String),
    /// A template expression that does not parse.
    #[error("{0}")]
    Template(String),
    /// A field that is not in the message, or a value of the wrong type.
    #[error("{}{what}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
    Field { path: String, what: String },
}

/// One templated field of a patched message.
#[derive(Debug, Clone)]
pub struct Varying {
    pub path: FieldPath,
    pub template: Template,
    /// Rendered text is a JSON value (the template stood where a value
    /// goes), not a string's contents.
    pub json: bool,
}

/// A request message ready for requests.
#[derive(Debug, Clone)]
pub enum MessageTemplate {
    /// No template: the encoded message, the same for every request.
    Fixed(Vec<u8>),
    /// The fixed part encoded once, plus the fields rendered per request.
    Patched {
        fixed: Vec<u8>,
        fields: Vec<Varying>,
    },
    /// Rendered as JSON text and encoded in full per request; `why` says
    /// why it could not be patched.
    Full {
        desc: MessageDescriptor,
        template: Template,
        why: String,
    },
}

/// A request whose message could not be made: a counted failed request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("{0}")]
    Json(String),
    #[error("captured value {0:?} is missing")]
    Render(RenderError),
}

impl MessageTemplate {
    /// Compiles the config's `message`: an object, or a string holding a
    /// JSON template. `null` (or absent) is the empty message.
    pub fn new(
        desc: &MessageDescriptor,
        message: &Value,
        scope: &Scope<'_>,
    ) -> Result<MessageTemplate, MessageError> {
        let (text, template) = parse(message, scope)?;
        if !template.is_dynamic() {
            let bytes = encode_json(desc, text.as_bytes())
                .map_err(|(path, what)| MessageError::Field { path, what })?;
            return Ok(MessageTemplate::Fixed(bytes));
        }
        let (marked, exprs) = mark(&template);
        let value: Value =
            serde_json::from_str(&marked).map_err(|e| MessageError::Json(e.to_string()))?;
        if !value.is_object() {
            return Err(MessageError::Json(format!(
                "expected an object, found {value}"
            )));
        }
        let mut fields = Vec::new();
        let mut fixed_value = value.clone();
        match split(
            desc,
            &mut fixed_value,
            &mut Vec::new(),
            "",
            &exprs,
            &mut fields,
        ) {
            Ok(()) => {
                let fixed = encode_json(desc, fixed_value.to_string().as_bytes())
                    .map_err(|(path, what)| MessageError::Field { path, what })?;
                Ok(MessageTemplate::Patched { fixed, fields })
            }
            Err(Split::Bad(e)) => Err(e),
            Err(Split::Full(why)) => {
                // The field names are checked now (a wrong one is a config
                // error); the values' types only per request, as a counted
                // encode error naming the field.
                check_names(desc, &value, "")?;
                Ok(MessageTemplate::Full {
                    desc: desc.clone(),
                    template,
                    why,
                })
            }
        }
    }

    /// Renders a templated message with sample values (`seq` 0, VU 0,
    /// iteration 0, the first row of each data set, random values drawn)
    /// and encodes it: a template whose rendering cannot be encoded —
    /// `{"text": {{seq}}}` into a string field, `{"{{seq}}": "x"}`, a data
    /// value that is no integer for an integer field — would fail every
    /// call with nothing sent, so it is a config error naming the field.
    /// Then every other row of each data set a template uses, the others
    /// at their first row: a row that does not fit is an error naming
    /// `file:line`, as a data value that cannot go into a path is. A field
    /// (or, for a full encode, a message) that uses a flow's captured
    /// values (`vars.*`) is not checked: those are known only when the
    /// flow runs. `data` is the run's data sets.
    pub fn check_sample(&self, data: &[Arc<DataSet>]) -> Result<(), MessageError> {
        let mut rows = vec![0u32; data.len()];
        self.try_rows(data, &rows, None)
            .map_err(|(path, what, text, hint)| MessageError::Field {
                path,
                what: format!(
                    "{what}: with sample values (seq 0, vu 0, each data set's first row) the template gives {}{hint}",
                    clip(&text)
                ),
            })?;
        let mut sets: Vec<usize> = Vec::new();
        for t in self.templates().into_iter().filter(|t| !uses_vars(t)) {
            for e in t.exprs() {
                if let Expr::Data { set, .. } = e
                    && !sets.contains(set)
                {
                    sets.push(*set);
                }
            }
        }
        for set in sets {
            for row in 1..data[set].rows {
                rows[set] = row as u32;
                self.try_rows(data, &rows, Some(set))
                    .map_err(|(path, what, text, hint)| MessageError::Field {
                        path,
                        what: format!(
                            "{what}: with row {}:{} of data set \"{}\" the template gives {}{hint}",
                            data[set].path.display(),
                            data[set].line(row),
                            data[set].name,
                            clip(&text)
                        ),
                    })?;
            }
            rows[set] = 0;
        }
        Ok(())
    }

    /// Renders and encodes the templates that do not use `vars` (with
    /// `only`, those that use data set `only`) at data rows `rows`; an
    /// error is (field path, what, the rendered text, a hint).
    fn try_rows(
        &self,
        data: &[Arc<DataSet>],
        rows: &[u32],
        only: Option<usize>,
    ) -> Result<(), (String, String, Vec<u8>, &'static str)> {
        let wanted = |t: &Template| {
            !uses_vars(t)
                && only.is_none_or(|s| {
                    t.exprs()
                        .any(|e| matches!(e, Expr::Data { set, .. } if *set == s))
                })
        };
        let seq = std::sync::atomic::AtomicU64::new(0);
        let mut rng = fastrand::Rng::with_seed(0);
        let mut ctx = Ctx::new(&seq, &mut rng);
        ctx.data = data;
        ctx.rows = rows;
        let mut text = Vec::new();
        match self {
            MessageTemplate::Fixed(_) => Ok(()),
            MessageTemplate::Patched { fields, .. } => {
                let (mut out, mut scratch) = (Vec::new(), Scratch::default());
                for f in fields.iter().filter(|f| wanted(&f.template)) {
                    text.clear();
                    // (only `vars` fail to render; they were left out)
                    if f.template
                        .render(&mut text, &mut ctx, crate::template::unsafe_in_body)
                        .is_err()
                    {
                        continue;
                    }
                    let r = if f.json {
                        Rendered::Json(&text)
                    } else {
                        Rendered::Text(&text)
                    };
                    if let Err(e) = field::append(&mut out, &f.path, r, &mut scratch) {
                        // a number or `true` where a string goes: the
                        // template stood outside quotes
                        let hint = if f.json && e.what == "expected a string" {
                            "; put the template in quotes (\"{{…}}\") for a string"
                        } else {
                            ""
                        };
                        return Err((e.path, e.what, text, hint));
                    }
                }
                Ok(())
            }
            MessageTemplate::Full {
                desc,
                template,
                why,
            } => {
                if !wanted(template)
                    || template
                        .render(&mut text, &mut ctx, crate::template::unsafe_in_body)
                        .is_err()
                {
                    return Ok(());
                }
                // a key that is a template fits only a map's keys
                let hint = if why.ends_with("a template in a field name") {
                    "; a templated name fits only a map field's keys"
                } else {
                    ""
                };
                encode_json(desc, &text)
                    .map(|_| ())
                    .map_err(|(path, what)| (path, what, text, hint))
            }
        }
    }

    /// What can be checked of `message` without the method's descriptor
    /// (a method that server reflection resolves when the run starts): it
    /// is an object or a string holding a JSON object template whose
    /// expressions compile (the template is returned: the data sets it
    /// reads are known before the method is). Field names and types are
    /// checked later, by [`MessageTemplate::new`].
    pub fn check_shape(message: &Value, scope: &Scope<'_>) -> Result<Template, MessageError> {
        let (text, template) = parse(message, scope)?;
        let marked = if template.is_dynamic() {
            mark(&template).0
        } else {
            text
        };
        match serde_json::from_str::<Value>(&marked) {
            Ok(v) if v.is_object() => Ok(template),
            Ok(v) => Err(MessageError::Json(format!("expected an object, found {v}"))),
            Err(e) => Err(MessageError::Json(e.to_string())),
        }
    }

    /// The templates rendered per request (none for a fixed message): the
    /// plan reads which data sets they take rows from.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            MessageTemplate::Fixed(_) => Vec::new(),
            MessageTemplate::Patched { fields, .. } => fields.iter().map(|f| &f.template).collect(),
            MessageTemplate::Full { template, .. } => vec![template],
        }
    }

    /// Whether each request renders something.
    pub fn is_dynamic(&self) -> bool {
        !matches!(self, MessageTemplate::Fixed(_))
    }

    /// A fixed message's whole request body (prefix and protobuf), made
    /// once at prepare and passed as the body of every stream; `None` when
    /// requests render it ([`MessageTemplate::write`]).
    pub fn fixed_body(&self) -> Option<Vec<u8>> {
        match self {
            MessageTemplate::Fixed(bytes) => {
                let mut out = Vec::with_capacity(frame::PREFIX + bytes.len());
                frame::write_message(&mut out, bytes);
                Some(out)
            }
            _ => None,
        }
    }

    /// Writes the request's gRPC message (length prefix and protobuf) into
    /// `out`. `scratch` holds buffers reused request after request.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        ctx: &mut Ctx<'_>,
        scratch: &mut MessageScratch,
    ) -> Result<(), EncodeError> {
        let at = out.len();
        frame::write_prefix(out, 0);
        match self {
            MessageTemplate::Fixed(bytes) => out.extend_from_slice(bytes),
            MessageTemplate::Patched { fixed, fields } => {
                out.extend_from_slice(fixed);
                for f in fields {
                    scratch.rendered.clear();
                    f.template
                        .render(&mut scratch.rendered, ctx, crate::template::unsafe_in_body)
                        .map_err(EncodeError::Render)?;
                    let r = if f.json {
                        Rendered::Json(&scratch.rendered)
                    } else {
                        Rendered::Text(&scratch.rendered)
                    };
                    field::append(out, &f.path, r, &mut scratch.field)?;
                }
            }
            MessageTemplate::Full { desc, template, .. } => {
                scratch.rendered.clear();
                template
                    .render(&mut scratch.rendered, ctx, crate::template::unsafe_in_body)
                    .map_err(EncodeError::Render)?;
                let bytes = encode_json(desc, &scratch.rendered)
                    .map_err(|(path, what)| EncodeError::Json(format!("{path}: {what}")))?;
                out.extend_from_slice(&bytes);
            }
        }
        let len = u32::try_from(out.len() - at - frame::PREFIX)
            .map_err(|_| EncodeError::Json("message over 4 GiB".to_string()))?;
        out[at + 1..at + frame::PREFIX].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// Buffers a connection keeps for [`MessageTemplate::write`].
#[derive(Debug, Default)]
pub struct MessageScratch {
    rendered: Vec<u8>,
    field: Scratch,
}

/// Encodes a JSON text as the message `desc` (the protobuf JSON mapping,
/// unknown fields refused); an error is (field path, what was wrong).
pub fn encode_json(desc: &MessageDescriptor, json: &[u8]) -> Result<Vec<u8>, (String, String)> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut track = serde_path_to_error::Track::new();
    let msg = DynamicMessage::deserialize(
        desc.clone(),
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
    )
    .map_err(|e| explain(desc, path_text(&track.path()), plain(&e.to_string())))?;
    de.end().map_err(|e| (String::new(), e.to_string()))?;
    Ok(msg.encode_to_vec())
}

/// The message's text (an object serialised, a template string as it is;
/// `null` is `{}`) and its template.
fn parse(message: &Value, scope: &Scope<'_>) -> Result<(String, Template), MessageError> {
    let text = match message {
        Value::Null => "{}".to_string(),
        Value::String(s) => s.clone(),
        Value::Object(_) => serde_json::to_string(message).expect("a Value serialises"),
        other => {
            return Err(MessageError::Json(format!(
                "expected an object or a string holding a JSON template, found {other}"
            )));
        }
    };
    if text.contains([OPEN, CLOSE]) {
        return Err(MessageError::Json(
            "the message holds characters U+E000/U+E001 (private use), which mark templates"
                .to_string(),
        ));
    }
    let template = Template::parse(&text, scope).map_err(MessageError::Template)?;
    Ok((text, template))
}

/// Rewrites a JSON-mapping error as (field path, what the field expects):
/// an unknown field gets its name in the path, a value of the wrong type
/// says what the field's type wants.
fn explain(desc: &MessageDescriptor, mut path: String, what: String) -> (String, String) {
    if let Some(name) = what
        .strip_prefix("unrecognized field name '")
        .and_then(|r| r.strip_suffix('\''))
    {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        return (path, "unknown field (not in the .proto)".to_string());
    }
    let mut msg = desc.clone();
    let mut leaf = None;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let Some(f) = msg
            .get_field_by_json_name(part)
            .or_else(|| msg.get_field_by_name(part))
        else {
            leaf = None;
            break;
        };
        if let Kind::Message(m) = f.kind() {
            msg = m;
        }
        leaf = Some(f);
    }
    let expected = leaf.and_then(|f| {
        if f.is_list() || f.is_map() {
            return None;
        }
        Some(match f.kind() {
            Kind::Int32
            | Kind::Int64
            | Kind::Sint32
            | Kind::Sint64
            | Kind::Sfixed32
            | Kind::Sfixed64 => "expected an integer",
            Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => {
                "expected a non-negative integer"
            }
            Kind::Float | Kind::Double => "expected a number",
            Kind::Bool => "expected true or false",
            Kind::String => "expected a string",
            Kind::Bytes => "expected a base64 string",
            Kind::Enum(_) => "expected an enum name or number",
            Kind::Message(_) => return None,
        })
    });
    match expected {
        Some(e) => (path, format!("{e} ({what})")),
        None => (path, what),
    }
}

/// Whether a template reads a flow's captured values.
fn uses_vars(t: &Template) -> bool {
    t.exprs().any(|e| matches!(e, Expr::Var(_)))
}

/// Rendered text for an error: at most 80 characters, lossy UTF-8.
fn clip(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.into_owned(),
    }
}

/// serde_path_to_error's path without its `.` placeholder for the root.
fn path_text(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." { String::new() } else { s }
}

/// serde_json's " at line 1 column 12" is about our re-serialised text,
/// not the user's: left out.
fn plain(e: &str) -> String {
    match e.rfind(" at line ") {
        Some(i) => e[..i].to_string(),
        None => e.to_string(),
    }
}

/// The template's text with each expression replaced by a marker; the
/// expressions by marker number, each with whether it stood outside a
/// JSON string.
fn mark(t: &Template) -> (String, Vec<(Expr, bool)>) {
    let mut out = String::new();
    let mut exprs = Vec::new();
    let (mut in_str, mut escaped) = (false, false);
    for p in &t.parts {
        match p {
            Part::Lit(b) => {
                for &c in b.iter() {
                    if in_str {
                        if escaped {
                            escaped = false;
                        } else if c == b'\\' {
                            escaped = true;
                        } else if c == b'"' {
                            in_str = false;
                        }
                    } else if c == b'"' {
                        in_str = true;
                    }
                }
                // Literal parts are the config's text: UTF-8, cut at `{{`.
                out.push_str(&String::from_utf8_lossy(b));
            }
            Part::Expr(e) => {
                let quote = if in_str { "" } else { "\"" };
                out.push_str(&format!("{quote}{OPEN}{}{CLOSE}{quote}", exprs.len()));
                exprs.push((e.clone(), !in_str));
            }
        }
    }
    (out, exprs)
}

/// A marked string's template: its literal pieces and expressions; `json`
/// when it is one marker that stood outside a string.
fn unmark(s: &str, exprs: &[(Expr, bool)]) -> Option<(Template, bool)> {
    if !s.contains(OPEN) {
        return None;
    }
    let mut t = Template::default();
    let mut rest = s;
    let mut json = false;
    let mut count = 0;
    while let Some(i) = rest.find(OPEN) {
        t.append(Template::literal(&rest.as_bytes()[..i]));
        let after = &rest[i + OPEN.len_utf8()..];
        let j = after.find(CLOSE)?;
        let (e, outside) = exprs.get(after[..j].parse::<usize>().ok()?)?;
        t.parts.push(Part::Expr(e.clone()));
        json |= *outside;
        count += 1;
        rest = &after[j + CLOSE.len_utf8()..];
    }
    t.append(Template::literal(rest.as_bytes()));
    // An expression outside quotes is a whole value on its own (anything
    // else next to it was not valid JSON).
    Some((t, json && count == 1 && t_is_single(s)))
}

fn t_is_single(s: &str) -> bool {
    s.starts_with(OPEN) && s.ends_with(CLOSE)
}

/// Every key of `value` (an object of message `desc`) names a field, and
/// so on down through message-typed fields, lists and map values.
fn check_names(desc: &MessageDescriptor, value: &Value, prefix: &str) -> Result<(), MessageError> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if k.contains(OPEN) {
            continue;
        }
        let Some(f) = desc
            .get_field_by_json_name(k)
            .or_else(|| desc.get_field_by_name(k))
        else {
            return Err(MessageError::Field {
                path,
                what: "unknown field (not in the .proto)".to_string(),
            });
        };
        if f.is_map() {
            let value_kind = f
                .kind()
                .as_message()
                .and_then(|e| e.map_entry_value_field().kind().as_message().cloned());
            if let (Some(m), Value::Object(entries)) = (value_kind, v) {
                for (key, entry) in entries {
                    check_names(&m, entry, &format!("{path}.{key}"))?;
                }
            }
            continue;
        }
        if let Kind::Message(m) = f.kind() {
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        check_names(&m, item, &format!("{path}[{i}]"))?;
                    }
                }
                other => check_names(&m, other, &path)?,
            }
        }
    }
    Ok(())
}

fn has_marker(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(OPEN),
        Value::Array(a) => a.iter().any(has_marker),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains(OPEN) || has_marker(v)),
        _ => false,
    }
}

enum Split {
    /// Not patchable: a full encode per request, for this reason.
    Full(String),
    Bad(MessageError),
}

/// Moves the templated fields of `value` (an object of message `desc`) into
/// `out`, leaving the fixed part in `value`.
fn split(
    desc: &MessageDescriptor,
    value: &mut Value,
    parents: &mut Vec<FieldDescriptor>,
    prefix: &str,
    exprs: &[(Expr, bool)],
    out: &mut Vec<Varying>,
) -> Result<(), Split> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if k.contains(OPEN) {
            return Err(Split::Full(format!("{path}: a template in a field name")));
        }
        let v = map.get_mut(&k).expect("key listed");
        if !has_marker(v) {
            continue;
        }
        let Some(f) = desc
            .get_field_by_json_name(&k)
            .or_else(|| desc.get_field_by_name(&k))
        else {
            return Err(Split::Bad(MessageError::Field {
                path,
                what: format!("no such field in {}", desc.full_name()),
            }));
        };
        if f.is_list() || f.is_map() {
            return Err(Split::Full(format!(
                "{path}: a template inside a repeated or map field"
            )));
        }
        parents.push(f.clone());
        let result = match (&f.kind(), &*v) {
            (Kind::Message(m), Value::Object(_)) => split(m, v, parents, &path, exprs, out),
            (_, Value::String(s)) => {
                let (template, json) = unmark(s, exprs).expect("a marker is there");
                match FieldPath::new(&path, parents) {
                    Ok(fp) => {
                        out.push(Varying {
                            path: fp,
                            template,
                            json,
                        });
                        // Left out of the fixed part: sent once, appended.
                        *v = Value::Null;
                        Ok(())
                    }
                    Err(e @ (PathError::Repeated(_) | PathError::TooDeep(_))) => {
                        Err(Split::Full(e.to_string()))
                    }
                    Err(e) => Err(Split::Bad(MessageError::Field {
                        path,
                        what: e.to_string(),
                    })),
                }
            }
            (_, other) => Err(Split::Bad(MessageError::Field {
                path,
                what: format!(
                    "unexpected value {other} for a field of type {:?}",
                    f.kind()
                ),
            })),
        };
        parents.pop();
        result?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;

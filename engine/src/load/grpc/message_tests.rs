//! Tests of [`super`]: fixed, patched and fully encoded messages against
//! the test service's `SayRequest`, and the errors a config or a rendered
//! value gets.

use super::*;
use crate::load::grpc::compile::tests::echo;
use std::sync::atomic::AtomicU64;

/// The message's set fields as JSON (defaults left out, as the request
/// tests compare what was set; a reply's JSON writes them, see response.rs).
fn to_json(
    desc: &MessageDescriptor,
    bytes: &[u8],
    _max: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let msg =
        prost_reflect::DynamicMessage::decode(desc.clone(), bytes).map_err(|e| e.to_string())?;
    *out = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
    Ok(())
}

fn input() -> MessageDescriptor {
    echo("echo.Echo/Say").input()
}

fn compile(message: Value) -> Result<MessageTemplate, MessageError> {
    let scope = Scope {
        data: &[],
        vars: None,
        env: &|name| (name == "REGION").then(|| "eu".to_string()),
    };
    MessageTemplate::new(&input(), &message, &scope)
}

/// Writes `n` requests (seq from 40) and returns each as JSON.
fn requests(t: &MessageTemplate, n: usize) -> Vec<Value> {
    let seq = AtomicU64::new(40);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut scratch = MessageScratch::default();
    (0..n)
        .map(|i| {
            let mut ctx = Ctx::new(&seq, &mut rng);
            ctx.vu = i as u64 + 1;
            let mut out = Vec::new();
            t.write(&mut out, &mut ctx, &mut scratch).unwrap();
            let len = u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize;
            assert_eq!(out[0], 0);
            assert_eq!(len, out.len() - 5, "the prefix holds the length");
            let mut json = Vec::new();
            to_json(&input(), &out[5..], 1 << 20, &mut json).unwrap();
            serde_json::from_slice(&json).unwrap()
        })
        .collect()
}

#[test]
fn a_message_without_templates_is_encoded_once() {
    let t = compile(
        serde_json::json!({"text": "hi", "user": {"id": 7, "name": "ann"}, "mood": "GRUMPY"}),
    )
    .unwrap();
    assert!(matches!(t, MessageTemplate::Fixed(_)));
    let r = requests(&t, 2);
    assert_eq!(r[0], r[1]);
    let body = t.fixed_body().unwrap();
    let mut written = Vec::new();
    let seq = AtomicU64::new(0);
    let mut rng = fastrand::Rng::with_seed(1);
    t.write(
        &mut written,
        &mut Ctx::new(&seq, &mut rng),
        &mut MessageScratch::default(),
    )
    .unwrap();
    assert_eq!(body, written);
    assert_eq!(
        r[0],
        serde_json::json!({"text": "hi", "user": {"id": "7", "name": "ann"}, "mood": "GRUMPY"})
    );
    assert!(matches!(compile(Value::Null).unwrap(), MessageTemplate::Fixed(b) if b.is_empty()));
}

#[test]
fn templated_fields_are_appended_to_the_fixed_part() {
    let t = compile(serde_json::json!({
        "text": "user-{{seq}}",
        "user": {"id": "{{vu}}", "name": "ann", "roles": ["a", "b"]},
        "count": 3,
        "loud": true,
    }))
    .unwrap();
    let MessageTemplate::Patched { fields, .. } = &t else {
        panic!("{t:?}")
    };
    let names: Vec<&str> = fields.iter().map(|f| f.path.name.as_str()).collect();
    assert_eq!(names, ["text", "user.id"]);
    let r = requests(&t, 2);
    for (i, got) in r.iter().enumerate() {
        assert_eq!(
            *got,
            serde_json::json!({
                "text": format!("user-{}", 40 + i),
                "user": {"id": (i + 1).to_string(), "name": "ann", "roles": ["a", "b"]},
                "count": 3,
                "loud": true,
            })
        );
    }
}

#[test]
fn a_json_template_string_types_its_values_by_the_descriptor() {
    let t = compile(Value::String(
        r#"{"count": {{vu}}, "big": {{seq}}, "delta": -{{vu}}, "ratio": {{vu}}.5,
            "text": "{{env.REGION}}-\"q\"-{{seq}}", "mood": "HAPPY", "loud": {{rand_int(1,1)}},
            "user": {"id": {{seq}}}}"#
            .replace("-{{vu}}", "\"-{{vu}}\"")
            .replace("{{vu}}.5", "\"{{vu}}.5\"")
            .replace("\"loud\": {{rand_int(1,1)}},", ""),
    ))
    .unwrap();
    let MessageTemplate::Patched { fields, .. } = &t else {
        panic!("{t:?}")
    };
    assert_eq!(fields.len(), 6);
    let r = requests(&t, 1);
    assert_eq!(
        r[0],
        serde_json::json!({"count": 1, "big": "40", "delta": -1, "ratio": 1.5,
            "text": "eu-\"q\"-40", "mood": "HAPPY", "user": {"id": "40"}})
    );
}

#[test]
fn every_scalar_kind_patches_like_a_full_encode() {
    // Each field templated alone: the patched bytes decode to the same
    // message as the full JSON encode of the rendered text.
    let cases = [
        ("count", "-5"),
        ("big", "18446744073709551615"),
        ("delta", "-300"),
        ("stamp", "\"12345\""),
        ("ratio", "2.5e3"),
        ("weight", "\"NaN\""),
        ("loud", "true"),
        ("text", "\"h\\u00e9llo\\n\""),
        ("blob", "\"AAEC/w==\""),
        ("mood", "2"),
        ("mood", "\"GRUMPY\""),
        ("left", "\"l\""),
        ("right", "9"),
    ];
    for (field, value) in cases {
        // The value a template would render, as full JSON and patched.
        let json = format!("{{\"{field}\": {value}}}");
        let full = encode_json(&input(), json.as_bytes()).unwrap();
        let f = input().get_field_by_name(field).unwrap();
        let path = FieldPath::new(field, &[f]).unwrap();
        let mut patched = Vec::new();
        field::patch(
            &mut patched,
            &[],
            &[(&path, Rendered::Json(value.as_bytes()))],
            &mut Scratch::default(),
        )
        .unwrap();
        // Decoded and re-encoded: the same message, whatever the
        // encoders' choices (packing, order).
        let a = DynamicMessage::decode(input(), full.as_slice())
            .unwrap()
            .encode_to_vec();
        let b = DynamicMessage::decode(input(), patched.as_slice())
            .unwrap()
            .encode_to_vec();
        assert_eq!(a, b, "{field} = {value}");
    }
}

#[test]
fn a_patched_field_overrides_and_merges_into_the_fixed_part() {
    let fixed = encode_json(
        &input(),
        br#"{"user": {"id": 1, "name": "ann"}, "left": "x"}"#,
    )
    .unwrap();
    let id = FieldPath::new(
        "user.id",
        &[
            input().get_field_by_name("user").unwrap(),
            input()
                .get_field_by_name("user")
                .unwrap()
                .kind()
                .as_message()
                .unwrap()
                .get_field_by_name("id")
                .unwrap(),
        ],
    )
    .unwrap();
    let right = FieldPath::new("right", &[input().get_field_by_name("right").unwrap()]).unwrap();
    let mut out = Vec::new();
    field::patch(
        &mut out,
        &fixed,
        &[(&id, Rendered::Text(b"99")), (&right, Rendered::Json(b"4"))],
        &mut Scratch::default(),
    )
    .unwrap();
    let mut json = Vec::new();
    to_json(&input(), &out, 1 << 20, &mut json).unwrap();
    let v: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"user": {"id": "99", "name": "ann"}, "right": 4})
    );
}

#[test]
fn a_rendered_value_of_the_wrong_type_names_the_field() {
    let t = compile(serde_json::json!({"user": {"id": "{{rand_str(3)}}x"}})).unwrap();
    let seq = AtomicU64::new(0);
    let mut rng = fastrand::Rng::with_seed(1);
    let mut ctx = Ctx::new(&seq, &mut rng);
    let e = t
        .write(&mut Vec::new(), &mut ctx, &mut MessageScratch::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "user.id: expected an integer");
    let t = compile(serde_json::json!({"count": "9{{seq}}000000000000"})).unwrap();
    let mut ctx = Ctx::new(&seq, &mut rng);
    let e = t
        .write(&mut Vec::new(), &mut ctx, &mut MessageScratch::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "count: expected a 32-bit integer");
    let t = compile(serde_json::json!({"mood": "X{{rand_str(2)}}"})).unwrap();
    let mut ctx = Ctx::new(&seq, &mut rng);
    let e = t
        .write(&mut Vec::new(), &mut ctx, &mut MessageScratch::default())
        .unwrap_err();
    let e = e.to_string();
    assert!(e.starts_with("mood: no value \"X"), "{e}");
    assert!(
        e.ends_with("in enum echo.Mood (it has MOOD_UNSPECIFIED, HAPPY, GRUMPY)"),
        "{e}"
    );
    // A fixed value of the wrong type is a config error instead.
    let e = compile(serde_json::json!({"user": {"id": "{{env.REGION}}x"}, "text": "{{seq}}"}))
        .unwrap_err();
    assert!(
        e.to_string().starts_with("user.id: expected an integer ("),
        "{e}"
    );
}

#[test]
fn wrong_names_and_types_in_the_config_name_the_field_path() {
    let e = compile(serde_json::json!({"user": {"idd": 1}})).unwrap_err();
    assert_eq!(e.to_string(), "user.idd: unknown field (not in the .proto)");
    let e = compile(serde_json::json!({"user": {"id": "x"}})).unwrap_err();
    assert!(e.to_string().starts_with("user.id: "), "{e}");
    let e = compile(serde_json::json!({"user": {"nope": "{{seq}}"}})).unwrap_err();
    assert_eq!(e.to_string(), "user.nope: no such field in echo.User");
    let e = compile(serde_json::json!({"count": "{{seq}}", "loud": "yes"})).unwrap_err();
    assert!(
        e.to_string().starts_with("loud: expected true or false ("),
        "{e}"
    );
    let e = compile(serde_json::json!({"user": {"id": {"x": "{{seq}}"}}})).unwrap_err();
    assert!(
        e.to_string().starts_with("user.id: unexpected value"),
        "{e}"
    );
    let e = compile(serde_json::json!([1])).unwrap_err();
    assert!(matches!(e, MessageError::Json(_)), "{e}");
    let e = compile(Value::String("{\"count\": {{seq}".into())).unwrap_err();
    assert!(matches!(e, MessageError::Template(_)), "{e}");
    let e = compile(Value::String("{\"count\": {{nope}}}".into())).unwrap_err();
    assert!(matches!(e, MessageError::Template(_)), "{e}");
}

#[test]
fn templates_in_repeated_or_map_fields_fall_back_to_a_full_encode() {
    for (message, why) in [
        (
            serde_json::json!({"numbers": [1, "{{vu}}"], "text": "t"}),
            "numbers: a template inside a repeated or map field",
        ),
        (
            serde_json::json!({"labels": {"k": "{{vu}}"}}),
            "labels: a template inside a repeated or map field",
        ),
        (
            serde_json::json!({"user": {"roles": ["r{{vu}}"]}}),
            "user.roles: a template inside a repeated or map field",
        ),
    ] {
        let t = compile(message).unwrap();
        let MessageTemplate::Full { why: got, .. } = &t else {
            panic!("{t:?}")
        };
        assert_eq!(got, why);
    }
    let t =
        compile(serde_json::json!({"numbers": [1, "{{vu}}"], "labels": {"k": "v{{vu}}"}})).unwrap();
    let r = requests(&t, 2);
    assert_eq!(
        r[1],
        serde_json::json!({"numbers": [1, 2], "labels": {"k": "v2"}})
    );
}

use super::*;
use proptest::prelude::*;

fn kind(text: &str) -> Option<ProblemKind> {
    check(text.as_bytes()).err().map(|p| p.kind)
}

fn nested(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

#[test]
fn accepts_ordinary_json() {
    for ok in [
        "0",
        "-0.5e-3",
        "1E+2",
        "true",
        "null",
        "\"\"",
        " { } ",
        "[]",
        r#"{"a": [1, 2, {"b": null}], "c": "x\"y\\z\u00e9\ud83d\ude00", "d": {"a": 1}}"#,
        r#"{"a":1,"A":2,"a ":3}"#,
        "123456789012345678901234567890",
        "1e308",
        "1e-400",
        "\"\u{1F600} raw UTF-8\"",
        "[{},{}]",
        r#"[{"a":1},{"a":1}]"#,
    ] {
        assert_eq!(check(ok.as_bytes()), Ok(()), "{ok}");
    }
}

#[test]
fn depth_limit_matches_serde_json() {
    let limit = DEPTH_LIMIT - 1;
    assert_eq!(check(nested(limit).as_bytes()), Ok(()));
    assert_eq!(kind(&nested(limit + 1)), Some(ProblemKind::TooDeep));
    assert_eq!(kind(&nested(100_000)), Some(ProblemKind::TooDeep));
    let objects = format!("{}1{}", "{\"a\":".repeat(limit), "}".repeat(limit));
    assert_eq!(check(objects.as_bytes()), Ok(()));
    for n in [limit, limit + 1] {
        let text = nested(n);
        assert_eq!(
            check(text.as_bytes()).is_ok(),
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "{n} levels"
        );
    }
    // Siblings do not add up.
    let wide = format!("[{}]", vec![nested(limit - 1); 50].join(","));
    assert_eq!(check(wide.as_bytes()), Ok(()));
}

#[test]
fn lone_surrogates_are_refused_in_strings_and_keys() {
    for bad in [
        r#""\ud800""#,
        r#""\uD800x""#,
        r#""\udc00""#,
        r#""\ud800\u0041""#,
        r#""\ud800\ud800""#,
        r#""\ud800\n""#,
        r#"{"\udfff": 1}"#,
        r#"["ok", {"k": "a\ud834"}]"#,
    ] {
        assert_eq!(kind(bad), Some(ProblemKind::LoneSurrogate), "{bad}");
    }
    assert_eq!(check(br#""\ud834\udd1e""#), Ok(()));
}

#[test]
fn duplicate_keys_are_refused_after_unescaping() {
    assert_eq!(
        kind(r#"{"a":1,"a":2}"#),
        Some(ProblemKind::DuplicateKey("a".into()))
    );
    assert_eq!(
        kind(r#"{"a":1,"\u0061":2}"#),
        Some(ProblemKind::DuplicateKey("a".into()))
    );
    assert_eq!(
        kind(r#"{"x\n":1,"x\u000a":2}"#),
        Some(ProblemKind::DuplicateKey("x\n".into()))
    );
    assert_eq!(
        kind(r#"{"o":{"a":1,"b":{"a":2},"a":3}}"#),
        Some(ProblemKind::DuplicateKey("a".into()))
    );
    // Many keys (the set path), the duplicate last.
    let mut members: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
    assert_eq!(
        check(format!("{{{}}}", members.join(",")).as_bytes()),
        Ok(())
    );
    members.push("\"k7\":0".into());
    assert_eq!(
        kind(&format!("{{{}}}", members.join(","))),
        Some(ProblemKind::DuplicateKey("k7".into()))
    );
    // An object at the same depth later starts empty.
    assert_eq!(check(br#"[{"a":1},{"a":2,"b":{"a":3}},{"a":4}]"#), Ok(()));
}

#[test]
fn numbers_out_of_range_are_refused() {
    for bad in ["1e400", "-1e309", "[1.8e308]", &"9".repeat(400)] {
        assert_eq!(kind(bad), Some(ProblemKind::NumberOutOfRange), "{bad}");
    }
    assert_eq!(check(b"1.7976931348623157e308"), Ok(()));
    assert_eq!(check(b"0e99999999999999999999"), Ok(()));
}

#[test]
fn syntax_errors_are_refused() {
    for bad in [
        "",
        " ",
        "{",
        "[1,]",
        "[1 2]",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "01",
        "1.",
        "-",
        "1e",
        "tru",
        "nul",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"a\nb\"",
        "[]]",
        "{}x",
        "\u{feff}1",
        "'a'",
        "{\"a\":1,}",
        "[,1]",
    ] {
        assert!(
            matches!(kind(bad), Some(ProblemKind::Syntax(_))),
            "{bad:?}: {:?}",
            kind(bad)
        );
    }
    assert!(matches!(
        check(b"\"\xff\""),
        Err(JsonProblem {
            kind: ProblemKind::Syntax(_),
            ..
        })
    ));
}

#[test]
fn messages_say_where_and_what_to_do() {
    let p = check(br#"{"a":1,"a":2}"#).unwrap_err();
    assert_eq!(p.offset, 7);
    assert!(p.to_string().contains("\"a\" twice"), "{p}");
    let p = check(br#"["\ud800"]"#).unwrap_err();
    assert_eq!(p.offset, 2);
    assert!(p.to_string().contains("lone surrogate"), "{p}");
    let p = check(nested(200).as_bytes()).unwrap_err();
    assert_eq!(p.offset, DEPTH_LIMIT - 1);
    assert!(p.to_string().contains("127 levels"), "{p}");
}

#[test]
fn check_events_names_index_and_field() {
    let ok = NewEvent::json("k", &serde_json::json!({"a": 1}), None);
    let mut bad = ok.clone();
    bad.metadata =
        Some(serde_json::value::RawValue::from_string(r#"{"u":"\udc00"}"#.into()).unwrap());
    let err = check_events(&[ok.clone(), bad]).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("events[1].metadata"));
    assert!(err.to_string().contains("lone surrogate"), "{err}");
    assert!(check_events(&[ok]).is_ok());
}

/// Any JSON value serde_json can produce (no duplicate keys, valid
/// Unicode, finite numbers), shallow.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..20)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON-ish text: the alphabet of JSON, escapes (surrogates included),
/// numbers, so random strings hit every path of the scanner.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"".to_string()),
        Just("\"a\"".to_string()),
        Just("\"a\":".to_string()),
        Just(" ".to_string()),
        Just("\\".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("-".to_string()),
        Just("e".to_string()),
        Just(".".to_string()),
        "[0-9]{1,3}".prop_map(|s| s),
        (0xD7F0u32..0xE010).prop_map(|u| format!("\\u{u:04x}")),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = check(&bytes);
    }

    /// Whatever passes is JSON serde_json parses (and so every kit).
    #[test]
    fn accepted_text_parses_with_serde_json(text in jsonish()) {
        if check(text.as_bytes()).is_ok() {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{}", text);
        }
    }

    /// A valid document with random JSON tokens spliced in: whatever
    /// still passes parses with serde_json.
    #[test]
    fn spliced_documents_pass_only_when_serde_json_parses(
        value in json_value(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), jsonish()), 1..4),
    ) {
        let mut text = serde_json::to_string(&value).unwrap();
        for (at, insert) in cuts {
            let mut at = at.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &insert);
        }
        if check(text.as_bytes()).is_ok() {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{}", text);
        }
    }

    /// On strings serde_json parses fully, the two agree exactly.
    #[test]
    fn agrees_with_serde_json_on_strings(text in jsonish()) {
        let quoted = format!("\"{}\"", text.replace('"', ""));
        prop_assert_eq!(
            check(quoted.as_bytes()).is_ok(),
            serde_json::from_str::<String>(&quoted).is_ok(),
            "{}", quoted
        );
    }

    /// Every document serde_json writes passes, compact or pretty.
    #[test]
    fn serde_json_output_passes(value in json_value()) {
        let compact = serde_json::to_string(&value).unwrap();
        prop_assert_eq!(check(compact.as_bytes()), Ok(()), "{}", compact);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(check(pretty.as_bytes()), Ok(()));
    }

    /// Objects of any size: a duplicate is found exactly when there is one
    /// (keys drawn from a small set, some escaped, so repeats are common).
    #[test]
    fn duplicates_found_exactly(keys in prop::collection::vec(("[ab\\\\]{1,2}", any::<bool>()), 0..40)) {
        let mut seen = std::collections::HashSet::new();
        let mut repeated = false;
        let members: Vec<String> = keys
            .iter()
            .map(|(key, escape)| {
                repeated |= !seen.insert(key.clone());
                let text = serde_json::to_string(key).unwrap();
                // Spell `a` as `\u0061` sometimes: the same key.
                let text = if *escape { text.replace('a', "\\u0061") } else { text };
                format!("{text}:[{{\"a\":1,\"a\\u0000\":2}}]")
            })
            .collect();
        let text = format!("[{{{}}}]", members.join(","));
        let found = check(text.as_bytes()).map_err(|p| p.kind);
        prop_assert_eq!(matches!(found, Err(ProblemKind::DuplicateKey(_))), repeated, "{}", text);
        prop_assert!(found.is_ok() || repeated);
    }

    /// A key repeated in any object is found.
    #[test]
    fn a_repeated_key_is_found(value in json_value(), key in any::<String>()) {
        let text = format!(
            "{{{k}:1,\"other\":{v},{k}:2}}",
            k = serde_json::to_string(&key).unwrap(),
            v = serde_json::to_string(&value).unwrap()
        );
        prop_assert_eq!(
            check(text.as_bytes()).map_err(|p| p.kind),
            Err(ProblemKind::DuplicateKey(key))
        );
    }
}

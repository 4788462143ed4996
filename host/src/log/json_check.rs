//! Is this JSON text something every projection kit can parse?
//!
//! The log stores an event's `data` and `metadata` exactly as the client
//! sent them, and every strict projection parses them. Syntactically valid
//! JSON can still break a kit, and then every projection following the
//! stream faults on that event forever. [`check`] refuses, in one pass over
//! the bytes and without building a tree:
//!
//! - nesting [`DEPTH_LIMIT`] arrays/objects deep or more (serde_json, which
//!   the Rust kit uses, stops there with "recursion limit exceeded");
//! - a lone surrogate escape (`"\ud800"` without its low half, or a low
//!   half alone), in a string or a key: not Unicode, so no kit can turn it
//!   into a string;
//! - the same key twice in one object (after unescaping): kits disagree on
//!   which value wins;
//! - a number too large for a 64-bit float (`1e400`): serde_json refuses it,
//!   JavaScript and Python silently turn it into infinity.
//!
//! It is also a complete JSON validator (RFC 8259), so it can be given any
//! bytes; the log only ever gives it text serde_json has already accepted.

use std::borrow::Cow;
use std::fmt;

use super::{LogError, NewEvent};

/// Arrays and objects may nest at most `DEPTH_LIMIT - 1` deep: serde_json's
/// recursion limit of 128 refuses the 128th level.
pub const DEPTH_LIMIT: usize = 128;

/// What is wrong with a JSON text, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonProblem {
    /// Byte offset in the text where the problem was found.
    pub offset: usize,
    /// The problem.
    pub kind: ProblemKind,
}

/// The kinds of [`JsonProblem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Arrays/objects nested [`DEPTH_LIMIT`] deep or more.
    TooDeep,
    /// A `\uD800`-`\uDFFF` escape that is not half of a surrogate pair.
    LoneSurrogate,
    /// A key seen twice in one object (the key, unescaped).
    DuplicateKey(String),
    /// A number whose magnitude overflows a 64-bit float.
    NumberOutOfRange,
    /// Not JSON at all (what was expected).
    Syntax(&'static str),
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            ProblemKind::TooDeep => write!(
                f,
                "nests arrays/objects {DEPTH_LIMIT} levels deep (at byte {at}): every projection \
                 kit parses at most {} levels; flatten the data",
                DEPTH_LIMIT - 1
            ),
            ProblemKind::LoneSurrogate => write!(
                f,
                "holds a lone surrogate escape (at byte {at}): a \\ud800-\\udbff escape must be \
                 followed by a \\udc00-\\udfff one, and the low half never stands alone; such a \
                 string is not Unicode and no projection kit can read it"
            ),
            ProblemKind::DuplicateKey(key) => write!(
                f,
                "has the key {key:?} twice in one object (at byte {at}): keys must be unique, \
                 or projection kits disagree on which value wins"
            ),
            ProblemKind::NumberOutOfRange => write!(
                f,
                "holds a number too large for a 64-bit float (at byte {at}): projection kits \
                 refuse it or turn it into infinity; send it as a string"
            ),
            ProblemKind::Syntax(what) => write!(f, "is not valid JSON at byte {at}: {what}"),
        }
    }
}

impl std::error::Error for JsonProblem {}

/// Check JSON text given as bytes (must be UTF-8); see the module docs.
pub fn check(json: &[u8]) -> Result<(), JsonProblem> {
    match std::str::from_utf8(json) {
        Ok(text) => check_str(text),
        Err(e) => Err(JsonProblem {
            offset: e.valid_up_to(),
            kind: ProblemKind::Syntax("the text is not UTF-8"),
        }),
    }
}

/// Check JSON text; see the module docs.
pub fn check_str(json: &str) -> Result<(), JsonProblem> {
    Scanner {
        b: json.as_bytes(),
        i: 0,
        depth: 0,
        frames: Vec::new(),
        scratch: Vec::new(),
    }
    .run()
}

/// The append hook: the first event of the batch whose `data` or `metadata`
/// fails [`check_str`], as the log's 400 error naming index and field.
pub fn check_events(events: &[NewEvent]) -> Result<(), LogError> {
    for (index, e) in events.iter().enumerate() {
        let fields = [("data", Some(&e.data)), ("metadata", e.metadata.as_ref())];
        for (field, raw) in fields {
            if let Some(raw) = raw {
                check_str(raw.get()).map_err(|problem| LogError::InvalidEvent {
                    index,
                    field,
                    reason: problem.to_string(),
                })?;
            }
        }
    }
    Ok(())
}

/// Objects with up to this many keys are checked for a duplicate as each
/// key arrives (a linear search); larger ones once more when they close,
/// by sorting their keys: O(n log n) whatever the keys (no hash to attack).
const SMALL_OBJECT: usize = 8;

/// The keys of one open object with their offsets (reused between objects
/// at the same depth, so a document allocates per depth, not per object).
#[derive(Default)]
struct Keys<'a> {
    list: Vec<(Cow<'a, [u8]>, usize)>,
}

fn duplicate(key: &[u8], offset: usize) -> JsonProblem {
    JsonProblem {
        offset,
        kind: ProblemKind::DuplicateKey(String::from_utf8_lossy(key).into_owned()),
    }
}

impl<'a> Keys<'a> {
    /// Add the key found at `offset`.
    fn insert(&mut self, key: Cow<'a, [u8]>, offset: usize) -> Result<(), JsonProblem> {
        if self.list.len() < SMALL_OBJECT && self.list.iter().any(|(k, _)| *k == key) {
            return Err(duplicate(&key, offset));
        }
        self.list.push((key, offset));
        Ok(())
    }

    /// The object is closed: check the keys the linear search did not.
    fn finish(&mut self) -> Result<(), JsonProblem> {
        if self.list.len() <= SMALL_OBJECT {
            return Ok(());
        }
        self.list.sort_unstable();
        for pair in self.list.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(duplicate(&pair[1].0, pair[1].1));
            }
        }
        Ok(())
    }
}

/// Past the plain characters of a string from `i` (up to a `"`, a `\` or a
/// control character, or the end), eight bytes at a time.
#[inline]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // A zero byte in `quote`/`backslash`, or a byte below 0x20 in `v`.
        let special = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v);
        if special & HIGH != 0 {
            break;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// What the scanner expects next.
#[derive(Clone, Copy)]
enum Next {
    /// A value (the document, an array element, an object member's value).
    Value,
    /// `,` or the closing bracket of the innermost container, or the end.
    AfterValue,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// Open containers.
    depth: usize,
    /// `frames[..depth]` are the open containers, outermost first; the
    /// ones after are kept for their allocations.
    frames: Vec<Frame<'a>>,
    /// Unescaped key being built.
    scratch: Vec<u8>,
}

/// One open container; objects carry their key set.
struct Frame<'a> {
    object: bool,
    keys: Keys<'a>,
}

impl<'a> Scanner<'a> {
    fn err<T>(&self, kind: ProblemKind) -> Result<T, JsonProblem> {
        Err(JsonProblem {
            offset: self.i,
            kind,
        })
    }

    fn syntax<T>(&self, what: &'static str) -> Result<T, JsonProblem> {
        self.err(ProblemKind::Syntax(what))
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn run(mut self) -> Result<(), JsonProblem> {
        let mut next = Next::Value;
        loop {
            self.skip_ws();
            match next {
                Next::Value => {
                    let Some(c) = self.peek() else {
                        return self.syntax("expected a value");
                    };
                    match c {
                        b'{' | b'[' => {
                            if self.depth + 1 >= DEPTH_LIMIT {
                                return self.err(ProblemKind::TooDeep);
                            }
                            self.i += 1;
                            let object = c == b'{';
                            self.open(object);
                            self.skip_ws();
                            let close = if object { b'}' } else { b']' };
                            if self.peek() == Some(close) {
                                self.i += 1;
                                self.close()?;
                                next = Next::AfterValue;
                            } else if object {
                                self.key()?;
                            }
                            // else: an array's first element follows (Next::Value).
                        }
                        b'"' => {
                            self.string(false)?;
                            next = Next::AfterValue;
                        }
                        b't' => {
                            self.literal(b"true")?;
                            next = Next::AfterValue;
                        }
                        b'f' => {
                            self.literal(b"false")?;
                            next = Next::AfterValue;
                        }
                        b'n' => {
                            self.literal(b"null")?;
                            next = Next::AfterValue;
                        }
                        b'-' | b'0'..=b'9' => {
                            self.number()?;
                            next = Next::AfterValue;
                        }
                        _ => return self.syntax("expected a value"),
                    }
                }
                Next::AfterValue => {
                    if self.depth == 0 {
                        if self.i != self.b.len() {
                            return self.syntax("trailing characters after the value");
                        }
                        return Ok(());
                    }
                    let object = self.frames[self.depth - 1].object;
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            if object {
                                self.skip_ws();
                                self.key()?;
                            }
                            next = Next::Value;
                        }
                        Some(b'}') if object => {
                            self.i += 1;
                            self.close()?;
                        }
                        Some(b']') if !object => {
                            self.i += 1;
                            self.close()?;
                        }
                        _ if object => return self.syntax("expected `,` or `}`"),
                        _ => return self.syntax("expected `,` or `]`"),
                    }
                }
            }
        }
    }

    /// Enter a container (frames are reused by depth).
    fn open(&mut self, object: bool) {
        if self.frames.len() == self.depth {
            self.frames.push(Frame {
                object,
                keys: Keys::default(),
            });
        } else {
            let frame = &mut self.frames[self.depth];
            frame.object = object;
            if object {
                frame.keys.list.clear();
            }
        }
        self.depth += 1;
    }

    /// Leave the innermost container (an object checks its keys).
    fn close(&mut self) -> Result<(), JsonProblem> {
        self.depth -= 1;
        let frame = &mut self.frames[self.depth];
        if frame.object {
            frame.keys.finish()?;
        }
        Ok(())
    }

    /// A member's key and its `:`; checks it is new in the object.
    fn key(&mut self) -> Result<(), JsonProblem> {
        if self.peek() != Some(b'"') {
            return self.syntax("expected a string key");
        }
        let at = self.i;
        let key = self.string(true)?;
        self.frames[self.depth - 1].keys.insert(key, at)?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return self.syntax("expected `:` after the key");
        }
        self.i += 1;
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonProblem> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.syntax("expected `true`, `false` or `null`")
        }
    }

    /// A string starting at `"`. For a key, its unescaped bytes (borrowed
    /// when it has no escapes); otherwise nothing.
    fn string(&mut self, want: bool) -> Result<Cow<'a, [u8]>, JsonProblem> {
        let b = self.b;
        self.i += 1;
        let start = self.i;
        // Start of the plain run not yet copied to `scratch` (keys with escapes).
        let mut run = start;
        let mut escaped = false;
        loop {
            self.i = skip_plain(b, self.i);
            match b.get(self.i) {
                None => return self.syntax("unterminated string"),
                Some(b'"') => break,
                Some(b'\\') => {
                    if want {
                        if !escaped {
                            self.scratch.clear();
                        }
                        self.scratch.extend_from_slice(&b[run..self.i]);
                    }
                    escaped = true;
                    self.escape(want)?;
                    run = self.i;
                }
                Some(_) => return self.syntax("control character in a string: escape it"),
            }
        }
        let end = self.i;
        self.i += 1;
        if !want {
            return Ok(Cow::Borrowed(&[]));
        }
        Ok(if escaped {
            self.scratch.extend_from_slice(&b[run..end]);
            Cow::Owned(self.scratch.clone())
        } else {
            Cow::Borrowed(&b[start..end])
        })
    }

    /// One escape starting at `\`; appends its character to `scratch` when
    /// `want`.
    fn escape(&mut self, want: bool) -> Result<(), JsonProblem> {
        let at = self.i;
        let Some(&c) = self.b.get(self.i + 1) else {
            return self.syntax("unterminated escape");
        };
        self.i += 2;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        let paired = self.b.get(self.i) == Some(&b'\\')
                            && self.b.get(self.i + 1) == Some(&b'u');
                        if !paired {
                            return Err(JsonProblem {
                                offset: at,
                                kind: ProblemKind::LoneSurrogate,
                            });
                        }
                        self.i += 2;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(JsonProblem {
                                offset: at,
                                kind: ProblemKind::LoneSurrogate,
                            });
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(JsonProblem {
                            offset: at,
                            kind: ProblemKind::LoneSurrogate,
                        })
                    }
                    other => other,
                };
                if want {
                    let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                    let mut buf = [0u8; 4];
                    self.scratch
                        .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                return Ok(());
            }
            _ => {
                self.i = at;
                return self.syntax("invalid escape");
            }
        };
        if want {
            self.scratch.push(simple);
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonProblem> {
        let Some(digits) = self.b.get(self.i..self.i + 4) else {
            return self.syntax("a \\u escape needs four hex digits");
        };
        let mut v = 0u32;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.syntax("a \\u escape needs four hex digits"),
            };
            v = v << 4 | u32::from(n);
        }
        self.i += 4;
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// A number; refuses one that overflows an f64 (as serde_json does).
    fn number(&mut self) -> Result<(), JsonProblem> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_digits = match self.peek() {
            Some(b'0') => {
                self.i += 1;
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.syntax("expected a digit"),
        };
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return self.syntax("expected a digit after `.`");
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            exponent = true;
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.syntax("expected a digit in the exponent");
            }
        }
        // Without an exponent, fewer than 309 integer digits is always finite.
        if exponent || int_digits > 308 {
            let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("0");
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                self.i = start;
                return self.err(ProblemKind::NumberOutOfRange);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
}

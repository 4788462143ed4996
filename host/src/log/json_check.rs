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
mod tests;

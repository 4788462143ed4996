//! Canonical JSON: the one text every Hume kit (Rust, Python, JavaScript, C)
//! writes for a state, so the same events give byte-identical snapshots in
//! every language.
//!
//! - **Objects**: keys sorted by code point (UTF-8 byte order), whatever the
//!   type: a struct's fields, a `HashMap`, a `BTreeMap`, a flattened struct.
//!   A key that repeats keeps its last value.
//! - **No whitespace**; strings escaped as `serde_json` does (`\"`, `\\`,
//!   `\n`, `\r`, `\t`, `\b`, `\f`, `\u00XX` for other control characters;
//!   everything else, non-ASCII included, as is).
//! - **Integers** (`i64`, `u64`, and `i128`/`u128`): their exact decimal digits.
//! - **Floats** (`f64`; `f32` with its own shortest digits): as ECMAScript's
//!   `Number.prototype.toString` (and RFC 8785) writes a double: the
//!   shortest digits that read back to the same double, closest to it;
//!   positional from `1e-6` up to `1e21` (`0.000001`, `123.5`,
//!   `100000000000000000000`), exponent form outside (`1e-7`, `1e+21`,
//!   `1.5e+300`); an integral value has no fraction (`2.0` is `2`); `-0.0`
//!   is `0`; NaN and infinities are `null`.
//!
//! Reading goes the other way: an integer literal within the 64-bit range
//! (-2^63 ..= 2^64 - 1) is that exact integer, every other number is the
//! correctly rounded double (`serde_json` with `float_roundtrip`, which this
//! crate turns on), and a number too large for a double is an error.
//!
//! [`to_vec`] writes any `Serialize` value this way in one pass: objects whose
//! keys come in order (a `BTreeMap`, a [`StateMap`](crate::StateMap)) are
//! written straight through; the entries of the others are reordered in
//! place when the object ends.

use serde::ser::{self, Impossible, Serialize};

/// The error of [`to_vec`]: `serde_json`'s (a map key that is not a string,
/// or an error raised by a `Serialize` impl).
pub type Error = serde_json::Error;

/// `value` as canonical JSON bytes (see the [module](self) documentation).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut ser = Canonical {
        out: Vec::with_capacity(128),
        keys: Vec::new(),
        entries: Vec::new(),
    };
    value.serialize(&mut ser)?;
    Ok(ser.out)
}

/// `value` as canonical JSON text.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let bytes = to_vec(value)?;
    // SAFETY: the serializer writes only UTF-8 (str contents and ASCII).
    Ok(unsafe { String::from_utf8_unchecked(bytes) })
}

/// Append the canonical text of the double `value` to `out`.
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
    } else if value == 0.0 {
        out.push(b'0');
    } else {
        let mut buffer = zmij::Buffer::new();
        layout(out, buffer.format_finite(value).as_bytes());
    }
}

/// Append the canonical text of the single-precision `value` (its own
/// shortest digits, laid out like a double's) to `out`.
pub fn write_f32(out: &mut Vec<u8>, value: f32) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
    } else if value == 0.0 {
        out.push(b'0');
    } else {
        let mut buffer = zmij::Buffer::new();
        layout(out, buffer.format_finite(value).as_bytes());
    }
}

/// Re-lay out a finite, non-zero number printed by zmij
/// (`-?D+(.D+)?(e[+-]?D+)?`, shortest digits) as ECMAScript's
/// Number::toString does.
fn layout(out: &mut Vec<u8>, text: &[u8]) {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // The significant digits and `point`: the value is 0.DIGITS x 10^point.
    let mut digits = [0u8; 32];
    let mut len = 0usize;
    let mut point = 0i32;
    let mut seen_point = false;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'.' => seen_point = true,
            d @ b'0'..=b'9' => {
                if len == 0 && d == b'0' {
                    // a leading zero: 0.00123 has its point before the zeros
                    if seen_point {
                        point -= 1;
                    }
                } else {
                    if len < digits.len() {
                        digits[len] = d;
                        len += 1;
                    }
                    if !seen_point {
                        point += 1;
                    }
                }
            }
            _ => break, // 'e'
        }
        i += 1;
    }
    if i < text.len() {
        let mut exponent = 0i32;
        let mut sign = 1;
        for &c in &text[i + 1..] {
            match c {
                b'-' => sign = -1,
                b'+' => {}
                d => exponent = exponent * 10 + i32::from(d - b'0'),
            }
        }
        point += sign * exponent;
    }
    while len > 1 && digits[len - 1] == b'0' {
        len -= 1;
    }
    let digits = &digits[..len];
    let k = len as i32;
    let n = point;
    if negative {
        out.push(b'-');
    }
    if k <= n && n <= 21 {
        out.extend_from_slice(digits);
        out.resize(out.len() + (n - k) as usize, b'0');
    } else if 0 < n && n <= 21 {
        out.extend_from_slice(&digits[..n as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-n) as usize, b'0');
        out.extend_from_slice(digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let e = n - 1;
        out.push(if e < 0 { b'-' } else { b'+' });
        let mut buffer = [0u8; 10];
        out.extend_from_slice(format_u32(&mut buffer, e.unsigned_abs()));
    }
}

fn format_u32(buffer: &mut [u8; 10], mut v: u32) -> &[u8] {
    let mut i = buffer.len();
    loop {
        i -= 1;
        buffer[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buffer[i..]
}

/// One member of an object being written: where its key is, and its
/// `"key":value` bytes (in `out`, without the separating comma).
#[derive(Clone, Copy)]
struct Entry {
    key: KeyAt,
    bytes: (usize, usize),
}

/// Where the text of a key is: between its quotes in `out` when writing it
/// escaped nothing (the usual case: no copy), else in `keys`.
#[derive(Clone, Copy)]
enum KeyAt {
    Out(usize, usize),
    Keys(usize, usize),
}

impl KeyAt {
    #[inline]
    fn text<'a>(self, out: &'a [u8], keys: &'a [u8]) -> &'a [u8] {
        match self {
            KeyAt::Out(start, end) => &out[start..end],
            KeyAt::Keys(start, end) => &keys[start..end],
        }
    }
}

/// The serializer: writes into `out`; `keys` and `entries` hold the members
/// of the objects still open (innermost last).
struct Canonical {
    out: Vec<u8>,
    keys: Vec<u8>,
    entries: Vec<Entry>,
}

impl Canonical {
    fn json(&mut self) -> serde_json::Serializer<&mut Vec<u8>> {
        serde_json::Serializer::new(&mut self.out)
    }

    fn begin_object(&mut self, variant: Option<&'static str>) -> Result<Object<'_>, Error> {
        let close: &'static [u8] = match variant {
            Some(name) => {
                self.out.push(b'{');
                ser::Serializer::serialize_str(&mut self.json(), name)?;
                self.out.extend_from_slice(b":{");
                b"}}"
            }
            None => {
                self.out.push(b'{');
                b"}"
            }
        };
        Ok(Object {
            start: self.out.len(),
            first: self.entries.len(),
            key_base: self.keys.len(),
            members: 0,
            last_key: None,
            sorted: true,
            raw: false,
            close,
            ser: self,
        })
    }

    fn begin_array(&mut self, variant: Option<&'static str>) -> Result<Array<'_>, Error> {
        let close: &'static [u8] = match variant {
            Some(name) => {
                self.out.push(b'{');
                ser::Serializer::serialize_str(&mut self.json(), name)?;
                self.out.extend_from_slice(b":[");
                b"]}"
            }
            None => {
                self.out.push(b'[');
                b"]"
            }
        };
        Ok(Array {
            ser: self,
            first: true,
            close,
        })
    }
}

impl<'a> ser::Serializer for &'a mut Canonical {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        (&mut self.json()).serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        (&mut self.json()).serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        (&mut self.json()).serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        (&mut self.json()).serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        (&mut self.json()).serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        (&mut self.json()).serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        (&mut self.json()).serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        (&mut self.json()).serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        (&mut self.json()).serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        (&mut self.json()).serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        write_f32(&mut self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        write_f64(&mut self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        (&mut self.json()).serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // as serde_json: an array of numbers
        (&mut self.json()).serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        self.serialize_str(variant)?;
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, Error> {
        self.begin_array(None)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Array<'a>, Error> {
        self.begin_array(None)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Array<'a>, Error> {
        self.begin_array(None)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, Error> {
        self.begin_array(Some(variant))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a>, Error> {
        self.begin_object(None)
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Object<'a>, Error> {
        if name == RAW_VALUE_TOKEN {
            // A `serde_json::value::RawValue`: its text is parsed and
            // written canonically by `serialize_field`.
            return Ok(Object {
                start: self.out.len(),
                first: self.entries.len(),
                key_base: self.keys.len(),
                members: 0,
                last_key: None,
                sorted: true,
                raw: true,
                close: b"",
                ser: self,
            });
        }
        self.begin_object(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Object<'a>, Error> {
        self.begin_object(Some(variant))
    }
}

/// The struct name through which `serde_json::value::RawValue` serialises.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// An array being written.
struct Array<'a> {
    ser: &'a mut Canonical,
    first: bool,
    close: &'static [u8],
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.ser)
    }

    fn finish(self) -> Result<(), Error> {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeSeq for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// An object being written: its members go to `out` as they come. While
/// their keys come in order, only the last key is remembered; at the first
/// key out of order the members so far are split out of `out` into
/// `ser.entries`, every later one is recorded there, and the members are
/// reordered when the object ends.
struct Object<'a> {
    ser: &'a mut Canonical,
    /// Where the members start in `out` (after the `{`).
    start: usize,
    /// This object's first entry in `ser.entries`.
    first: usize,
    /// This object's first key byte in `ser.keys`.
    key_base: usize,
    /// Members written so far.
    members: usize,
    /// The last member's key.
    last_key: Option<KeyAt>,
    /// Whether every key so far came after the one before it (nothing in
    /// `ser.entries` yet).
    sorted: bool,
    /// A `RawValue`: no braces of its own.
    raw: bool,
    close: &'static [u8],
}

impl Object<'_> {
    #[inline]
    fn key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), Error> {
        let ser = &mut *self.ser;
        if self.members > 0 {
            ser.out.push(b',');
        }
        let start = ser.out.len();
        let at = key.serialize(KeySerializer {
            out: &mut ser.out,
            keys: &mut ser.keys,
        })?;
        ser.out.push(b':');
        if self.sorted {
            if let Some(last) = self.last_key {
                if !before(last.text(&ser.out, &ser.keys), at.text(&ser.out, &ser.keys)) {
                    // out of order: from now on every member is recorded
                    split_members(ser, self.start, start - 1);
                    self.sorted = false;
                }
            }
        }
        if !self.sorted {
            ser.entries.push(Entry {
                key: at,
                bytes: (start, 0),
            });
        }
        self.last_key = Some(at);
        self.members += 1;
        Ok(())
    }

    fn value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), Error> {
        if self.sorted {
            return value.serialize(&mut *self.ser);
        }
        let index = self.ser.entries.len() - 1;
        value.serialize(&mut *self.ser)?;
        self.ser.entries[index].bytes.1 = self.ser.out.len();
        Ok(())
    }

    fn field<V: Serialize + ?Sized>(&mut self, key: &'static str, value: &V) -> Result<(), Error> {
        if self.raw {
            let parsed = match value.serialize(serde_json::value::Serializer)? {
                serde_json::Value::String(text) => serde_json::from_str(&text)?,
                other => other,
            };
            return serde_json::Value::serialize(&parsed, &mut *self.ser);
        }
        self.key(key)?;
        self.value(value)
    }

    fn finish(self) -> Result<(), Error> {
        let ser = self.ser;
        if !self.sorted {
            reorder(
                &mut ser.out,
                self.start,
                &ser.entries[self.first..],
                &ser.keys,
            );
        }
        ser.entries.truncate(self.first);
        ser.keys.truncate(self.key_base);
        ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// Whether key `a` sorts strictly before key `b` (byte order). A loop, not
/// `a < b`: keys are short and a `memcmp` call per member costs more.
#[inline]
fn before(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// Record, in `ser.entries`, the members already written in
/// `out[start..end]` (`"key":value,...`, compact JSON that this serializer
/// wrote).
#[cold]
fn split_members(ser: &mut Canonical, start: usize, end: usize) {
    // The end of the string literal starting at `i` (after its quote).
    fn string_end(text: &[u8], mut i: usize) -> usize {
        i += 1;
        while text[i] != b'"' {
            i += if text[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    }
    let text = &ser.out[..end];
    let mut i = start;
    while i < end {
        let member = i;
        let key_end = string_end(text, i);
        let key = if text[i + 1..key_end - 1].contains(&b'\\') {
            let unescaped: String =
                serde_json::from_slice(&text[i..key_end]).expect("a key this serializer wrote");
            let at = ser.keys.len();
            ser.keys.extend_from_slice(unescaped.as_bytes());
            KeyAt::Keys(at, ser.keys.len())
        } else {
            KeyAt::Out(i + 1, key_end - 1)
        };
        i = key_end + 1; // the `:`
        let mut depth = 0usize;
        while i < end {
            match text[i] {
                b'"' => {
                    i = string_end(text, i);
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        ser.entries.push(Entry {
            key,
            bytes: (member, i),
        });
        i += 1; // the `,`
    }
}

/// Rewrite the members of an object (from `start` to the end of `out`) in
/// key order, keeping the last of equal keys.
#[cold]
fn reorder(out: &mut Vec<u8>, start: usize, entries: &[Entry], keys: &[u8]) {
    let text: &[u8] = out;
    let key = |e: &Entry| e.key.text(text, keys);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // stable: equal keys stay in the order they were written
    order.sort_by(|&a, &b| key(&entries[a]).cmp(key(&entries[b])));
    let mut members = Vec::with_capacity(text.len() - start);
    for (i, &at) in order.iter().enumerate() {
        let entry = &entries[at];
        if order
            .get(i + 1)
            .is_some_and(|&next| key(&entries[next]) == key(entry))
        {
            continue; // a later value of the same key wins
        }
        if !members.is_empty() {
            members.push(b',');
        }
        members.extend_from_slice(&text[entry.bytes.0..entry.bytes.1]);
    }
    out.truncate(start);
    out.extend_from_slice(&members);
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

fn key_must_be_a_string() -> Error {
    ser::Error::custom("key must be a string")
}

/// Writes a map key as a JSON string to `out` and says where its text is:
/// strings, and what `serde_json` also turns into a key (integers,
/// booleans, chars, finite floats, unit variants).
struct KeySerializer<'a> {
    out: &'a mut Vec<u8>,
    keys: &'a mut Vec<u8>,
}

impl KeySerializer<'_> {
    fn display(self, v: impl std::fmt::Display) -> Result<KeyAt, Error> {
        ser::Serializer::serialize_str(self, &v.to_string())
    }
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = KeyAt;
    type Error = Error;
    type SerializeSeq = Impossible<KeyAt, Error>;
    type SerializeTuple = Impossible<KeyAt, Error>;
    type SerializeTupleStruct = Impossible<KeyAt, Error>;
    type SerializeTupleVariant = Impossible<KeyAt, Error>;
    type SerializeMap = Impossible<KeyAt, Error>;
    type SerializeStruct = Impossible<KeyAt, Error>;
    type SerializeStructVariant = Impossible<KeyAt, Error>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<KeyAt, Error> {
        let start = self.out.len();
        (&mut serde_json::Serializer::new(&mut *self.out)).serialize_str(v)?;
        let end = self.out.len();
        if end - start == v.len() + 2 {
            return Ok(KeyAt::Out(start + 1, end - 1)); // nothing escaped
        }
        let at = self.keys.len();
        self.keys.extend_from_slice(v.as_bytes());
        Ok(KeyAt::Keys(at, self.keys.len()))
    }
    fn serialize_char(self, v: char) -> Result<KeyAt, Error> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_bool(self, v: bool) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_i8(self, v: i8) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_i16(self, v: i16) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_i32(self, v: i32) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_i64(self, v: i64) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_i128(self, v: i128) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_u8(self, v: u8) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_u16(self, v: u16) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_u32(self, v: u32) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_u64(self, v: u64) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_u128(self, v: u128) -> Result<KeyAt, Error> {
        self.display(v)
    }
    fn serialize_f32(self, v: f32) -> Result<KeyAt, Error> {
        if !v.is_finite() {
            return Err(ser::Error::custom("float key must be finite"));
        }
        let mut text = Vec::new();
        write_f32(&mut text, v);
        self.serialize_str(std::str::from_utf8(&text).expect("ASCII"))
    }
    fn serialize_f64(self, v: f64) -> Result<KeyAt, Error> {
        if !v.is_finite() {
            return Err(ser::Error::custom("float key must be finite"));
        }
        let mut text = Vec::new();
        write_f64(&mut text, v);
        self.serialize_str(std::str::from_utf8(&text).expect("ASCII"))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<KeyAt, Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<KeyAt, Error> {
        value.serialize(self)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<KeyAt, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<KeyAt, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<KeyAt, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<KeyAt, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<KeyAt, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<KeyAt, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;
    use serde_json::{json, Value};

    fn text<T: Serialize + ?Sized>(value: &T) -> String {
        to_string(value).unwrap()
    }

    /// The shared vectors (`guest-sdk/testdata/numbers.json`, generated with
    /// ECMAScript as the reference): read like the SDK reads event data,
    /// written canonically. The Python, JS and C kits test the same file.
    #[test]
    fn numbers_read_and_write_like_every_other_kit() {
        let pairs: Vec<(String, Option<String>)> =
            serde_json::from_str(include_str!("../testdata/numbers.json")).unwrap();
        assert!(pairs.len() > 500);
        let mut failures = Vec::new();
        for (input, expected) in &pairs {
            let read = serde_json::from_str::<Value>(input);
            let got = read.as_ref().map(text).ok();
            if got != *expected {
                failures.push(format!("{input}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// zmij's digits, laid out, against the standard library's own shortest
    /// round-trip digits (`{:e}`, an independent implementation).
    #[test]
    fn shortest_digits_agree_with_the_standard_library() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..300_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let bits = match i % 3 {
                0 => seed,
                1 => seed & 0x800f_ffff_ffff_ffff, // subnormal
                _ => (seed & 0x800f_ffff_ffff_ffff) | ((1023 + seed % 140 - 70) << 52),
            };
            let x = f64::from_bits(bits);
            if !x.is_finite() || x == 0.0 {
                continue;
            }
            let mut got = Vec::new();
            write_f64(&mut got, x);
            let mut reference = Vec::new();
            layout(&mut reference, format!("{x:e}").as_bytes());
            same_or_even_tie(&got, &reference, |t| t.parse::<f64>().unwrap() == x);

            let y = f32::from_bits(bits as u32);
            if y.is_finite() && y != 0.0 {
                let mut got = Vec::new();
                write_f32(&mut got, y);
                let mut reference = Vec::new();
                layout(&mut reference, format!("{y:e}").as_bytes());
                same_or_even_tie(&got, &reference, |t| t.parse::<f32>().unwrap() == y);
            }
        }
    }

    /// Equal, or two shortest forms both reading back to the value, where
    /// ours ends in the even digit (ECMAScript's rule for an exact tie;
    /// std rounds such ties up, e.g. f32 312985.125 -> 312985.13).
    fn same_or_even_tie(got: &[u8], reference: &[u8], reads_back: impl Fn(&str) -> bool) {
        let (got, reference) = (
            std::str::from_utf8(got).unwrap(),
            std::str::from_utf8(reference).unwrap(),
        );
        if got == reference {
            return;
        }
        let last = |t: &str| t.split('e').next().and_then(|m| m.chars().last());
        assert!(
            got.len() == reference.len()
                && reads_back(got)
                && reads_back(reference)
                && last(got).is_some_and(|d| (d as u8 - b'0').is_multiple_of(2)),
            "{got} vs {reference}"
        );
    }

    #[test]
    fn doubles_are_written_as_ecmascript_does() {
        for (value, expected) in [
            (0.0, "0"),
            (-0.0, "0"),
            (2.0, "2"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (12345678901234567.0, "12345678901234568"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.2345e-7, "1.2345e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ] {
            assert_eq!(text(&value), expected, "{value:?}");
        }
        assert_eq!(text(&0.1f32), "0.1");
        assert_eq!(text(&16777216f32), "16777216");
        assert_eq!(text(&1e-7f32), "1e-7");
        assert_eq!(text(&u128::MAX), "340282366920938463463374607431768211455");
        assert_eq!(text(&i64::MIN), "-9223372036854775808");
    }

    /// A struct whose fields are not declared in alphabetical order.
    #[derive(Serialize)]
    struct Order {
        status: &'static str,
        items: BTreeMap<String, Line>,
        total: f64,
        customer: Option<Customer>,
    }

    #[derive(Serialize)]
    struct Line {
        quantity: u32,
        price: f64,
    }

    #[derive(Serialize)]
    struct Customer {
        name: &'static str,
        id: u64,
    }

    #[test]
    fn struct_fields_are_sorted_at_every_depth() {
        let order = Order {
            status: "open",
            items: BTreeMap::from([
                (
                    "b".to_owned(),
                    Line {
                        quantity: 2,
                        price: 0.1,
                    },
                ),
                (
                    "a".to_owned(),
                    Line {
                        quantity: 1,
                        price: 2.0,
                    },
                ),
            ]),
            total: 2.2,
            customer: Some(Customer { name: "x", id: 7 }),
        };
        assert_eq!(
            text(&order),
            r#"{"customer":{"id":7,"name":"x"},"items":{"a":{"price":2,"quantity":1},"b":{"price":0.1,"quantity":2}},"status":"open","total":2.2}"#
        );
        // serde_json writes them in declaration order, and floats its own way
        assert!(serde_json::to_string(&order)
            .unwrap()
            .starts_with(r#"{"status":"open","items":{"a":{"quantity":1,"price":2.0}"#));
    }

    #[test]
    fn hash_maps_flatten_and_duplicates() {
        let map: HashMap<String, u32> = (0..200).map(|i| (format!("k{i}"), i)).collect();
        let sorted: BTreeMap<_, _> = map.iter().collect();
        assert_eq!(text(&map), serde_json::to_string(&sorted).unwrap());

        #[derive(Serialize)]
        struct Inner {
            z: u8,
            b: u8,
        }
        #[derive(Serialize)]
        struct Outer {
            y: u8,
            #[serde(flatten)]
            inner: Inner,
            a: u8,
        }
        assert_eq!(
            text(&Outer {
                y: 1,
                inner: Inner { z: 2, b: 3 },
                a: 4
            }),
            r#"{"a":4,"b":3,"y":1,"z":2}"#
        );

        // A key written twice keeps its last value (as reading JSON does).
        struct Twice;
        impl Serialize for Twice {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("b", &1)?;
                m.serialize_entry("a", &2)?;
                m.serialize_entry("b", &3)?;
                m.end()
            }
        }
        assert_eq!(text(&Twice), r#"{"a":2,"b":3}"#);
    }

    /// Keys in order until the last one: the members written so far are
    /// split back out of the output (strings holding `,` `"` `}` `]`, an
    /// escaped key, nested values) and reordered.
    #[test]
    fn late_disorder_splits_what_was_written() {
        struct Late;
        impl Serialize for Late {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("b", "x,\"}]{[")?;
                m.serialize_entry("c\n", &json!([1, {"q": ",", "p": "\\"}, []]))?;
                m.serialize_entry("d", &json!({}))?;
                m.serialize_entry("e\"", &json!({"z": {"y": 1, "x": [2.0]}}))?;
                m.serialize_entry("a", &-0.0)?;
                m.end()
            }
        }
        assert_eq!(
            text(&Late),
            r#"{"a":0,"b":"x,\"}]{[","c\n":[1,{"p":"\\","q":","},[]],"d":{},"e\"":{"z":{"x":[2],"y":1}}}"#
        );
        // and nested inside a sorted object
        assert_eq!(
            text(&BTreeMap::from([("k", Late), ("j", Late)])).len(),
            2 * text(&Late).len() + r#"{"j":,"k":}"#.len()
        );
    }

    #[test]
    fn keys_sort_by_code_point_and_are_escaped() {
        let value =
            json!({"é": 1, "z": 2, "\u{e000}": 3, "😀": 4, "A": 5, "": 6, "a\"b": 7, "\n": 8});
        // Value's own map is sorted by byte order already: same as unsorted input.
        let expected =
            "{\"\":6,\"\\n\":8,\"A\":5,\"a\\\"b\":7,\"z\":2,\"é\":1,\"\u{e000}\":3,\"😀\":4}";
        assert_eq!(text(&value), expected);
        let mut map = HashMap::new();
        for (k, v) in value.as_object().unwrap() {
            map.insert(k.clone(), v.clone());
        }
        assert_eq!(text(&map), expected);
    }

    #[test]
    fn other_shapes_match_serde_json() {
        #[derive(Serialize)]
        enum E {
            Unit,
            New(u8),
            Tuple(u8, &'static str),
            Struct { z: u8, a: u8 },
        }
        #[derive(Serialize)]
        struct Unit;
        #[derive(Serialize)]
        struct Tuple(u8, bool);
        let cases: Vec<(Box<dyn erased::Ser>, &str)> = vec![
            (Box::new(E::Unit), r#""Unit""#),
            (Box::new(E::New(1)), r#"{"New":1}"#),
            (Box::new(E::Tuple(1, "x")), r#"{"Tuple":[1,"x"]}"#),
            (
                Box::new(E::Struct { z: 1, a: 2 }),
                r#"{"Struct":{"a":2,"z":1}}"#,
            ),
            (Box::new(Unit), "null"),
            (Box::new(Tuple(3, true)), "[3,true]"),
            (Box::new(Option::<u8>::None), "null"),
            (Box::new(vec![Some(1), None]), "[1,null]"),
            (Box::new(()), "null"),
            (Box::new('c'), r#""c""#),
            (Box::new(serde_bytes_like()), "[1,2]"),
            (
                Box::new(BTreeMap::from([(2u8, "two"), (10, "ten")])),
                r#"{"10":"ten","2":"two"}"#,
            ),
            (Box::new(BTreeMap::from([(true, 1)])), r#"{"true":1}"#),
            (Box::new(Vec::<u8>::new()), "[]"),
            (Box::new(BTreeMap::<String, u8>::new()), "{}"),
        ];
        for (value, expected) in cases {
            assert_eq!(value.canonical(), expected);
        }
        let err = to_vec(&BTreeMap::from([(vec![1u8], 1)])).unwrap_err();
        assert!(err.to_string().contains("key must be a string"), "{err}");
    }

    fn serde_bytes_like() -> impl Serialize {
        struct Bytes;
        impl Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&[1, 2])
            }
        }
        Bytes
    }

    mod erased {
        pub trait Ser {
            fn canonical(&self) -> String;
        }
        impl<T: serde::Serialize> Ser for T {
            fn canonical(&self) -> String {
                super::text(self)
            }
        }
    }

    #[test]
    fn raw_values_are_canonicalised() {
        #[derive(Serialize)]
        struct WithRaw {
            z: Box<serde_json::value::RawValue>,
            a: u8,
        }
        let raw = serde_json::value::RawValue::from_string(
            r#"{ "y": [1.0, -0.0, 1e21], "b": 12345678901234567.0 }"#.to_owned(),
        )
        .unwrap();
        assert_eq!(
            text(&WithRaw { z: raw, a: 1 }),
            r#"{"a":1,"z":{"b":12345678901234568,"y":[1,0,1e+21]}}"#
        );
    }

    #[test]
    fn canonical_text_reads_back_to_the_same_text() {
        let value: Value = serde_json::from_str(
            r#"{"b": [1e20, 1e21, 2.0, -0.0, 18446744073709551616, 5e-324, 0.1], "a": {"d": 1, "c": null}}"#,
        )
        .unwrap();
        let once = text(&value);
        assert_eq!(
            once,
            r#"{"a":{"c":null,"d":1},"b":[100000000000000000000,1e+21,2,0,18446744073709552000,5e-324,0.1]}"#
        );
        let again: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(text(&again), once);
    }
}

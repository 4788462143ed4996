//! Decoding an event's `kind` + JSON `data` straight into the author's type.
//!
//! The author's event type is a plain serde enum (externally tagged, serde's
//! default): the variant name is the event kind and the variant's content is
//! the event data. [`decode`] hands serde a deserializer that answers the
//! enum's "which variant?" question with the kind and then parses the data
//! bytes with `serde_json` directly into the variant, so no intermediate
//! `serde_json::Value` is built.
//!
//! - a kind that names no variant is [`DecodeError::UnknownKind`];
//! - data that does not fit the variant is [`DecodeError::BadData`];
//! - a unit variant ignores the data (it is not even parsed);
//! - a type that is not an enum is deserialized from the data of every kind.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, VariantAccess,
    Visitor,
};

/// Why an event could not be decoded into the projection's event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The kind names no variant of the event type.
    UnknownKind,
    /// The data is not valid JSON or does not fit the variant; the message
    /// comes from serde (e.g. "missing field `key` at line 1 column 12").
    BadData(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownKind => f.write_str("unknown event kind"),
            DecodeError::BadData(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::BadData(msg.to_string())
    }
}

fn from_json(err: serde_json::Error) -> DecodeError {
    DecodeError::BadData(err.to_string())
}

/// Decode one event of `kind` with JSON `data` into `E`.
pub fn decode<E: DeserializeOwned>(kind: &str, data: &[u8]) -> Result<E, DecodeError> {
    E::deserialize(KindData { kind, data })
}

/// The event kinds `E` handles: the variant names of an enum, or none (meaning
/// "every kind") for any other type, such as [`AnyEvent`].
pub fn kinds_of<E: DeserializeOwned>() -> Vec<String> {
    match E::deserialize(VariantsProbe) {
        Err(ProbeError(Some(variants))) => variants.iter().map(|v| (*v).to_owned()).collect(),
        _ => Vec::new(),
    }
}

/// An event type that accepts every kind without looking at the data; read
/// the kind (and raw data, if needed) from the [`EventMeta`](crate::EventMeta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnyEvent;

impl<'de> serde::Deserialize<'de> for AnyEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyVisitor;
        impl<'de> Visitor<'de> for AnyVisitor {
            type Value = AnyEvent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event of any kind")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<AnyEvent, A::Error> {
                let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
                variant.unit_variant()?;
                Ok(AnyEvent)
            }
        }
        // No variant names: "every kind" for `kinds_of`.
        deserializer.deserialize_enum("AnyEvent", &[], AnyVisitor)
    }
}

/// The deserializer presenting (kind, data) as an externally tagged enum.
struct KindData<'a> {
    kind: &'a str,
    data: &'a [u8],
}

impl<'de> Deserializer<'de> for KindData<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Not an enum: the whole data is the event.
        let mut de = serde_json::Deserializer::from_slice(self.data);
        let value = de::Deserializer::deserialize_any(&mut de, visitor).map_err(from_json)?;
        de.end().map_err(from_json)?;
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let mut de = serde_json::Deserializer::from_slice(self.data);
        let value = de::Deserializer::deserialize_struct(&mut de, name, fields, visitor)
            .map_err(from_json)?;
        de.end().map_err(from_json)?;
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

impl<'de> EnumAccess<'de> for KindData<'de> {
    type Error = DecodeError;
    type Variant = DataAccess<'de>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, DataAccess<'de>), DecodeError> {
        // Any failure to name the variant means the kind is not handled.
        let variant = seed
            .deserialize(BorrowedStrDeserializer::<DecodeError>::new(self.kind))
            .map_err(|_| DecodeError::UnknownKind)?;
        Ok((variant, DataAccess { data: self.data }))
    }
}

/// The data of an event whose kind has been matched to a variant.
struct DataAccess<'a> {
    data: &'a [u8],
}

impl<'de> DataAccess<'de> {
    fn parse<T>(
        self,
        f: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
        ) -> serde_json::Result<T>,
    ) -> Result<T, DecodeError> {
        let mut de = serde_json::Deserializer::from_slice(self.data);
        let value = f(&mut de).map_err(from_json)?;
        de.end().map_err(from_json)?;
        Ok(value)
    }
}

impl<'de> VariantAccess<'de> for DataAccess<'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, DecodeError> {
        self.parse(|de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.parse(|de| de::Deserializer::deserialize_tuple(de, len, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.parse(|de| de::Deserializer::deserialize_struct(de, "event", fields, visitor))
    }
}

/// A deserializer that only records the variant names an enum asks for.
struct VariantsProbe;

#[derive(Debug)]
struct ProbeError(Option<&'static [&'static str]>);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        ProbeError(None)
    }
}

impl<'de> Deserializer<'de> for VariantsProbe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError(None))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError(Some(variants)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Ev {
        Add {
            key: String,
            value: serde_json::Value,
        },
        Remove {
            key: String,
        },
        Cleared,
        Renamed(String),
        Moved(u32, u32),
    }

    #[test]
    fn struct_variant_decodes_from_data() {
        let ev: Ev = decode("add", br#"{"key":"a","value":[1,{"b":null}]}"#).unwrap();
        assert_eq!(
            ev,
            Ev::Add {
                key: "a".into(),
                value: serde_json::json!([1, {"b": null}])
            }
        );
    }

    #[test]
    fn unit_newtype_and_tuple_variants() {
        assert_eq!(decode::<Ev>("cleared", b"").unwrap(), Ev::Cleared);
        assert_eq!(decode::<Ev>("cleared", b"{\"x\":1}").unwrap(), Ev::Cleared);
        assert_eq!(
            decode::<Ev>("renamed", b"\"b\"").unwrap(),
            Ev::Renamed("b".into())
        );
        assert_eq!(decode::<Ev>("moved", b"[1, 2]").unwrap(), Ev::Moved(1, 2));
    }

    #[test]
    fn unknown_kind_is_distinguished_from_bad_data() {
        assert_eq!(
            decode::<Ev>("deleted", b"{}").unwrap_err(),
            DecodeError::UnknownKind
        );
        // Kind matching is exact (case-sensitive).
        assert_eq!(
            decode::<Ev>("Add", br#"{"key":"a","value":1}"#).unwrap_err(),
            DecodeError::UnknownKind
        );
        let err = decode::<Ev>("remove", b"{}").unwrap_err();
        assert!(
            matches!(&err, DecodeError::BadData(m) if m.contains("missing field `key`")),
            "{err:?}"
        );
        let err = decode::<Ev>("remove", br#"{"key": 5}"#).unwrap_err();
        assert!(
            matches!(&err, DecodeError::BadData(m) if m.contains("invalid type")),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_or_trailing_json_is_bad_data() {
        assert!(matches!(
            decode::<Ev>("remove", br#"{"key":"a""#),
            Err(DecodeError::BadData(_))
        ));
        assert!(matches!(
            decode::<Ev>("remove", br#"{"key":"a"} x"#),
            Err(DecodeError::BadData(m)) if m.contains("trailing")
        ));
        assert!(matches!(
            decode::<Ev>("add", b""),
            Err(DecodeError::BadData(m)) if m.contains("EOF")
        ));
    }

    #[test]
    fn kinds_are_the_variant_names() {
        assert_eq!(
            kinds_of::<Ev>(),
            ["add", "remove", "cleared", "renamed", "moved"]
        );
        assert!(kinds_of::<AnyEvent>().is_empty());
        assert!(kinds_of::<serde_json::Value>().is_empty());
    }

    #[test]
    fn any_event_accepts_every_kind_and_ignores_data() {
        assert_eq!(
            decode::<AnyEvent>("whatever", b"not json").unwrap(),
            AnyEvent
        );
    }

    #[test]
    fn a_struct_event_type_reads_the_data_of_every_kind() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Payload {
            n: u32,
        }
        assert_eq!(
            decode::<Payload>("x", br#"{"n":3}"#).unwrap(),
            Payload { n: 3 }
        );
        let v: serde_json::Value = decode("x", br#"{"n":3}"#).unwrap();
        assert_eq!(v, serde_json::json!({"n": 3}));
    }

    #[test]
    fn serde_other_catches_unknown_kinds() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum WithOther {
            A,
            #[serde(other)]
            Other,
        }
        assert_eq!(decode::<WithOther>("zzz", b"{}").unwrap(), WithOther::Other);
    }
}

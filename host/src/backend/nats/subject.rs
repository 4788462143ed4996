//! How Hume stream names map to JetStream subjects, reversibly.
//!
//! Every event of stream `S` is stored on the subject
//! `hume.log.<category>.<S escaped>`, where `<category>` is `S` up to and
//! including its first `-` (escaped), or `~` when `S` has no `-`. So one
//! stream is one subject, and a category (`account-*`) is the subject
//! filter `hume.log.account-.*`: both are reads the server filters.
//!
//! Escaping keeps ASCII letters, digits, `_` and `-`; every other byte of
//! the UTF-8 name becomes `%XX`, so no token holds `.`, `*`, `>` or white
//! space, and a token is never `~`.

use crate::log::Selector;

/// Every subject of the log.
pub const LOG_SUBJECTS: &str = "hume.log.>";
const PREFIX: &str = "hume.log.";
/// The category token of a stream without `-`.
const NO_CATEGORY: &str = "~";

/// Escape a name into one subject token (never empty for a non-empty name).
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undo [`escape`]; `None` when `token` is not an escaped name.
pub fn unescape(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn category_token(stream: &str) -> String {
    match stream.find('-') {
        Some(i) => escape(&stream[..=i]),
        None => NO_CATEGORY.to_string(),
    }
}

/// The subject of `stream`'s events.
pub fn subject(stream: &str) -> String {
    format!("{PREFIX}{}.{}", category_token(stream), escape(stream))
}

/// The stream a log subject belongs to.
pub fn stream_of(subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(PREFIX)?;
    let (_, name) = rest.split_once('.')?;
    unescape(name)
}

/// The subject filter for a read of `selector`, and whether every message
/// it matches is wanted (`false`: the reader filters further).
pub fn filter(selector: &Selector) -> (String, bool) {
    if selector.is_all() {
        return (LOG_SUBJECTS.to_string(), true);
    }
    let parts: Vec<(String, bool)> = selector.entries().iter().map(|e| entry(e)).collect();
    match parts.as_slice() {
        [one] => one.clone(),
        _ => {
            // Several entries: one category filter when they share it.
            let first = parts[0].0.rsplit_once('.').map(|(c, _)| c.to_string());
            let shared = parts.iter().all(|(s, _)| {
                s != LOG_SUBJECTS && s.rsplit_once('.').map(|(c, _)| c.to_string()) == first
            });
            match first {
                Some(cat) if shared => (format!("{cat}.*"), false),
                _ => (LOG_SUBJECTS.to_string(), false),
            }
        }
    }
}

fn entry(entry: &str) -> (String, bool) {
    match entry.strip_suffix('*') {
        None => (subject(entry), true),
        Some(prefix) => match prefix.find('-') {
            Some(i) => (
                format!("{PREFIX}{}.*", escape(&prefix[..=i])),
                i + 1 == prefix.len(),
            ),
            None => (LOG_SUBJECTS.to_string(), false),
        },
    }
}

/// Does `subject` match the NATS subject filter `filter` (`*`: any one
/// token, `>`: one or more tokens at the end)?
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in filter.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// [`matches`] for a subject as it arrived; a filter ending in `>` with no
/// `*` is a prefix test (the common case of a scan filtered here).
pub fn matches_bytes(filter: &str, subject: &[u8]) -> bool {
    match filter.strip_suffix('>') {
        Some(prefix) if !prefix.contains('*') && (prefix.is_empty() || prefix.ends_with('.')) => {
            subject.len() > prefix.len() && subject.starts_with(prefix.as_bytes())
        }
        _ => std::str::from_utf8(subject).is_ok_and(|s| matches(filter, s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_filters_match_as_the_server_does() {
        assert!(matches("hume.log.>", "hume.log.acc-.acc-1"));
        assert!(!matches("hume.log.>", "hume.log"));
        assert!(matches("hume.log.acc-.*", "hume.log.acc-.acc-1"));
        assert!(!matches("hume.log.acc-.*", "hume.log.ord-.ord-1"));
        assert!(!matches("hume.log.acc-.*", "hume.log.acc-.acc-1.x"));
        assert!(matches("hume.log.acc-.acc-1", "hume.log.acc-.acc-1"));
        assert!(!matches("hume.log.acc-.acc-1", "hume.log.acc-.acc-10"));
        assert!(!matches("hume.log.acc-.acc-1", "hume.log.acc-"));
        for (f, s) in [
            ("hume.log.>", "hume.log.acc-.acc-1"),
            ("hume.log.>", "hume.log"),
            ("hume.log.>", "hume.log."),
            ("hume.log.acc-.>", "hume.log.acc-.acc-1"),
            ("hume.log.acc-.>", "hume.log.ord-.ord-1"),
            ("hume.log.acc-.>", "hume.log.acc-x.y"),
            (">", "a"),
            ("hume.*.acc-.>", "hume.log.acc-.acc-1"),
            ("hume.log.acc-.*", "hume.log.acc-.acc-1.x"),
        ] {
            let want = matches(f, s) && !s.ends_with('.');
            assert_eq!(matches_bytes(f, s.as_bytes()), want, "{f} on {s}");
        }
        let (filter, _) = filter(&Selector::parse(&["account-*"]).unwrap());
        assert!(matches(&filter, &subject("account-7")));
        assert!(!matches(&filter, &subject("order-7")));
    }

    #[test]
    fn names_round_trip_through_subjects() {
        for name in [
            "account-1",
            "a.b c*>",
            "ünï-cødé",
            "-x",
            "x-",
            "plain",
            "100%",
        ] {
            let s = subject(name);
            assert!(!s.contains(' ') && s.split('.').count() == 4, "{s}");
            assert_eq!(stream_of(&s).as_deref(), Some(name));
        }
        assert_eq!(subject("account-1"), "hume.log.account-.account-1");
        assert_eq!(subject("plain"), "hume.log.~.plain");
        assert_eq!(unescape("%G1"), None);
    }

    #[test]
    fn categories_are_subject_filters() {
        let cat = Selector::parse(&["account-*"]).unwrap();
        assert_eq!(filter(&cat), ("hume.log.account-.*".to_string(), true));
        let narrower = Selector::parse(&["account-1*"]).unwrap();
        assert_eq!(
            filter(&narrower),
            ("hume.log.account-.*".to_string(), false)
        );
        let one = Selector::parse(&["a.b"]).unwrap();
        assert_eq!(filter(&one), ("hume.log.~.a%2Eb".to_string(), true));
        let two = Selector::parse(&["account-1", "account-2"]).unwrap();
        assert_eq!(filter(&two), ("hume.log.account-.*".to_string(), false));
        let mixed = Selector::parse(&["account-1", "cart-2"]).unwrap();
        assert_eq!(filter(&mixed), (LOG_SUBJECTS.to_string(), false));
        assert_eq!(filter(&Selector::all()), (LOG_SUBJECTS.to_string(), true));
    }
}

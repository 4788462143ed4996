//! What `hume deploy` prints about the streams a projection follows, and
//! its warnings about patterns a shell expanded.

use hume::log::coverage::Coverage;

/// The streams and categories a deploy follows, with today's counts.
pub(super) fn print_follows(follows: &Coverage) {
    for e in &follows.entries {
        let what = match e.kind.as_str() {
            "all" => "every stream".to_string(),
            "category" => format!("category `{}`", e.entry),
            _ => format!("stream `{}`", e.entry),
        };
        let streams = if e.kind == "stream" {
            String::new()
        } else {
            format!("{} stream{}, ", e.streams, plural(e.streams))
        };
        println!(
            "  follows {what}: {streams}{} event{} today",
            e.events,
            plural(e.events)
        );
    }
    println!(
        "  in all: {} event{} in {} stream{} match today",
        follows.events,
        plural(follows.events),
        follows.streams,
        plural(follows.streams)
    );
    for warning in &follows.warnings {
        eprintln!("warning: {warning}");
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `--stream` values that are also files here: an unquoted `cart-*` that
/// the shell replaced by the names of matching files.
pub(super) fn local_glob_warnings(streams: &[String]) -> Vec<String> {
    streams
        .iter()
        .filter(|s| !s.contains('*') && std::path::Path::new(s.as_str()).exists())
        .map(|s| {
            format!(
                "--stream `{s}` is also the name of a file in the current directory: if you \
                 typed a pattern, the shell expanded it; quote it (--stream 'cart-*')"
            )
        })
        .collect()
}

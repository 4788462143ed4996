//! The `tracing` layer that fills the [`Journals`]: an event belongs to a
//! projection when it carries a `projection` field (plugin output, manager
//! events) or happens inside a projection actor's span (`projection`, with
//! its `name`).
//!
//! What is kept: everything the plugin writes (its `log` import at every
//! level, stdout, stderr), and the host's lines about the projection at
//! `info` and above, plus its debug lines for catch-up and snapshots.

use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::Journals;

/// Target of the plugin's own output (see `plugin::sandbox`).
const PLUGIN_TARGET: &str = "hume::plugin";
/// Debug targets of the lifecycle worth keeping.
const LIFECYCLE_DEBUG: &[&str] = &["hume.projection.catch_up", "hume.projection.snapshot"];
/// The span every projection actor runs in.
const ACTOR_SPAN: &str = "projection";

/// Fills the journals from the server's events.
#[derive(Debug, Clone)]
pub struct JournalLayer {
    journals: Arc<Journals>,
}

impl JournalLayer {
    /// A layer writing into `journals`.
    pub fn new(journals: Arc<Journals>) -> JournalLayer {
        JournalLayer { journals }
    }

    /// The filter this layer should run under (independent of `RUST_LOG`,
    /// which only governs the server's own log).
    pub fn filter() -> JournalFilter {
        JournalFilter
    }
}

/// Which events and spans the journal layer sees.
#[derive(Debug, Clone, Copy)]
pub struct JournalFilter;

fn wanted(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    if !target.starts_with("hume") {
        return false;
    }
    if meta.is_span() || target.starts_with(PLUGIN_TARGET) {
        return true;
    }
    *meta.level() <= Level::INFO || LIFECYCLE_DEBUG.iter().any(|t| target.starts_with(t))
}

impl<S> Filter<S> for JournalFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        wanted(meta)
    }
}

/// The projection name an actor span was opened with.
struct ProjectionName(String);

/// Collects an event's message, its `projection` and `stream` fields, and
/// the rest as `key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    projection: Option<String>,
    stream: Option<String>,
    name: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "projection" => self.projection = Some(value.to_string()),
            "stream" => self.stream = Some(value.to_string()),
            "name" => self.name = Some(value.to_string()),
            "message" => self.message.push_str(value),
            other => {
                let _ = write!(self.rest, " {other}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "projection" => self.projection = Some(format!("{value:?}")),
            "stream" => self.stream = Some(format!("{value:?}")),
            "name" => self.name = Some(format!("{value:?}")),
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            other => {
                let _ = write!(self.rest, " {other}={value:?}");
            }
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl<S> Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != ACTOR_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(name), Some(span)) = (fields.name, ctx.span(id)) {
            span.extensions_mut().insert(ProjectionName(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let projection = fields.projection.take().or_else(|| {
            ctx.event_scope(event)?.find_map(|span| {
                span.extensions()
                    .get::<ProjectionName>()
                    .map(|n| n.0.clone())
            })
        });
        let Some(projection) = projection else {
            return;
        };
        let meta = event.metadata();
        let source = if meta.target().starts_with(PLUGIN_TARGET) {
            match fields.stream.as_deref() {
                Some("stdout") => "stdout",
                Some("stderr") => "stderr",
                _ => "plugin",
            }
        } else {
            "host"
        };
        let mut message = fields.message;
        message.push_str(&fields.rest);
        self.journals.push(
            &projection,
            crate::snapshot::now_ms(),
            level_name(meta.level()),
            source,
            message,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_go_to_the_projection_of_their_field_or_span() {
        let journals = Journals::new();
        let subscriber = tracing_subscriber::registry()
            .with(JournalLayer::new(journals.clone()).with_filter(JournalLayer::filter()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "hume::plugin", projection = "p", "from the plugin");
            tracing::info!(target: "hume::plugin", projection = "p", stream = "stderr", "oops");
            let span =
                tracing::info_span!(target: "hume::projection::actor", "projection", name = "q");
            span.in_scope(|| {
                tracing::info!(target: "hume::projection::actor", offset = 3, "ready");
                tracing::debug!(target: "hume::projection::actor", "too chatty");
                tracing::debug!(target: "hume.projection.snapshot", offset = 4, "snapshot persisted");
            });
            tracing::info!(target: "hume::api", "not about a projection");
            tracing::warn!(target: "other_crate", projection = "p", "not ours");
        });
        let p = journals.entry("p").journal.lock().unwrap().after(0, 10);
        let p: Vec<(&str, &str)> = p
            .lines
            .iter()
            .map(|l| (l.source, l.message.as_str()))
            .collect();
        assert_eq!(p, vec![("plugin", "from the plugin"), ("stderr", "oops")]);
        let q = journals.entry("q").journal.lock().unwrap().after(0, 10);
        let q: Vec<&str> = q.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(q, vec!["ready offset=3", "snapshot persisted offset=4"]);
    }
}

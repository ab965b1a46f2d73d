//! How every process of Universal Messaging logs (the operator and each
//! connector service alike): bunyan-compatible JSON lines by default, a
//! human format on request, and the level syntax of the reference system.
//!
//! Why not `tracing-bunyan-formatter`: it writes extra START/END records per
//! span and has no notion of the reference system's `{topic:scope}` levels;
//! the record layout here is the one bunyan readers expect, one line per
//! event with the enclosing spans' fields (tenant, message id) folded in.
//!
//! # Level syntax (`UM_LOG_LEVEL`)
//!
//! `LEVEL[;LEVEL:{topic:scope,scope}[,{topic:scope}]...]`: the first entry is
//! the default level; every later entry raises (or lowers) the level for a
//! *topic* (a tracing target; a bare name such as `bus` means `bus` in the
//! process's own crate, e.g. `um_connector::bus`, and the crate's own name
//! the whole crate), a *scope* (a span name such as `request`,
//! `envelope`, `delivery`), or a scope within a topic. Either may be empty:
//! `DEBUG;TRACE:{:request}` logs DEBUG everywhere and TRACE inside every
//! `request` span. Levels: TRACE, DEBUG, INFO, WARN, ERROR, FATAL (= ERROR),
//! OFF.
//!
//! # Bunyan records
//!
//! One JSON object per line with `v` (0), `name` (the service), `hostname`,
//! `pid`, `level` (10 trace, 20 debug, 30 info, 40 warn, 50 error; 60 fatal
//! is not produced by tracing), `msg`, `time` (RFC 3339, UTC, milliseconds),
//! `target`, the fields of the enclosing spans, then the event's fields.
//! Values are formatted with `Debug`/`Display`, so a [`um_config::Secret`]
//! prints as `[REDACTED]`.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Bunyan JSON lines on stdout.
    Bunyan,
    /// tracing's human format on stderr.
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "bunyan" | "json" => Ok(LogFormat::Bunyan),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            other => Err(format!("unknown log format {other:?} (bunyan, pretty)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelSpecError {
    #[error(
        "log level {spec:?}: unknown level {level:?} (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF)"
    )]
    UnknownLevel { spec: String, level: String },
    #[error(
        "log level {spec:?}: cannot read {entry:?}; expected LEVEL or LEVEL:{{topic:scope,...}}"
    )]
    Syntax { spec: String, entry: String },
}

/// One level override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelOverride {
    pub level: String,
    /// Tracing target prefix; `None`: any.
    pub topic: Option<String>,
    /// Span names; empty: any.
    pub scopes: Vec<String>,
}

/// A parsed `UM_LOG_LEVEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelSpec {
    pub default: String,
    pub overrides: Vec<LevelOverride>,
}

fn level_name(spec: &str, level: &str) -> Result<String, LevelSpecError> {
    let name = match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" | "NEVER" | "NONE" => "off",
        _ => {
            return Err(LevelSpecError::UnknownLevel {
                spec: spec.to_owned(),
                level: level.trim().to_owned(),
            });
        }
    };
    Ok(name.to_owned())
}

/// The tracing targets a topic names: itself when it is a path or a crate,
/// else that module under each of the process's module roots (`bus` is
/// `um_connector::machinery::bus`, `telegram` is
/// `um_connector::platforms::telegram`).
fn topic_targets(topic: &str, homes: &[&str]) -> Vec<String> {
    if topic.contains("::") || homes.contains(&topic) {
        vec![topic.to_owned()]
    } else {
        homes
            .iter()
            .map(|home| format!("{home}::{topic}"))
            .collect()
    }
}

impl LevelSpec {
    pub fn parse(spec: &str) -> Result<Self, LevelSpecError> {
        let mut entries = spec.split(';').map(str::trim).filter(|e| !e.is_empty());
        let default = match entries.next() {
            Some(first) if !first.contains(':') => level_name(spec, first)?,
            Some(first) => {
                return Err(LevelSpecError::Syntax {
                    spec: spec.to_owned(),
                    entry: first.to_owned(),
                });
            }
            None => "info".to_owned(),
        };
        let mut overrides = Vec::new();
        for entry in entries {
            let syntax = || LevelSpecError::Syntax {
                spec: spec.to_owned(),
                entry: entry.to_owned(),
            };
            let (level, groups) = entry.split_once(':').ok_or_else(syntax)?;
            let level = level_name(spec, level)?;
            let mut rest = groups.trim();
            if rest.is_empty() {
                return Err(syntax());
            }
            while !rest.is_empty() {
                let inner_start = rest.strip_prefix('{').ok_or_else(syntax)?;
                let end = inner_start.find('}').ok_or_else(syntax)?;
                let group = &inner_start[..end];
                rest = inner_start[end + 1..].trim_start_matches([',', ' ']);
                let (topic, scopes) = group.split_once(':').unwrap_or((group, ""));
                let topic = Some(topic.trim())
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                let scopes: Vec<String> = scopes
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if topic.is_none() && scopes.is_empty() {
                    return Err(syntax());
                }
                overrides.push(LevelOverride {
                    level: level.clone(),
                    topic,
                    scopes,
                });
            }
        }
        Ok(Self { default, overrides })
    }

    /// The equivalent `EnvFilter` directives; a bare topic names a module
    /// under each of `homes` (the process's module roots).
    pub fn directives(&self, homes: &[&str]) -> Vec<String> {
        let mut out = vec![self.default.clone()];
        for o in &self.overrides {
            let targets = match o.topic.as_deref() {
                Some(topic) => topic_targets(topic, homes),
                None => vec![String::new()],
            };
            for target in targets {
                if o.scopes.is_empty() {
                    out.push(format!("{target}={}", o.level));
                } else {
                    for scope in &o.scopes {
                        out.push(format!("{target}[{scope}]={}", o.level));
                    }
                }
            }
        }
        out
    }

    pub fn filter(&self, homes: &[&str]) -> EnvFilter {
        let mut filter = EnvFilter::default();
        for directive in self.directives(homes) {
            match directive.parse() {
                Ok(d) => filter = filter.add_directive(d),
                // Names are validated by parse(); a directive the filter
                // refuses (odd characters in a topic) is skipped, not fatal.
                Err(error) => eprintln!("log level directive {directive:?} ignored: {error}"),
            }
        }
        filter
    }
}

/// Bunyan's numeric level.
pub fn bunyan_level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 10,
        Level::DEBUG => 20,
        Level::INFO => 30,
        Level::WARN => 40,
        Level::ERROR => 50,
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

/// A layer writing bunyan records to `writer`.
pub struct BunyanLayer<W> {
    name: String,
    hostname: String,
    pid: u32,
    writer: W,
}

impl<W> BunyanLayer<W> {
    pub fn new(name: impl Into<String>, writer: W) -> Self {
        Self {
            name: name.into(),
            hostname: hostname(),
            pid: std::process::id(),
            writer,
        }
    }
}

/// Keys of the record itself; a field with such a name is renamed so it
/// cannot replace them.
const RESERVED: [&str; 8] = [
    "v", "name", "hostname", "pid", "level", "msg", "time", "target",
];

fn insert_field(record: &mut Map<String, Value>, key: String, value: Value) {
    if RESERVED.contains(&key.as_str()) {
        record.insert(format!("field_{key}"), value);
    } else {
        record.insert(key, value);
    }
}

impl<S, W> Layer<S> for BunyanLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut record = Map::new();
        record.insert("v".into(), Value::from(0));
        record.insert("name".into(), Value::from(self.name.as_str()));
        record.insert("hostname".into(), Value::from(self.hostname.as_str()));
        record.insert("pid".into(), Value::from(self.pid));
        record.insert(
            "level".into(),
            Value::from(bunyan_level(event.metadata().level())),
        );
        record.insert(
            "time".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        record.insert("target".into(), Value::from(event.metadata().target()));
        if let Some(scope) = ctx.event_scope(event) {
            let mut names = Vec::new();
            for span in scope.from_root() {
                names.push(span.name());
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in fields {
                        insert_field(&mut record, k.clone(), v.clone());
                    }
                }
            }
            record.insert("scope".into(), Value::from(names.join(":")));
        }
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let msg = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        record.insert("msg".into(), Value::from(msg));
        for (k, v) in fields {
            insert_field(&mut record, k, v);
        }
        let mut line = Value::Object(record).to_string();
        line.push('\n');
        let mut writer = self.writer.make_writer();
        let _ = writer.write_all(line.as_bytes());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error(transparent)]
    Level(#[from] LevelSpecError),
    #[error("a global logger is already installed")]
    AlreadySet,
}

/// Installs the process's logger (once). `service` is the bunyan `name`;
/// `homes` the module roots bare topics of `level` refer to.
pub fn init(
    service: &str,
    homes: &[&str],
    level: &str,
    format: LogFormat,
) -> Result<(), LogInitError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = LevelSpec::parse(level)?.filter(homes);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Bunyan => registry
            .with(BunyanLayer::new(service, std::io::stdout))
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    result.map_err(|_| LogInitError::AlreadySet)
}

/// A writer into shared memory, for tests that read log lines back.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

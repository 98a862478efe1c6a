//! Log output an operator can use: every line has the time (UTC), the
//! level, the server id (`[myid:N]`, as ZooKeeper's log4j pattern prints
//! it) and the component (the module that logged). Stderr by default; with
//! `zookeeper.log.dir` (zoo.cfg, a `-D` word, or `ZOO_LOG_DIR` as
//! zkServer.sh takes it) lines go to `<dir>/<zookeeper.log.file>`, rolled
//! daily and keeping `zookeeper.log.maxFiles` files; `zookeeper.log.format=json`
//! writes one JSON object per line for log shippers. `RUST_LOG` filters
//! as usual (default `info`).
//!
//! Rolling is daily because `tracing-appender` rolls by time only
//! (ZooKeeper's log4j rolls by size).

use serde_json::{Map, Value};
use std::fmt;
use std::path::PathBuf;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub dir: Option<PathBuf>,
    pub file: String,
    pub json: bool,
    pub max_files: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            dir: None,
            file: "paddock.log".into(),
            json: false,
            max_files: 10,
        }
    }
}

impl LogSettings {
    /// Takes a logging key (bare, without `zookeeper.`); false if not one.
    pub fn set(&mut self, key: &str, v: &str) -> Result<bool, String> {
        match key {
            "log.dir" => self.dir = Some(PathBuf::from(v)),
            "log.file" => self.file = v.to_string(),
            "log.format" => {
                self.json = match v {
                    "json" => true,
                    "text" => false,
                    _ => return Err("the log format is text or json".into()),
                }
            }
            "log.maxFiles" => {
                self.max_files = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("a positive number of files")?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The line format: text or JSON, with the server id.
struct Line {
    myid: Option<u64>,
    json: bool,
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

/// RFC 3339 UTC time with microseconds (tracing-subscriber's formatter).
fn now_utc() -> String {
    use tracing_subscriber::fmt::time::FormatTime;
    let mut out = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut out));
    out
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if self.json {
            let mut fields = Fields::default();
            event.record(&mut fields);
            let mut m = Map::new();
            m.insert("time".into(), Value::from(now_utc()));
            m.insert("level".into(), Value::from(meta.level().as_str()));
            m.insert(
                "myid".into(),
                self.myid.map(Value::from).unwrap_or(Value::Null),
            );
            m.insert("component".into(), Value::from(meta.target()));
            m.extend(fields.0);
            return writeln!(w, "{}", Value::Object(m));
        }
        write!(w, "{} {:<5} ", now_utc(), meta.level().as_str())?;
        match self.myid {
            Some(id) => write!(w, "[myid:{id}] ")?,
            None => write!(w, "[myid:] ")?,
        }
        write!(w, "{}: ", meta.target())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the global logger. Keep the returned guard for the life of
/// the process: it flushes the file writer.
pub fn init(settings: &LogSettings, myid: Option<u64>) -> Option<WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let line = Line {
        myid,
        json: settings.json,
    };
    let dir = settings
        .dir
        .clone()
        .or_else(|| std::env::var_os("ZOO_LOG_DIR").map(PathBuf::from));
    if let Some(dir) = dir {
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix(&settings.file)
            .max_log_files(settings.max_files)
            .build(&dir);
        match appender {
            Ok(appender) => {
                let (writer, guard) = tracing_appender::non_blocking(appender);
                let _ = tracing_subscriber::fmt()
                    .event_format(line)
                    .with_writer(writer)
                    .with_env_filter(filter)
                    .try_init();
                return Some(guard);
            }
            Err(e) => eprintln!(
                "paddock: cannot log to {}: {e}; logging to stderr",
                dir.display()
            ),
        }
    }
    let _ = tracing_subscriber::fmt()
        .event_format(line)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_time_format() {
        let mut s = LogSettings::default();
        assert!(s.set("log.dir", "/var/log/paddock").unwrap());
        assert!(s.set("log.format", "json").unwrap());
        assert!(s.set("log.format", "xml").is_err());
        assert!(s.set("log.maxFiles", "0").is_err());
        assert!(!s.set("tickTime", "1").unwrap());
        assert!(s.json && s.dir.is_some());
        let t = now_utc();
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.contains('T'),
            "{t}"
        );
    }
}

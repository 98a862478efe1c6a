//! The operator-facing zoo.cfg keys: ZooKeeper's AdminServer
//! (`admin.enableServer`, `admin.serverAddress`, `admin.serverPort`,
//! `admin.commandURL`) and its Prometheus metrics provider
//! (`metricsProvider.className`, `.httpHost`, `.httpPort`,
//! `.exportJvmInfo`), with ZooKeeper's defaults: the AdminServer on
//! 0.0.0.0:8080 under `/commands`, enabled unless `admin.enableServer=false`;
//! `/metrics` only when the class is ZooKeeper's Prometheus provider, on
//! 0.0.0.0:7000 unless set. `exportJvmInfo` has no meaning without a JVM
//! and is noted at start, not honoured.

use crate::config::ConfigError;

/// ZooKeeper's Prometheus provider class: the one that turns on `/metrics`.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    pub admin_enabled: bool,
    pub admin_address: String,
    pub admin_port: u16,
    pub command_url: String,
    pub metrics_class: Option<String>,
    pub metrics_host: String,
    pub metrics_port: u16,
    /// `metricsProvider.exportJvmInfo` was given (noted, no effect).
    pub export_jvm_info_given: bool,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            admin_enabled: true,
            admin_address: "0.0.0.0".into(),
            admin_port: 8080,
            command_url: "/commands".into(),
            metrics_class: None,
            metrics_host: "0.0.0.0".into(),
            metrics_port: 7000,
            export_jvm_info_given: false,
        }
    }
}

impl OpsConfig {
    /// Takes `key` (without a `zookeeper.` prefix) if it is one of these;
    /// `Ok(false)` when it is not.
    pub fn set(&mut self, key: &str, v: &str) -> Result<bool, ConfigError> {
        let port = |v: &str| {
            v.parse::<u16>().map_err(|e| ConfigError::Value {
                key: key.into(),
                value: v.into(),
                why: e.to_string(),
            })
        };
        match key {
            // ZooKeeper: Boolean.parseBoolean, anything but "true" is off.
            "admin.enableServer" => self.admin_enabled = v.eq_ignore_ascii_case("true"),
            "admin.serverAddress" => self.admin_address = v.to_string(),
            "admin.serverPort" => self.admin_port = port(v)?,
            "admin.commandURL" => {
                self.command_url = format!("/{}", v.trim_matches('/'));
            }
            "metricsProvider.className" => self.metrics_class = Some(v.to_string()),
            "metricsProvider.httpHost" => self.metrics_host = v.to_string(),
            "metricsProvider.httpPort" => self.metrics_port = port(v)?,
            "metricsProvider.exportJvmInfo" => self.export_jvm_info_given = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether `/metrics` is served.
    pub fn prometheus(&self) -> bool {
        self.metrics_class.as_deref() == Some(PROMETHEUS_PROVIDER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_keys_are_zookeepers() {
        let mut o = OpsConfig::default();
        assert!(o.admin_enabled && !o.prometheus());
        assert_eq!((o.admin_port, o.command_url.as_str()), (8080, "/commands"));
        assert!(o.set("admin.enableServer", "false").unwrap());
        assert!(o.set("admin.commandURL", "cmds/").unwrap());
        assert!(o
            .set("metricsProvider.className", PROMETHEUS_PROVIDER)
            .unwrap());
        assert!(o.set("metricsProvider.httpPort", "7001").unwrap());
        assert!(!o.set("tickTime", "1").unwrap());
        assert!(o.set("admin.serverPort", "x").is_err());
        assert!(!o.admin_enabled && o.prometheus());
        assert_eq!((o.metrics_port, o.command_url.as_str()), (7001, "/cmds"));
    }
}

//! The broker's configuration: names, defaults and checks in one place.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use aztec_prover_common::config::{Secret, Validate};
use aztec_prover_common::settings;
use aztec_prover_protocol::aztec::AztecVersion;

use crate::queue::Policy;
use crate::writer::WriterOptions;

settings! {
    /// Settings of the prover broker.
    pub struct BrokerSettings {
        /// Address the JSON-RPC server binds when not socket-activated.
        listen_address: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED), env ["PROVER_BROKER_LISTEN_ADDRESS"], flag "proverBroker.proverBrokerListenAddress";
        /// Port of the JSON-RPC server when not socket-activated.
        port: u16 = 8080, env ["PROVER_BROKER_PORT"], flag "proverBroker.proverBrokerPort";
        /// Directory of the broker's LMDB store.
        data_directory: PathBuf = PathBuf::from("/var/lib/aztec-prover/broker"), env ["PROVER_BROKER_DATA_DIRECTORY"], flag "proverBroker.dataDirectory";
        /// Largest size of the store, in KB (LMDB map size).
        store_map_size_kb: u64 = 64 * 1024 * 1024, env ["PROVER_BROKER_STORE_MAP_SIZE_KB", "DATA_STORE_MAP_SIZE_KB"], flag "proverBroker.proverBrokerStoreMapSizeKb";
        /// Jobs are given to another agent if not kept alive for this long (ms).
        job_timeout_ms: u64 = Policy::DEFAULT.job_timeout_ms, env ["PROVER_BROKER_JOB_TIMEOUT_MS"], flag "proverBroker.proverBrokerJobTimeoutMs";
        /// How often leases are checked for expiry and old epochs cleaned (ms).
        poll_interval_ms: u64 = 1_000, env ["PROVER_BROKER_POLL_INTERVAL_MS"], flag "proverBroker.proverBrokerPollIntervalMs";
        /// Attempts a job gets before it fails for good (Aztec's maxRetries: 3 is the first and two more).
        job_max_retries: u32 = Policy::DEFAULT.max_retries, env ["PROVER_BROKER_JOB_MAX_RETRIES"], flag "proverBroker.proverBrokerJobMaxRetries";
        /// Epochs older than the newest proven one are kept this many epochs, then deleted.
        max_epochs_to_keep_results_for: u64 = Policy::DEFAULT.keep_epochs, env ["PROVER_BROKER_MAX_EPOCHS_TO_KEEP_RESULTS_FOR"], flag "proverBroker.proverBrokerMaxEpochsToKeepResultsFor";
        /// Jobs of epochs more than this many ahead of the newest enqueued epoch are refused.
        max_epochs_ahead: u64 = Policy::DEFAULT.max_epochs_ahead, env ["PROVER_BROKER_MAX_EPOCHS_AHEAD"], flag "proverBroker.proverBrokerMaxEpochsAhead";
        /// Most requests written to disk in one commit (group commit).
        batch_size: usize = 256, env ["PROVER_BROKER_BATCH_SIZE"], flag "proverBroker.proverBrokerBatchSize";
        /// Bearer token every client must send (empty: none; then the broker warns when it listens beyond loopback).
        auth_token: Secret = Secret::new(""), env ["PROVER_BROKER_AUTH_TOKEN"], flag "proverBroker.authToken", secret;
        /// Largest request body accepted, in bytes (inputs and proofs travel inside).
        max_body_bytes: u32 = 64 << 20, env ["PROVER_BROKER_MAX_BODY_BYTES"], flag "proverBroker.proverBrokerMaxBodyBytes";
        /// Connections open at once, in all; past it, HTTP 429.
        max_connections: usize = 4096, env ["PROVER_BROKER_MAX_CONNECTIONS"], flag "proverBroker.proverBrokerMaxConnections";
        /// Connections one IP address may hold open at once; past it, HTTP 429.
        max_connections_per_peer: usize = 256, env ["PROVER_BROKER_MAX_CONNECTIONS_PER_PEER"], flag "proverBroker.proverBrokerMaxConnectionsPerPeer";
        /// The Aztec release whose job type numbers the Aztec-compatible API (proverBroker_*, provingJobProducer_*, provingJobConsumer_*) speaks; known: 4.1.2.
        aztec_version: String = AztecVersion::DEFAULT.to_string(), env ["PROVER_BROKER_AZTEC_VERSION"], flag "proverBroker.aztecVersion";
        /// Memory for proofs and inputs being read out (getProofData) at once, in MiB; readers past it wait.
        answer_memory_mib: u32 = 256, env ["PROVER_BROKER_ANSWER_MEMORY_MIB"], flag "proverBroker.proverBrokerAnswerMemoryMib";
        /// Metrics at all (false: no GET /metrics, no push, nothing recorded; for measuring their cost).
        metrics_enabled: bool = true, env ["PROVER_METRICS_ENABLED"], flag "telemetry.enabled";
        /// OpenTelemetry collector to push metrics to over OTLP/HTTP (protobuf), such as http://collector:4318/v1/metrics (empty: none; GET /metrics is always served).
        otlp_metrics_endpoint: String = String::new(), env ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"], flag "telemetry.otlpMetricsEndpoint";
        /// Headers sent with each push, key=value,key=value (a collector's API key, say).
        otlp_metrics_headers: Secret = Secret::new(""), env ["OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"], flag "telemetry.otlpMetricsHeaders", secret;
        /// Time between pushes (ms).
        metrics_export_interval_ms: u64 = 60_000, env ["OTEL_METRIC_EXPORT_INTERVAL"], flag "telemetry.exportIntervalMs";
        /// How long one push may take (ms).
        metrics_export_timeout_ms: u64 = 10_000, env ["OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"], flag "telemetry.exportTimeoutMs";
    }
}

impl Validate for BrokerSettings {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.metrics_config().check()?;
        Policy::check_job_timeout_ms(self.job_timeout_ms).map_err(|e| ("job_timeout_ms", e))?;
        Policy::check_max_retries(self.job_max_retries).map_err(|e| ("job_max_retries", e))?;
        Policy::check_epoch_span(self.max_epochs_to_keep_results_for)
            .map_err(|e| ("max_epochs_to_keep_results_for", e))?;
        Policy::check_epoch_span(self.max_epochs_ahead).map_err(|e| ("max_epochs_ahead", e))?;
        self.aztec_version
            .parse::<AztecVersion>()
            .map_err(|e| ("aztec_version", e.to_string()))?;
        if self.poll_interval_ms == 0 || self.poll_interval_ms > 60_000 {
            return Err(("poll_interval_ms", "must be between 1 and 60000 ms".into()));
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(("batch_size", "must be between 1 and 100000".into()));
        }
        if self.max_body_bytes < 1024 {
            return Err(("max_body_bytes", "must be at least 1024".into()));
        }
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(("max_connections", "must be between 1 and 65536".into()));
        }
        if !(1..=self.max_connections).contains(&self.max_connections_per_peer) {
            return Err((
                "max_connections_per_peer",
                format!(
                    "must be between 1 and max_connections ({})",
                    self.max_connections
                ),
            ));
        }
        if !(16..=1 << 20).contains(&self.answer_memory_mib) {
            return Err(("answer_memory_mib", "must be between 16 and 1048576".into()));
        }
        if !(1024..=MAX_MAP_SIZE_KB).contains(&self.store_map_size_kb) {
            return Err((
                "store_map_size_kb",
                format!("must be between 1024 (1 MiB) and {MAX_MAP_SIZE_KB} (16 TiB)"),
            ));
        }
        Ok(())
    }
}

/// The largest LMDB map a broker asks for: 16 TiB of address space, well
/// inside the 128 TiB a 64-bit Linux process has, so the check here is the
/// one that fails and not the store's open at run time.
pub const MAX_MAP_SIZE_KB: u64 = 1 << 34;

impl BrokerSettings {
    /// The engine policy these settings describe.
    pub fn policy(&self) -> Policy {
        Policy {
            job_timeout_ms: self.job_timeout_ms,
            max_retries: self.job_max_retries,
            keep_epochs: self.max_epochs_to_keep_results_for,
            max_epochs_ahead: self.max_epochs_ahead,
            max_blob_bytes: self.max_body_bytes as usize,
            // Checked by `check`.
            aztec_version: self.aztec_version.parse().unwrap_or(AztecVersion::DEFAULT),
        }
    }

    /// How the writer thread runs.
    pub fn writer_options(&self) -> WriterOptions {
        WriterOptions {
            batch_size: self.batch_size,
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            cleanup_budget: 10_000,
            metrics: aztec_prover_common::metrics::Metrics::off(),
        }
    }

    /// The LMDB map size in bytes.
    pub fn map_size_bytes(&self) -> usize {
        usize::try_from(self.store_map_size_kb.saturating_mul(1024)).unwrap_or(usize::MAX)
    }
}

impl BrokerSettings {
    /// How this daemon exports its metrics.
    pub fn metrics_config(&self) -> aztec_prover_common::metrics::MetricsConfig {
        aztec_prover_common::metrics::MetricsConfig::new(
            "aztec-prover-broker",
            None,
            &self.otlp_metrics_endpoint,
            self.otlp_metrics_headers.expose(),
            self.metrics_export_interval_ms,
            self.metrics_export_timeout_ms,
        )
        .enabled(self.metrics_enabled)
    }
}

#[cfg(test)]
mod tests {
    use aztec_prover_common::config::Settings;
    use aztec_prover_common::service::ServiceSettings;

    use super::*;

    /// `etc/broker.toml` lists every default as a comment: they are the
    /// defaults the code has (written once, in `Policy::DEFAULT` and the
    /// settings), and no key is missing.
    #[test]
    fn the_example_file_shows_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc/broker.toml");
        let text = std::fs::read_to_string(path).expect("etc/broker.toml");
        let (broker, service) = (BrokerSettings::default(), ServiceSettings::default());
        let groups: [&dyn Settings; 2] = [&broker, &service];
        let unquote = |v: &str| v.trim().trim_matches('"').to_string();
        let mut seen = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line
                .strip_prefix('#')
                .and_then(|l| l.split_once(" = "))
                .filter(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            else {
                continue;
            };
            let ours = groups
                .iter()
                .find_map(|g| g.render(key))
                .unwrap_or_else(|| panic!("etc/broker.toml names {key}, which is no setting"));
            assert_eq!(unquote(value), unquote(&ours), "the default of {key}");
            seen.push(key.to_string());
        }
        for f in broker.fields() {
            assert!(
                seen.iter().any(|k| k == f.key),
                "etc/broker.toml does not show {}",
                f.key
            );
        }
    }

    #[test]
    fn the_settings_take_the_policy_defaults_and_bounds() {
        let s = BrokerSettings::default();
        assert_eq!(s.policy().job_timeout_ms, Policy::DEFAULT.job_timeout_ms);
        assert_eq!(s.policy().max_retries, Policy::DEFAULT.max_retries);
        let mut bad = s.clone();
        bad.job_timeout_ms = Policy::MAX_JOB_TIMEOUT_MS + 1;
        assert_eq!(bad.check().map_err(|(k, _)| k), Err("job_timeout_ms"));
        bad.job_timeout_ms = 0;
        assert_eq!(bad.check().map_err(|(k, _)| k), Err("job_timeout_ms"));
        let mut bad = s.clone();
        bad.job_max_retries = Policy::MAX_RETRIES + 1;
        assert_eq!(bad.check().map_err(|(k, _)| k), Err("job_max_retries"));
        // A map no process could map is refused here, not by LMDB at run time.
        let mut bad = s;
        bad.store_map_size_kb = u64::MAX;
        assert_eq!(bad.check().map_err(|(k, _)| k), Err("store_map_size_kb"));
        bad.store_map_size_kb = MAX_MAP_SIZE_KB;
        assert_eq!(bad.check(), Ok(()));
    }
}

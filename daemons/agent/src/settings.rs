//! The agent's configuration: names, defaults and checks in one place.

use std::path::PathBuf;

use aztec_prover_common::config::{Secret, Validate};
use aztec_prover_common::settings;
use aztec_prover_protocol::JobType;

/// Most agents in one process.
pub const MAX_AGENT_COUNT: u32 = 64;
/// Most proving threads per agent.
pub const MAX_THREADS: u32 = 1024;
/// Longest idle poll interval (ms).
pub const MAX_POLL_INTERVAL_MS: u64 = 600_000;

settings! {
    /// Settings of a prover agent.
    pub struct AgentSettings {
        /// URL of the prover broker.
        broker_url: String = "http://127.0.0.1:8080".to_string(), env ["PROVER_BROKER_HOST"], flag "proverAgent.proverBrokerUrl";
        /// Bearer token the broker asks for (empty: none).
        broker_auth_token: Secret = Secret::new(""), env ["PROVER_BROKER_AUTH_TOKEN"], flag "proverAgent.brokerAuthToken", secret;
        /// Agents (concurrent jobs) in this process.
        agent_count: u32 = 1, env ["PROVER_AGENT_COUNT"], flag "proverAgent.proverAgentCount";
        /// How long an idle agent waits before asking the broker again (ms).
        poll_interval_ms: u64 = 1_000, env ["PROVER_AGENT_POLL_INTERVAL_MS"], flag "proverAgent.proverAgentPollIntervalMs";
        /// Job types this agent proves (comma separated; empty: all).
        proof_types: Vec<String> = Vec::new(), env ["PROVER_AGENT_PROOF_TYPES"], flag "proverAgent.proverAgentProofTypes";
        /// The prover's identity (an address), recorded in root rollups.
        prover_id: String = "0x0".to_string(), env ["PROVER_ID"], flag "proverAgent.proverId";
        /// Prove for real (false: check every constraint, make no proof).
        real_proofs: bool = true, env ["PROVER_REAL_PROOFS"], flag "proverAgent.realProofs";
        /// Backend: cpu, wgpu, or a path to a backend library.
        backend: String = "cpu".to_string(), env ["PROVER_AGENT_BACKEND"], flag "backend";
        /// Directory of the proving keys (`aztec-prover keys generate`).
        keys_directory: PathBuf = PathBuf::from("/var/lib/aztec-prover/keys"), env ["PROVER_KEYS_DIRECTORY"], flag "proverAgent.keysDirectory";
        /// Proving threads per agent (0: the CPUs of its placement divided among the agents).
        threads: u32 = 0, env ["PROVER_AGENT_THREADS"], flag "proverAgent.threads";
        /// Instance number of the template unit (`%i`); picks the NUMA node.
        instance: u32 = 0, env ["PROVER_AGENT_INSTANCE"], flag "instance";
        /// Placement: `numa` (instance N on node (N-1) mod nodes), `off`, or an explicit CPU list such as `0-7,16-23`.
        cpu_affinity: String = "numa".to_string(), env ["PROVER_AGENT_CPU_AFFINITY"], flag "proverAgent.cpuAffinity";
        /// Where the NUMA topology is read (tests point it at a fake tree).
        sysfs_root: PathBuf = PathBuf::from("/sys"), env ["PROVER_AGENT_SYSFS_ROOT"], flag "proverAgent.sysfsRoot";
        /// On SIGTERM, how long a job in progress may take to finish before it is handed back (ms).
        stop_timeout_ms: u64 = 60_000, env ["PROVER_AGENT_STOP_TIMEOUT_MS"], flag "proverAgent.stopTimeoutMs";
        /// Heartbeat period while proving (ms); keep it well under the broker's job timeout.
        heartbeat_interval_ms: u64 = 5_000, env ["PROVER_AGENT_HEARTBEAT_INTERVAL_MS"], flag "proverAgent.heartbeatIntervalMs";
        /// CPU backend: code path, auto, ifma, adx or portable (empty: auto).
        cpu_path: String = String::new(), env ["AZTEC_PROVER_CPU_PATH"], flag "backendOptions.cpuPath";
        /// GPU backend: adapter by index or part of its name (empty: the first discrete GPU).
        wgpu_adapter: String = String::new(), env ["AZTEC_PROVER_WGPU_ADAPTER"], flag "backendOptions.wgpuAdapter";
        /// GPU backend: APIs searched, comma separated: vulkan, gl, metal, dx12 (empty: all).
        wgpu_api: String = String::new(), env ["WGPU_BACKEND"], flag "backendOptions.wgpuApi";
        /// GPU backend: field layout, 13 or 29 limb bits (empty: 29 where the adapter has 64-bit integers).
        wgpu_limbs: String = String::new(), env ["AZTEC_PROVER_WGPU_LIMBS"], flag "backendOptions.wgpuLimbs";
        /// GPU backend: where G2 MSMs run, gpu or cpu (empty: the GPU on a real one with 29-bit limbs).
        wgpu_g2: String = String::new(), env ["AZTEC_PROVER_WGPU_G2"], flag "backendOptions.wgpuG2";
        /// GPU backend: MSM window bits, 4 to 18 (empty: by size, at most 16).
        wgpu_window: String = String::new(), env ["AZTEC_PROVER_WGPU_WINDOW"], flag "backendOptions.wgpuWindow";
        /// GPU backend: MSM buckets per bucket_sums thread, a power of two (empty: 32).
        wgpu_segment: String = String::new(), env ["AZTEC_PROVER_WGPU_SEGMENT"], flag "backendOptions.wgpuSegment";
        /// GPU backend: largest binding used, in bytes (empty: the device's limit).
        wgpu_max_binding: String = String::new(), env ["AZTEC_PROVER_WGPU_MAX_BINDING"], flag "backendOptions.wgpuMaxBinding";
        /// GPU backend: per-dispatch times on stderr, 0 or 1 (empty: off).
        wgpu_trace: String = String::new(), env ["AZTEC_PROVER_WGPU_TRACE"], flag "backendOptions.wgpuTrace";
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
        /// Base port of the agent's GET /metrics: instance N listens on base + N, so template instances do not collide (0: no endpoint).
        metrics_port: u16 = 9460, env ["PROVER_AGENT_METRICS_PORT"], flag "proverAgent.metricsPort";
        /// Address the metrics endpoint listens on.
        metrics_host: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), env ["PROVER_AGENT_METRICS_HOST"], flag "proverAgent.metricsHost";
    }
}

impl AgentSettings {
    /// The backend options set (`<backend>.<option>`, value), for
    /// [`aztec_backend_abi::Backend::load_with`]: each backend checks its own
    /// when it loads and ignores the others'.
    pub fn backend_options(&self) -> Vec<(String, String)> {
        [
            ("cpu.path", &self.cpu_path),
            ("wgpu.adapter", &self.wgpu_adapter),
            ("wgpu.api", &self.wgpu_api),
            ("wgpu.limbs", &self.wgpu_limbs),
            ("wgpu.g2", &self.wgpu_g2),
            ("wgpu.window", &self.wgpu_window),
            ("wgpu.segment", &self.wgpu_segment),
            ("wgpu.max_binding", &self.wgpu_max_binding),
            ("wgpu.trace", &self.wgpu_trace),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
    }
}

impl Validate for AgentSettings {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.metrics_config().check()?;
        if !(self.broker_url.starts_with("http://") || self.broker_url.starts_with("https://")) {
            return Err(("broker_url", "must be an http:// or https:// URL".into()));
        }
        if self.agent_count == 0 || self.agent_count > MAX_AGENT_COUNT {
            return Err((
                "agent_count",
                format!("must be between 1 and {MAX_AGENT_COUNT}"),
            ));
        }
        if self.poll_interval_ms == 0 || self.poll_interval_ms > MAX_POLL_INTERVAL_MS {
            return Err((
                "poll_interval_ms",
                format!("must be between 1 and {MAX_POLL_INTERVAL_MS}"),
            ));
        }
        if self.threads > MAX_THREADS {
            return Err(("threads", format!("must be at most {MAX_THREADS}")));
        }
        if let Err(e) = parse_job_types(&self.proof_types) {
            return Err(("proof_types", e));
        }
        if aztec_zk::Felt::from_hex(&self.prover_id).is_none() {
            return Err((
                "prover_id",
                "must be a hex number below the field modulus (an address)".into(),
            ));
        }
        match crate::numa::Affinity::parse(&self.cpu_affinity) {
            Err(e) => return Err(("cpu_affinity", e)),
            Ok(crate::numa::Affinity::Cpus(ids)) => {
                let allowed = crate::numa::allowed_cpus();
                if let Some(bad) = ids.iter().find(|c| !allowed.contains(c)) {
                    return Err((
                        "cpu_affinity",
                        format!(
                            "CPU {bad} is not one this agent may run on (it may use {})",
                            aztec_backend_abi::export::cpu_list(
                                &allowed.iter().map(|c| *c as usize).collect::<Vec<_>>()
                            )
                        ),
                    ));
                }
            }
            Ok(_) => {}
        }
        if self.heartbeat_interval_ms == 0 {
            return Err(("heartbeat_interval_ms", "must be positive".into()));
        }
        Ok(())
    }
}

/// Parses job type names (`base-rollup`, `BASE_ROLLUP`).
pub fn parse_job_types(names: &[String]) -> Result<Vec<JobType>, String> {
    names
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<JobType>()
                .map_err(|_| format!("unknown job type {s:?}"))
        })
        .collect()
}

impl AgentSettings {
    /// How this daemon exports its metrics.
    pub fn metrics_config(&self) -> aztec_prover_common::metrics::MetricsConfig {
        aztec_prover_common::metrics::MetricsConfig::new(
            "aztec-prover-agent",
            Some(self.instance),
            &self.otlp_metrics_endpoint,
            self.otlp_metrics_headers.expose(),
            self.metrics_export_interval_ms,
            self.metrics_export_timeout_ms,
        )
        .enabled(self.metrics_enabled)
    }
}

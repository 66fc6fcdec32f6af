//! The node's configuration: the seeds' names (an operator's `.env` works).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use aztec_prover_common::config::{Secret, Validate};
use aztec_prover_common::settings;

settings! {
    /// Settings of a prover node.
    pub struct NodeSettings {
        /// L1 JSON-RPC URLs, comma separated: the first that answers is used; a request that fails on one for a transport reason goes to the next.
        ethereum_hosts: Vec<String> = vec!["http://127.0.0.1:8545".to_string()], env ["ETHEREUM_HOSTS"], flag "l1RpcUrls";
        /// L1 chain id (checked against the node's answer).
        l1_chain_id: u64 = 31337, env ["L1_CHAIN_ID"], flag "l1ChainId";
        /// Key that signs quotes and L1 transactions; its address is the prover's.
        publisher_private_key: Secret = Secret::new(""), env ["PROVER_PUBLISHER_PRIVATE_KEY", "L1_PRIVATE_KEY"], flag "proverNode.publisherPrivateKey", secret;
        /// The rollup contract (its escrow and fee asset are read from it).
        rollup_address: String = String::new(), env ["ROLLUP_CONTRACT_ADDRESS"], flag "rollupAddress";
        /// How often the epoch monitor looks at L1 (ms); keep it under a slot.
        polling_interval_ms: u64 = 1_000, env ["PROVER_NODE_POLLING_INTERVAL_MS"], flag "proverNode.pollingIntervalMs";
        /// HTTP endpoint asked for each quote's fee and bond (empty: the fixed values below).
        quote_provider_url: String = String::new(), env ["QUOTE_PROVIDER_URL"], flag "proverNode.quoteProviderUrl";
        /// Fixed quote: share of the epoch's fees asked, in basis points.
        quote_basis_point_fee: Option<u32> = None, env ["QUOTE_PROVIDER_BASIS_POINT_FEE"], flag "proverNode.quoteProviderBasisPointFee";
        /// Fixed quote: bond offered (fee-asset base units).
        quote_bond_amount: Option<u128> = None, env ["QUOTE_PROVIDER_BOND_AMOUNT"], flag "proverNode.quoteProviderBondAmount";
        /// Top the escrow up when the free deposit is under this (base units).
        minimum_escrow_amount: u128 = 1_000, env ["PROVER_MINIMUM_ESCROW_AMOUNT"], flag "proverNode.minimumEscrowAmount";
        /// ...to this.
        target_escrow_amount: u128 = 2_000, env ["PROVER_TARGET_ESCROW_AMOUNT"], flag "proverNode.targetEscrowAmount";
        /// Node that takes quotes over HTTP (JSON-RPC `node_addEpochProofQuote`); used only when P2P_ENABLED is false.
        coordination_node_url: String = String::new(), env ["PROVER_COORDINATION_NODE_URL"], flag "proverNode.coordinationNodeUrl";
        /// The prover broker that proving jobs go to.
        broker_url: String = "http://127.0.0.1:8080".to_string(), env ["PROVER_BROKER_HOST"], flag "proverNode.proverBrokerUrl";
        /// Bearer token the broker asks for (empty: none).
        broker_auth_token: Secret = Secret::new(""), env ["PROVER_BROKER_AUTH_TOKEN"], flag "proverNode.brokerAuthToken", secret;
        /// Node that serves tx objects by hash over HTTP (empty: the coordination node; with P2P on, peers are asked first and this is the fallback).
        tx_provider_url: String = String::new(), env ["AZTEC_NODE_URL"], flag "proverNode.txProviderUrl";
        /// Real proofs (false: agents simulate; only for a rollup with the mock verifier).
        real_proofs: bool = true, env ["PROVER_REAL_PROOFS"], flag "proverNode.realProofs";
        /// Keys directory: circuit sizes (`params.json`) and the verifying keys every proof is checked with.
        keys_directory: PathBuf = PathBuf::from("/var/lib/aztec-prover/keys"), env ["PROVER_KEYS_DIRECTORY"], flag "proverNode.keysDirectory";
        /// Where the node keeps its state: the world state (LMDB) in `world-state/` under it.
        data_directory: PathBuf = PathBuf::from("/var/lib/aztec-prover/node"), env ["DATA_DIRECTORY"], flag "dataDirectory";
        /// Longest time an epoch's jobs may take in the broker (ms).
        epoch_proving_timeout_ms: u64 = 3_600_000, env ["PROVER_EPOCH_PROVING_TIMEOUT_MS"], flag "proverNode.epochProvingTimeoutMs";
        /// Prove each block's jobs as soon as the block is on L1, before the epoch is claimed (work for epochs that go to another prover is dropped, and counted).
        prove_ahead: bool = false, env ["PROVER_NODE_PROVE_AHEAD"], flag "proverNode.proveAhead";
        /// Most gas one L1 transaction of an epoch proof may use: the proofs go in as many chunks as needed (Ethereum's cap is 16777216, EIP-7825).
        publisher_max_tx_gas: u64 = 15_000_000, env ["PROVER_PUBLISHER_MAX_TX_GAS"], flag "proverPublisher.maxTxGas";
        /// Most calldata one L1 transaction of an epoch proof may carry, in bytes (pools refuse transactions over 128 KiB).
        publisher_max_tx_bytes: usize = 122_880, env ["PROVER_PUBLISHER_MAX_TX_BYTES"], flag "proverPublisher.maxTxBytes";
        /// Port of the node's JSON-RPC API (proverNode_getStatus, proverNode_getJobs); unset: none, unless systemd passes a socket.
        rpc_port: Option<u16> = None, env ["AZTEC_PORT"], flag "port";
        /// Address the JSON-RPC API binds to when it binds itself.
        rpc_listen_address: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST), env ["PROVER_NODE_LISTEN_ADDRESS"], flag "proverNode.listenAddress";
        /// Join the P2P network: find peers, gossip quotes to proposers and fetch txs from peers (PROVER_COORDINATION_NODE_URL is then not used for quotes).
        p2p_enabled: bool = false, env ["P2P_ENABLED"], flag "p2p.enabled";
        /// Address the P2P listener binds to.
        p2p_ip: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED), env ["P2P_IP"], flag "p2p.p2pIp";
        /// TCP port of the P2P listener (open it in the firewall).
        p2p_port: u16 = 40400, env ["P2P_PORT"], flag "p2p.p2pPort";
        /// Boot nodes to dial, comma separated multiaddrs ending in /p2p/<peer id> (as `aztec-prover p2p bootnode` logs).
        boot_node_url: Vec<String> = Vec::new(), env ["BOOT_NODE_URL"], flag "p2p.bootstrapNodes";
        /// Peers to keep connected at most.
        p2p_max_peers: u32 = 100, env ["P2P_MAX_PEERS"], flag "p2p.maxPeers";
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

impl Validate for NodeSettings {
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.metrics_config().check()?;
        if self.ethereum_hosts.is_empty() {
            return Err((
                "ethereum_hosts",
                "must list at least one http(s):// URL".into(),
            ));
        }
        for (i, u) in self.ethereum_hosts.iter().enumerate() {
            let u = u.trim();
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err((
                    "ethereum_hosts",
                    format!("entry {} is not an http(s):// URL", i + 1),
                ));
            }
            if self.ethereum_hosts[..i].iter().any(|v| v.trim() == u) {
                return Err((
                    "ethereum_hosts",
                    format!("entry {} repeats an earlier one", i + 1),
                ));
            }
        }
        if !(1_000_000..=aztec_prover_l1::chain::TX_GAS_CAP).contains(&self.publisher_max_tx_gas) {
            return Err((
                "publisher_max_tx_gas",
                format!(
                    "must be from 1000000 to {} (EIP-7825's cap)",
                    aztec_prover_l1::chain::TX_GAS_CAP
                ),
            ));
        }
        if !(16_384..=131_072).contains(&self.publisher_max_tx_bytes) {
            return Err((
                "publisher_max_tx_bytes",
                "must be from 16384 to 131072 (128 KiB)".into(),
            ));
        }
        if self.polling_interval_ms == 0 {
            return Err(("polling_interval_ms", "must be at least 1".into()));
        }
        if self.target_escrow_amount < self.minimum_escrow_amount {
            return Err((
                "target_escrow_amount",
                "must be at least PROVER_MINIMUM_ESCROW_AMOUNT".into(),
            ));
        }
        if self.p2p_max_peers == 0 {
            return Err(("p2p_max_peers", "must be at least 1".into()));
        }
        for (i, b) in self.boot_node_url.iter().enumerate() {
            crate::p2p::boot_node(b)
                .map_err(|e| ("boot_node_url", format!("entry {}: {e}", i + 1)))?;
        }
        if matches!(self.quote_basis_point_fee, Some(b) if b > 10_000) {
            return Err((
                "quote_basis_point_fee",
                "must be at most 10000 (100%)".into(),
            ));
        }
        Ok(())
    }
}

impl NodeSettings {
    /// Where and how the node joins the P2P network (`None`: P2P is off).
    pub fn p2p_options(&self) -> Result<Option<crate::p2p::P2pOptions>, String> {
        if !self.p2p_enabled {
            return Ok(None);
        }
        Ok(Some(crate::p2p::P2pOptions {
            data_dir: self.data_directory.clone(),
            ip: self.p2p_ip,
            port: self.p2p_port,
            boot_nodes: self
                .boot_node_url
                .iter()
                .map(|b| crate::p2p::boot_node(b))
                .collect::<Result<_, _>>()?,
            max_peers: self.p2p_max_peers,
        }))
    }

    /// How this daemon exports its metrics.
    pub fn metrics_config(&self) -> aztec_prover_common::metrics::MetricsConfig {
        aztec_prover_common::metrics::MetricsConfig::new(
            "aztec-prover-node",
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
    use super::*;
    use aztec_prover_common::config::{self, Inputs, Settings};

    /// The unit file loads `publisher-private-key` with `LoadCredential=`:
    /// the key must be a secret field of that credential name, read from
    /// `$CREDENTIALS_DIRECTORY` and never shown.
    #[test]
    fn publisher_key_comes_from_the_systemd_credential() {
        let dir = std::env::temp_dir().join(format!("aztec-node-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        std::fs::write(dir.join("publisher-private-key"), format!("{key}\n")).unwrap();
        let mut s = NodeSettings::default();
        let spec = s
            .fields()
            .iter()
            .find(|f| f.key == "publisher_private_key")
            .unwrap();
        assert!(spec.secret);
        assert_eq!(config::credential_name(spec.key), "publisher-private-key");
        let inputs = Inputs {
            env: [(
                "CREDENTIALS_DIRECTORY".to_string(),
                dir.display().to_string(),
            )]
            .into(),
            ..Inputs::default()
        };
        let prov = config::load(&mut [&mut s], &inputs).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s.publisher_private_key.expose(), key);
        assert!(!config::show(&[&s], &prov).contains(&key[2..]));
    }

    #[test]
    fn every_l1_endpoint_is_checked() {
        let with = |hosts: &[&str]| NodeSettings {
            ethereum_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..NodeSettings::default()
        };
        assert!(with(&["http://a:8545", "https://b/v2/key"]).check().is_ok());
        for (hosts, why) in [
            (&[][..], "at least one"),
            (&["http://a:8545", "ws://b:8546"][..], "entry 2 is not"),
            (&["http://a:8545", " http://a:8545"][..], "entry 2 repeats"),
        ] {
            let (key, e) = with(hosts).check().unwrap_err();
            assert_eq!(key, "ethereum_hosts");
            assert!(e.contains(why), "{hosts:?}: {e}");
        }
    }
}

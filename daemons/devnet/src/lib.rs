//! The local devnet: anvil as L1, the rollup's contracts deployed on it,
//! accounts funded, and a sequencer proposing blocks every slot and serving
//! txs and quotes. Used by `aztec-prover devnet` and by the tests.
#![forbid(unsafe_code)]

pub mod anvil;
pub mod p2p;
pub mod sequencer;
pub mod server;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use aztec_prover_l1::chain::{self, Deployment, L1, L1Error};
use aztec_prover_l1::deploy::{RollupSetup, VerifierChoice, deploy};
use aztec_prover_l1::felt_word;
use aztec_prover_rollup::world::World;
use aztec_zk::{CircuitId, RollupParams};
use jsonrpsee::server::ServerHandle;
use tokio::sync::watch;

pub use sequencer::{SequencerConfig, Shared, Stats};

/// How to set the devnet up.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// anvil's port (0: any free one).
    pub anvil_port: u16,
    /// Where the sequencer's endpoint listens (port 0: any free one).
    pub node_listen: SocketAddr,
    /// Tree sizes and per-block counts.
    pub params: RollupParams,
    /// Seconds per L2 slot.
    pub slot_duration: u64,
    /// Slots per epoch.
    pub epoch_duration: u64,
    /// Slots after an epoch in which it can be claimed.
    pub claim_duration_slots: u64,
    /// Slots after an epoch within which it must be proven.
    pub proof_window_slots: u64,
    /// Verifying keys for real proofs (`None`: the mock verifier).
    pub keys_dir: Option<PathBuf>,
    /// Fee-asset tokens minted to each prover account.
    pub prover_funds: U256,
    /// Txs per block at most.
    pub max_txs_per_block: usize,
    /// Every block full (as many txs as `max_txs_per_block` and the sizes allow).
    pub full_blocks: bool,
    /// The slot L1's clock is moved to before the first block (0: none),
    /// so that the first epoch holds only its last slots' blocks.
    pub first_slot: u64,
    /// Whether the sequencer claims quotes.
    pub claim_quotes: bool,
    /// Slots of its claim phase the sequencer lets pass, collecting quotes,
    /// before it claims the best (0: as soon as it has one).
    pub claim_delay_slots: u64,
    /// Seed of the synthetic traffic.
    pub seed: u64,
    /// A file anvil keeps its chain in, so that L1 can be stopped and
    /// started again with its chain ([`Devnet::stop_l1`]); `None`: memory only.
    pub l1_state: Option<PathBuf>,
    /// Run a boot node, and put the sequencer on the P2P network: it takes
    /// gossiped quotes and answers peers' requests for txs.
    pub p2p: bool,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        DevnetOptions {
            anvil_port: 0,
            node_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            params: RollupParams::test(),
            slot_duration: 4,
            epoch_duration: 4,
            claim_duration_slots: 2,
            proof_window_slots: 8,
            keys_dir: None,
            prover_funds: U256::from(10u64).pow(U256::from(24u64)),
            max_txs_per_block: usize::MAX,
            full_blocks: false,
            first_slot: 0,
            claim_quotes: true,
            claim_delay_slots: 0,
            seed: 1,
            l1_state: None,
            p2p: false,
        }
    }
}

/// A running devnet. Dropping it stops the sequencer and anvil.
pub struct Devnet {
    anvil: AnvilInstance,
    l1_state: Option<PathBuf>,
    /// The contracts.
    pub deployment: Deployment,
    /// The sequencer's endpoint (`http://127.0.0.1:port`).
    pub node_url: String,
    /// The proposer's key (anvil account 0).
    pub proposer: PrivateKeySigner,
    /// Keys of accounts funded for provers (anvil accounts 1..).
    pub provers: Vec<PrivateKeySigner>,
    /// What the sequencer did.
    pub shared: Arc<Shared>,
    /// The boot node's multiaddr, for `BOOT_NODE_URL` (with `p2p`).
    pub boot_node: Option<String>,
    /// The boot node and the sequencer on the P2P network (with `p2p`).
    pub p2p: Option<p2p::DevnetPeers>,
    stop: watch::Sender<bool>,
    server: ServerHandle,
    sequencer: tokio::task::JoinHandle<()>,
}

/// Why the devnet could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// anvil could not be found or started.
    #[error("{0}")]
    Anvil(String),
    /// Deploying or funding failed.
    #[error(transparent)]
    L1(#[from] L1Error),
    /// Keys could not be read.
    #[error("verifying keys: {0}")]
    Keys(String),
    /// The boot node or the sequencer's swarm could not start.
    #[error("P2P: {0}")]
    P2p(String),
    /// The endpoint could not listen.
    #[error("listening on {addr}: {error}")]
    Listen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

fn signer(anvil: &AnvilInstance, i: usize) -> Result<PrivateKeySigner, DevnetError> {
    anvil
        .nth_key(i)
        .map(|k| PrivateKeySigner::from(k.clone()))
        .ok_or_else(|| DevnetError::Anvil(format!("anvil has no account {i}")))
}

impl Devnet {
    /// Starts anvil, deploys, funds and starts the sequencer and its endpoint.
    pub async fn start(opts: DevnetOptions) -> Result<Devnet, DevnetError> {
        let anvil = anvil::spawn(opts.anvil_port, 1, opts.l1_state.as_deref())
            .map_err(DevnetError::Anvil)?;
        let proposer = signer(&anvil, 0)?;
        let provers = (1..4)
            .map(|i| signer(&anvil, i))
            .collect::<Result<Vec<_>, _>>()?;
        let provider = chain::connect(
            &anvil.endpoint(),
            Some(proposer.clone()),
            Duration::from_secs(10),
        )?;
        let verifier = match &opts.keys_dir {
            None => VerifierChoice::Mock,
            Some(dir) => {
                let mut keys = Vec::new();
                for (i, c) in CircuitId::ALL.iter().enumerate() {
                    let (_, vk) = aztec_zk::keys::load_verifying_key(dir, *c, &opts.params)
                        .map_err(|e| DevnetError::Keys(e.to_string()))?;
                    keys.push((i as u8, aztec_zk::groth16::evm::vk_words(&vk)));
                }
                VerifierChoice::Groth16(keys)
            }
        };
        let genesis = World::genesis(opts.params.clone())
            .block_state()
            .archive_root;
        let setup = RollupSetup {
            proposer: proposer.address(),
            genesis_archive: felt_word(&genesis),
            slot_duration: opts.slot_duration,
            epoch_duration: opts.epoch_duration,
            claim_duration_slots: opts.claim_duration_slots,
            proof_window_slots: opts.proof_window_slots,
            escrow_withdraw_delay: opts.slot_duration * opts.epoch_duration,
            verifier,
        };
        let deployment = deploy(&provider, &setup).await?;
        let l1 = L1::new(provider, deployment, proposer.address()).await?;
        // Funds: the proposer pays block fees into the rollup; provers bond.
        let token = l1.fee_token();
        let plenty = U256::from(10u64).pow(U256::from(30u64));
        l1.send("mint(proposer)", token.mint(proposer.address(), plenty))
            .await?;
        l1.send(
            "approve(rollup)",
            token.approve(deployment.rollup, U256::MAX),
        )
        .await?;
        for p in &provers {
            l1.send("mint(prover)", token.mint(p.address(), opts.prover_funds))
                .await?;
        }
        if opts.first_slot > 0 {
            use alloy::providers::ext::AnvilApi;
            let p = l1.provider();
            let err = |e: alloy::transports::TransportError| {
                DevnetError::Anvil(format!(
                    "moving L1's clock to slot {}: {e}",
                    opts.first_slot
                ))
            };
            p.anvil_increase_time(opts.first_slot * opts.slot_duration)
                .await
                .map_err(err)?;
            p.evm_mine(None).await.map_err(err)?;
        }
        tracing::info!(
            "devnet L1 at {}: rollup {}, escrow {}, fee token {}, verifier {} ({})",
            anvil.endpoint(),
            deployment.rollup,
            deployment.escrow,
            deployment.fee_token,
            deployment.verifier,
            if opts.keys_dir.is_some() {
                "Groth16"
            } else {
                "mock: PROVER_REAL_PROOFS=false"
            }
        );

        let shared = Arc::new(Shared::default());
        let listener =
            TcpListener::bind(opts.node_listen).map_err(|error| DevnetError::Listen {
                addr: opts.node_listen,
                error,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|error| DevnetError::Listen {
                addr: opts.node_listen,
                error,
            })?;
        let local = listener.local_addr().map_err(|error| DevnetError::Listen {
            addr: opts.node_listen,
            error,
        })?;
        let server = server::serve(listener, shared.clone(), l1.chain_id, deployment.rollup)
            .map_err(|error| DevnetError::Listen { addr: local, error })?;
        let (stop, stop_rx) = watch::channel(false);
        let p2p = if opts.p2p {
            Some(
                p2p::DevnetPeers::start(l1.chain_id, deployment.rollup, shared.clone())
                    .await
                    .map_err(DevnetError::P2p)?,
            )
        } else {
            None
        };
        let cfg = SequencerConfig {
            params: opts.params.clone(),
            max_txs_per_block: opts.max_txs_per_block,
            full_blocks: opts.full_blocks,
            seed: opts.seed,
            claim_quotes: opts.claim_quotes,
            claim_delay_slots: opts.claim_delay_slots,
            quote_book: p2p.as_ref().map(|p| p.book.clone()),
        };
        let sequencer = tokio::spawn(sequencer::run(l1, cfg, shared.clone(), stop_rx));
        Ok(Devnet {
            anvil,
            l1_state: opts.l1_state,
            deployment,
            node_url: format!("http://{local}"),
            proposer,
            provers,
            shared,
            boot_node: p2p.as_ref().map(|p| p.boot_addr.to_string()),
            p2p,
            stop,
            server,
            sequencer,
        })
    }

    /// anvil's JSON-RPC URL.
    pub fn l1_url(&self) -> String {
        self.anvil.endpoint()
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.anvil.chain_id()
    }

    /// An L1 client signing as `key`.
    pub async fn client(&self, key: &PrivateKeySigner) -> Result<L1, L1Error> {
        let p = chain::connect(&self.l1_url(), Some(key.clone()), Duration::from_secs(10))?;
        L1::new(p, self.deployment, key.address()).await
    }

    /// An L1 client signing as `key`, as the node daemon makes it: over the
    /// failover transport, whose endpoint health it returns too.
    pub async fn watched_client(
        &self,
        key: &PrivateKeySigner,
    ) -> Result<(L1, aztec_prover_l1::failover::Endpoints), L1Error> {
        let (p, endpoints) =
            chain::connect_all(&[self.l1_url()], Some(key.clone()), Duration::from_secs(10))?;
        Ok((L1::new(p, self.deployment, key.address()).await?, endpoints))
    }

    /// The proposer's address.
    pub fn proposer_address(&self) -> Address {
        self.proposer.address()
    }

    /// Stops L1 as an operator would (SIGTERM): anvil saves its chain to
    /// the state file first. The sequencer keeps trying meanwhile.
    pub fn stop_l1(&mut self) -> Result<(), DevnetError> {
        let Some(state) = &self.l1_state else {
            return Err(DevnetError::Anvil(
                "L1 has no state file (DevnetOptions::l1_state): it cannot be restarted".into(),
            ));
        };
        let child = self.anvil.child_mut();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| DevnetError::Anvil(format!("stopping anvil: {e}")))?;
        child
            .wait()
            .map_err(|e| DevnetError::Anvil(format!("waiting for anvil: {e}")))?;
        tracing::info!("L1 stopped; its chain is in {}", state.display());
        Ok(())
    }

    /// Starts L1 again on its port with the chain [`Devnet::stop_l1`] saved.
    pub fn start_l1(&mut self) -> Result<(), DevnetError> {
        let port = self.anvil.port();
        self.anvil = anvil::spawn(port, 1, self.l1_state.as_deref()).map_err(DevnetError::Anvil)?;
        tracing::info!("L1 started again at {}", self.anvil.endpoint());
        Ok(())
    }

    /// Stops the sequencer and its endpoint (anvil stops on drop).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.sequencer.await;
        let _ = self.server.stop();
    }
}

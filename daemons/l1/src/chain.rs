//! Talking to the rollup on L1: a provider with the operator's key, typed
//! reads and writes, and errors that say what happened (an RPC that is down
//! is retryable; a reverted call names the contract's error).

use std::marker::PhantomData;
use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::{Ethereum, EthereumWallet};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::fillers::{BlobGasFiller, GasFiller};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolInterface;
use alloy::transports::http::reqwest;
use serde::{Deserialize, Serialize};

use crate::bindings::{
    FeeToken, Groth16EpochVerifier, MockEpochVerifier, ProofCommitmentEscrow, Rollup,
};
use crate::failover::{Endpoints, Failover};

/// Where the contracts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The rollup.
    pub rollup: Address,
    /// Its bond escrow (created by the rollup).
    pub escrow: Address,
    /// The fee asset.
    pub fee_token: Address,
    /// The epoch proof verifier.
    pub verifier: Address,
}

/// Ethereum's per-transaction gas cap since Osaka (EIP-7825).
pub const TX_GAS_CAP: u64 = 16_777_216;

/// What went wrong on L1.
#[derive(Debug, Clone, thiserror::Error)]
pub enum L1Error {
    /// The node could not be reached or answered with an error: try again.
    #[error("L1 RPC error during {what}: {message}")]
    Rpc {
        /// What we were doing.
        what: String,
        /// The transport's message.
        message: String,
    },
    /// The call reverted: retrying the same call will not help.
    #[error("{what} reverted: {reason}")]
    Reverted {
        /// What we were doing.
        what: String,
        /// The contract's error, decoded when we know it.
        reason: String,
    },
    /// Anything else (bad configuration).
    #[error("{0}")]
    Other(String),
}

impl L1Error {
    /// True for errors worth retrying as they are.
    pub fn is_retryable(&self) -> bool {
        matches!(self, L1Error::Rpc { .. })
    }

    fn rpc(what: &str, e: impl std::fmt::Display) -> L1Error {
        L1Error::Rpc {
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}

/// Names a revert from any of our contracts' error data.
pub fn decode_revert(data: &[u8]) -> String {
    if let Ok(e) = Rollup::RollupErrors::abi_decode(data) {
        return format!("Rollup.{e:?}");
    }
    if let Ok(e) = ProofCommitmentEscrow::ProofCommitmentEscrowErrors::abi_decode(data) {
        return format!("ProofCommitmentEscrow.{e:?}");
    }
    if let Ok(e) = Groth16EpochVerifier::Groth16EpochVerifierErrors::abi_decode(data) {
        return format!("EpochVerifier.{e:?}");
    }
    if let Ok(e) = MockEpochVerifier::MockEpochVerifierErrors::abi_decode(data) {
        return format!("EpochVerifier.{e:?}");
    }
    if let Ok(e) = FeeToken::FeeTokenErrors::abi_decode(data) {
        return format!("FeeToken.{e:?}");
    }
    if let Some(s) = alloy::sol_types::decode_revert_reason(data) {
        return s;
    }
    format!("unknown error data 0x{}", hex::encode(data))
}

/// Sorts a contract call's error into retryable or reverted.
pub fn classify(what: &str, e: alloy::contract::Error) -> L1Error {
    if let Some(data) = e.as_revert_data() {
        return L1Error::Reverted {
            what: what.to_string(),
            reason: decode_revert(&data),
        };
    }
    let text = e.to_string();
    if text.contains("revert") {
        return L1Error::Reverted {
            what: what.to_string(),
            reason: text,
        };
    }
    L1Error::rpc(what, text)
}

/// A provider for `url` with a request timeout, signing with `key` if given.
pub fn connect(
    url: &str,
    key: Option<PrivateKeySigner>,
    timeout: Duration,
) -> Result<DynProvider, L1Error> {
    connect_all(&[url.to_string()], key, timeout).map(|(p, _)| p)
}

/// A provider over every endpoint in `urls` (failing over from one to the
/// next, see [`crate::failover`]) with a request timeout per endpoint,
/// signing with `key` if given; and the endpoints' health.
pub fn connect_all(
    urls: &[String],
    key: Option<PrivateKeySigner>,
    timeout: Duration,
) -> Result<(DynProvider, Endpoints), L1Error> {
    let parsed = urls
        .iter()
        .map(|url| {
            url.trim()
                .parse::<reqwest::Url>()
                .map_err(|e| L1Error::Other(format!("L1 RPC URL {url:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let transport = Failover::new(&parsed, timeout).map_err(L1Error::Other)?;
    let endpoints = transport.endpoints();
    let local = parsed.iter().all(|u| {
        u.host_str()
            .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]")
    });
    let client = RpcClient::new(transport, local);
    let client = if local {
        client.with_poll_interval(Duration::from_millis(100))
    } else {
        client
    };
    let provider = match key {
        // The nonce comes from L1's pending count for every transaction (and
        // `L1::send` sends one at a time), so a send that failed half way,
        // or an L1 node restarted under us, never leaves a gap in nonces.
        Some(k) => ProviderBuilder::default()
            .filler(GasFiller)
            .filler(BlobGasFiller::default())
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(k))
            .connect_client(client)
            .erased(),
        None => ProviderBuilder::new().connect_client(client).erased(),
    };
    Ok((provider, endpoints))
}

/// The rollup's fixed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupConfig {
    /// Unix time of slot 0.
    pub genesis_time: u64,
    /// Seconds per slot.
    pub slot_duration: u64,
    /// Slots per epoch.
    pub epoch_duration: u64,
    /// Slots after an epoch in which it can be claimed.
    pub claim_duration_slots: u64,
    /// Slots after an epoch within which it must be proven.
    pub proof_window_slots: u64,
}

impl RollupConfig {
    /// The epoch of `slot`.
    pub fn epoch_of(&self, slot: u64) -> u64 {
        slot / self.epoch_duration
    }
    /// The last slot in which `epoch` can be claimed (`Rollup.getLastClaimSlot`).
    pub fn last_claim_slot(&self, epoch: u64) -> u64 {
        (epoch + 1) * self.epoch_duration + self.claim_duration_slots - 1
    }
    /// Unix time at which `slot` starts.
    pub fn slot_start(&self, slot: u64) -> u64 {
        self.genesis_time + slot * self.slot_duration
    }
    /// The slot at unix time `t` (0 before genesis).
    pub fn slot_at(&self, t: u64) -> u64 {
        t.saturating_sub(self.genesis_time) / self.slot_duration
    }
}

/// The epoch waiting for a proof and its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochToProve {
    /// The epoch.
    pub epoch: u64,
    /// Its first block.
    pub first_block: u64,
    /// Its last block (so far, if the epoch is still running).
    pub last_block: u64,
}

/// A claim on an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofClaim {
    /// The claimed epoch.
    pub epoch: u64,
    /// The prover's share of fees, in basis points.
    pub basis_point_fee: u64,
    /// The staked bond.
    pub bond_amount: U256,
    /// The prover.
    pub prover: Address,
    /// The proposer who claimed.
    pub proposer: Address,
}

/// A block proposal read from L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedBlock {
    /// Block number on L2.
    pub number: u64,
    /// Its slot.
    pub slot: u64,
    /// Archive root after it.
    pub archive: B256,
    /// Its header hash.
    pub header_hash: B256,
    /// Its effects hash.
    pub effects_hash: B256,
    /// Its fees.
    pub fees: U256,
    /// Its txs' hashes.
    pub tx_hashes: Vec<B256>,
    /// Its L1-to-L2 messages.
    pub messages: Vec<B256>,
    /// The L1 block that carried it.
    pub l1_block: u64,
}

/// The rollup and its escrow, seen by one account.
#[derive(Clone)]
pub struct L1 {
    provider: DynProvider,
    /// The contracts.
    pub deployment: Deployment,
    /// The account that signs (zero when read-only).
    pub account: Address,
    /// The chain id.
    pub chain_id: u64,
    tx_timeout: Duration,
    /// Held from a transaction's nonce until its receipt (shared by clones).
    sending: std::sync::Arc<tokio::sync::Mutex<()>>,
}

type Call<'a, C> = CallBuilder<&'a DynProvider, PhantomData<C>, Ethereum>;

impl L1 {
    /// Wraps a provider; asks it for the chain id.
    pub async fn new(
        provider: DynProvider,
        deployment: Deployment,
        account: Address,
    ) -> Result<L1, L1Error> {
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| L1Error::rpc("eth_chainId", e))?;
        Ok(L1 {
            provider,
            deployment,
            account,
            chain_id,
            tx_timeout: Duration::from_secs(60),
            sending: std::sync::Arc::default(),
        })
    }

    /// The provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The rollup contract.
    pub fn rollup(&self) -> Rollup::RollupInstance<DynProvider> {
        Rollup::new(self.deployment.rollup, self.provider.clone())
    }

    /// The escrow contract.
    pub fn escrow(&self) -> ProofCommitmentEscrow::ProofCommitmentEscrowInstance<DynProvider> {
        ProofCommitmentEscrow::new(self.deployment.escrow, self.provider.clone())
    }

    /// The fee token.
    pub fn fee_token(&self) -> FeeToken::FeeTokenInstance<DynProvider> {
        FeeToken::new(self.deployment.fee_token, self.provider.clone())
    }

    /// Calls a view function.
    pub async fn read<D>(
        &self,
        what: &str,
        call: CallBuilder<&DynProvider, D, Ethereum>,
    ) -> Result<D::CallOutput, L1Error>
    where
        D: CallDecoder,
    {
        call.call().await.map_err(|e| classify(what, e))
    }

    /// Sends a transaction and waits for its receipt. A call that would
    /// revert is refused before sending (gas estimation runs it), with the
    /// contract's reason.
    pub async fn send<C>(
        &self,
        what: &str,
        call: Call<'_, C>,
    ) -> Result<TransactionReceipt, L1Error>
    where
        PhantomData<C>: CallDecoder,
    {
        // One transaction at a time: each takes L1's pending nonce.
        let _one = self.sending.lock().await;
        // Estimation runs the call (a revert is refused here, with its
        // reason); the margin covers state that moves before inclusion.
        let estimate = call.estimate_gas().await.map_err(|e| classify(what, e))?;
        if estimate > TX_GAS_CAP {
            return Err(L1Error::Reverted {
                what: what.to_string(),
                reason: format!(
                    "it needs {estimate} gas, over the per-transaction cap of {TX_GAS_CAP} (EIP-7825)"
                ),
            });
        }
        let call = call.gas((estimate + estimate / 4 + 20_000).min(TX_GAS_CAP));
        let replay = call.clone();
        let pending = call.send().await.map_err(|e| classify(what, e))?;
        let hash = *pending.tx_hash();
        let receipt = pending
            .with_timeout(Some(self.tx_timeout))
            .get_receipt()
            .await
            .map_err(|e| L1Error::rpc(what, format!("waiting for tx {hash}: {e}")))?;
        if !receipt.status() {
            // Run it again where it landed to learn why (the chain moved
            // between estimation and inclusion).
            let why = match receipt.block_number {
                Some(n) => match replay.block(n.into()).call().await {
                    Err(e) => match classify(what, e) {
                        L1Error::Reverted { reason, .. } => reason,
                        other => other.to_string(),
                    },
                    Ok(_) => format!("out of gas? it used {} gas", receipt.gas_used),
                },
                None => "no block number in the receipt".into(),
            };
            return Err(L1Error::Reverted {
                what: what.to_string(),
                reason: format!("tx {hash} reverted on chain: {why}"),
            });
        }
        Ok(receipt)
    }

    /// The rollup's fixed parameters.
    pub async fn config(&self) -> Result<RollupConfig, L1Error> {
        let r = self.rollup();
        let u = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
        Ok(RollupConfig {
            genesis_time: u(self.read("genesisTime", r.genesisTime()).await?),
            slot_duration: u(self.read("slotDuration", r.slotDuration()).await?),
            epoch_duration: u(self.read("epochDuration", r.epochDuration()).await?),
            claim_duration_slots: u(self
                .read("claimDurationSlots", r.claimDurationSlots())
                .await?),
            proof_window_slots: u(self.read("proofWindowSlots", r.proofWindowSlots()).await?),
        })
    }

    /// The current L2 slot as the chain's latest block sees it.
    pub async fn current_slot(&self) -> Result<u64, L1Error> {
        let v = self
            .read("getCurrentSlot", self.rollup().getCurrentSlot())
            .await?;
        Ok(u64::try_from(v).unwrap_or(u64::MAX))
    }

    /// The latest L1 block's timestamp.
    pub async fn l1_timestamp(&self) -> Result<u64, L1Error> {
        let b = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| L1Error::rpc("eth_getBlockByNumber", e))?
            .ok_or_else(|| L1Error::rpc("eth_getBlockByNumber", "no latest block"))?;
        Ok(b.header.timestamp)
    }

    /// The latest L1 block number.
    pub async fn l1_block_number(&self) -> Result<u64, L1Error> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| L1Error::rpc("eth_blockNumber", e))
    }

    /// Pending and proven L2 block numbers.
    pub async fn tips(&self) -> Result<(u64, u64), L1Error> {
        let r = self.rollup();
        let p = self
            .read("pendingBlockNumber", r.pendingBlockNumber())
            .await?;
        let v = self
            .read("provenBlockNumber", r.provenBlockNumber())
            .await?;
        Ok((u64::try_from(p).unwrap_or(0), u64::try_from(v).unwrap_or(0)))
    }

    /// The first unproven epoch, if any block is unproven.
    pub async fn epoch_to_prove(&self) -> Result<Option<EpochToProve>, L1Error> {
        let out = self
            .read("getEpochToProve", self.rollup().getEpochToProve())
            .await?;
        if !out.exists {
            return Ok(None);
        }
        let u = |v: U256| u64::try_from(v).unwrap_or(0);
        Ok(Some(EpochToProve {
            epoch: u(out.epoch),
            first_block: u(out.firstBlock),
            last_block: u(out.lastBlock),
        }))
    }

    /// The current claim, if any.
    pub async fn proof_claim(&self) -> Result<Option<ProofClaim>, L1Error> {
        let c = self
            .read("getProofClaim", self.rollup().getProofClaim())
            .await?;
        if c.bondProvider == Address::ZERO {
            return Ok(None);
        }
        Ok(Some(ProofClaim {
            epoch: u64::try_from(c.epochToProve).unwrap_or(0),
            basis_point_fee: u64::try_from(c.basisPointFee).unwrap_or(0),
            bond_amount: c.bondAmount,
            prover: c.bondProvider,
            proposer: c.proposerClaimant,
        }))
    }

    /// Fees of blocks `first..=last`.
    pub async fn fees_between(&self, first: u64, last: u64) -> Result<U256, L1Error> {
        let r = self.rollup();
        let a = self
            .read("getBlock", r.getBlock(U256::from(first.saturating_sub(1))))
            .await?;
        let b = self.read("getBlock", r.getBlock(U256::from(last))).await?;
        Ok(b.cumulativeFees.saturating_sub(a.cumulativeFees))
    }

    /// The archive root after block `n`.
    pub async fn archive_of(&self, n: u64) -> Result<B256, L1Error> {
        Ok(self
            .read("getBlock", self.rollup().getBlock(U256::from(n)))
            .await?
            .archive)
    }

    /// `account`'s free escrow deposit.
    pub async fn escrow_deposit(&self, account: Address) -> Result<U256, L1Error> {
        self.read("escrow.deposits", self.escrow().deposits(account))
            .await
    }

    /// `account`'s fee-token balance.
    pub async fn token_balance(&self, account: Address) -> Result<U256, L1Error> {
        self.read("balanceOf", self.fee_token().balanceOf(account))
            .await
    }

    /// Block proposals in L1 blocks `from..=to`, in order.
    pub async fn proposed_blocks(&self, from: u64, to: u64) -> Result<Vec<ProposedBlock>, L1Error> {
        let logs = self
            .rollup()
            .L2BlockProposed_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(|e| L1Error::rpc("eth_getLogs L2BlockProposed", e))?;
        let u = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
        Ok(logs
            .into_iter()
            .map(|(e, log)| ProposedBlock {
                number: u(e.blockNumber),
                slot: u(e.slot),
                archive: e.archive,
                header_hash: e.headerHash,
                effects_hash: e.effectsHash,
                fees: e.fees,
                tx_hashes: e.txHashes,
                messages: e.l1ToL2Messages,
                l1_block: log.block_number.unwrap_or(0),
            })
            .collect())
    }

    /// Approves the escrow and deposits `amount` of the account's tokens.
    pub async fn deposit_bond(&self, amount: U256) -> Result<(), L1Error> {
        self.send(
            "approve(escrow)",
            self.fee_token().approve(self.deployment.escrow, amount),
        )
        .await?;
        self.send("escrow.deposit", self.escrow().deposit(amount))
            .await?;
        Ok(())
    }

    /// Claims the proof right of the epoch to prove with `quote` (proposer only).
    pub async fn claim(
        &self,
        quote: &crate::quote::SignedEpochProofQuote,
    ) -> Result<TransactionReceipt, L1Error> {
        self.send(
            "claimEpochProofRight",
            self.rollup().claimEpochProofRight(quote.to_sol()),
        )
        .await
    }

    /// The chunks of `epoch`'s claim verified so far: the tree size they
    /// declared (0: none yet), the outputs not consumed yet, and whether
    /// each position is verified.
    pub async fn epoch_chunks(&self, epoch: u64) -> Result<(usize, usize, Vec<bool>), L1Error> {
        let r = self
            .read(
                "getEpochChunks",
                self.rollup().getEpochChunks(U256::from(epoch)),
            )
            .await?;
        let size = usize::try_from(r.size).unwrap_or(usize::MAX);
        let outstanding = usize::try_from(r.outstanding).unwrap_or(usize::MAX);
        let verified = (0..size)
            .map(|p| r.verified.get(p / 256).is_some_and(|w| w.bit(p % 256)))
            .collect();
        Ok((size, outstanding, verified))
    }

    /// Prunes the pending chain if its first epoch is past its proof window.
    pub async fn prune(&self) -> Result<TransactionReceipt, L1Error> {
        self.send("prune", self.rollup().prune()).await
    }
}

//! Deploying the contracts (the devnet and tests do this; a real network
//! has them already).

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;

use crate::bindings::{FeeToken, Groth16EpochVerifier, MockEpochVerifier, Rollup};
use crate::chain::{Deployment, L1Error, classify};

/// The verifying keys, in the verifier's layout, by circuit number (see
/// `IEpochVerifier.sol`).
pub type VerifierKeys = Vec<(u8, aztec_zk::groth16::evm::VkWords)>;

/// Which epoch verifier to deploy.
#[derive(Debug, Clone)]
pub enum VerifierChoice {
    /// Tree and public-input checks only (`PROVER_REAL_PROOFS=false`).
    Mock,
    /// Groth16 with these keys, sealed after they are set.
    Groth16(VerifierKeys),
}

/// The rollup's parameters.
#[derive(Debug, Clone)]
pub struct RollupSetup {
    /// Who may propose blocks and claim quotes.
    pub proposer: Address,
    /// Archive root of the genesis state.
    pub genesis_archive: B256,
    /// Seconds per slot.
    pub slot_duration: u64,
    /// Slots per epoch.
    pub epoch_duration: u64,
    /// Slots after an epoch during which it can be claimed.
    pub claim_duration_slots: u64,
    /// Slots after an epoch within which it must be proven.
    pub proof_window_slots: u64,
    /// Seconds an escrow withdrawal waits.
    pub escrow_withdraw_delay: u64,
    /// The verifier.
    pub verifier: VerifierChoice,
}

fn word(w: &[u8; 32]) -> U256 {
    U256::from_be_bytes(*w)
}

/// Deploys the fee token, the verifier (keys set and sealed) and the rollup
/// (which creates its escrow), from the provider's signing account.
pub async fn deploy(provider: &DynProvider, setup: &RollupSetup) -> Result<Deployment, L1Error> {
    let token = FeeToken::deploy(provider.clone())
        .await
        .map_err(|e| classify("deploying FeeToken", e))?;
    let verifier = match &setup.verifier {
        VerifierChoice::Mock => *MockEpochVerifier::deploy(provider.clone())
            .await
            .map_err(|e| classify("deploying MockEpochVerifier", e))?
            .address(),
        VerifierChoice::Groth16(keys) => {
            let v = Groth16EpochVerifier::deploy(provider.clone())
                .await
                .map_err(|e| classify("deploying Groth16EpochVerifier", e))?;
            for (circuit, k) in keys {
                let w4 = |a: &[[u8; 32]; 4]| [word(&a[0]), word(&a[1]), word(&a[2]), word(&a[3])];
                let call = v.setKey(
                    *circuit,
                    [word(&k.alpha[0]), word(&k.alpha[1])],
                    w4(&k.beta),
                    w4(&k.gamma),
                    w4(&k.delta),
                    k.ic.iter().map(word).collect(),
                );
                confirm(&format!("setKey({circuit})"), call.send().await).await?;
            }
            confirm("seal", v.seal().send().await).await?;
            *v.address()
        }
    };
    let rollup = Rollup::deploy(
        provider.clone(),
        *token.address(),
        verifier,
        setup.proposer,
        setup.genesis_archive,
        U256::from(setup.slot_duration),
        U256::from(setup.epoch_duration),
        U256::from(setup.claim_duration_slots),
        U256::from(setup.proof_window_slots),
        U256::from(setup.escrow_withdraw_delay),
    )
    .await
    .map_err(|e| classify("deploying Rollup", e))?;
    let escrow = rollup
        .escrow()
        .call()
        .await
        .map_err(|e| classify("Rollup.escrow", e))?;
    Ok(Deployment {
        rollup: *rollup.address(),
        escrow,
        fee_token: *token.address(),
        verifier,
    })
}

async fn confirm(
    what: &str,
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
) -> Result<(), L1Error> {
    let pending = sent.map_err(|e| classify(what, e))?;
    let receipt = pending.get_receipt().await.map_err(|e| L1Error::Rpc {
        what: what.to_string(),
        message: e.to_string(),
    })?;
    if receipt.status() {
        Ok(())
    } else {
        Err(L1Error::Reverted {
            what: what.to_string(),
            reason: "reverted on chain".into(),
        })
    }
}

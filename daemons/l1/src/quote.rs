//! Epoch proof quotes: the prover's EIP-712 signature over
//! `EpochProofQuote` (seed 004), checked on chain by
//! `Rollup.claimEpochProofRight`, and their JSON form on the wire.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use serde::{Deserialize, Serialize};

use crate::bindings::Rollup;

/// A quote's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochProofQuote {
    /// The prover's address (its publisher key); the bond comes from its escrow deposit.
    pub prover: Address,
    /// The epoch to prove.
    pub epoch_number: u64,
    /// Its first block.
    pub epoch_init_block: u64,
    /// Its last block.
    pub epoch_final_block: u64,
    /// The fees of its blocks.
    pub total_fees: U256,
    /// The rollup the quote is for.
    pub rollup_address: Address,
    /// The prover's share of the fees, in basis points.
    pub basis_point_fee: u32,
    /// The bond staked when the quote is claimed.
    pub bond_amount: U256,
    /// The last slot in which the quote can be claimed.
    pub valid_until_slot: u64,
}

/// A quote with its signature (65 bytes r, s, v as hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEpochProofQuote {
    /// The terms.
    pub quote: EpochProofQuote,
    /// r ‖ s ‖ v, v being 27 or 28.
    pub signature: alloy::primitives::Bytes,
}

/// The EIP-712 domain of the rollup at `rollup` on chain `chain_id`.
pub fn domain(chain_id: u64, rollup: Address) -> Eip712Domain {
    eip712_domain! {
        name: "Aztec Rollup",
        version: "1",
        chain_id: chain_id,
        verifying_contract: rollup,
    }
}

impl EpochProofQuote {
    /// The contract's view of the terms.
    pub fn to_sol(&self) -> Rollup::EpochProofQuote {
        Rollup::EpochProofQuote {
            prover: self.prover,
            epochNumber: U256::from(self.epoch_number),
            epochInitBlock: U256::from(self.epoch_init_block),
            epochFinalBlock: U256::from(self.epoch_final_block),
            totalFees: self.total_fees,
            rollupAddress: self.rollup_address,
            basisPointFee: self.basis_point_fee,
            bondAmount: self.bond_amount,
            validUntilSlot: U256::from(self.valid_until_slot),
        }
    }

    /// The digest the prover signs (equal to `Rollup.quoteToDigest`).
    pub fn signing_hash(&self, chain_id: u64) -> B256 {
        self.to_sol()
            .eip712_signing_hash(&domain(chain_id, self.rollup_address))
    }

    /// Signs the quote with `signer`, which must be the quote's prover.
    pub fn sign(
        self,
        signer: &PrivateKeySigner,
        chain_id: u64,
    ) -> Result<SignedEpochProofQuote, String> {
        if signer.address() != self.prover {
            return Err(format!(
                "the quote names prover {} but the key is {}",
                self.prover,
                signer.address()
            ));
        }
        let sig = signer
            .sign_hash_sync(&self.signing_hash(chain_id))
            .map_err(|e| format!("signing the quote: {e}"))?;
        let mut bytes = Vec::with_capacity(65);
        bytes.extend_from_slice(&sig.r().to_be_bytes::<32>());
        bytes.extend_from_slice(&sig.s().to_be_bytes::<32>());
        bytes.push(if sig.v() { 28 } else { 27 });
        Ok(SignedEpochProofQuote {
            quote: self,
            signature: bytes.into(),
        })
    }
}

impl SignedEpochProofQuote {
    /// Who signed it, if the signature is well formed.
    pub fn signer(&self, chain_id: u64) -> Option<Address> {
        let s = alloy::primitives::Signature::from_raw(&self.signature).ok()?;
        s.recover_address_from_prehash(&self.quote.signing_hash(chain_id))
            .ok()
    }

    /// The argument of `claimEpochProofRight`.
    pub fn to_sol(&self) -> Rollup::SignedEpochProofQuote {
        let b = &self.signature;
        let word = |i: usize| B256::from_slice(b.get(i..i + 32).unwrap_or(&[0; 32]));
        Rollup::SignedEpochProofQuote {
            quote: self.quote.to_sol(),
            signature: Rollup::Signature {
                v: b.get(64).copied().unwrap_or(0),
                r: word(0),
                s: word(32),
            },
        }
    }
}

//! The rollup's sizes: tree depths and per-transaction, per-block limits.
//! Small in tests, full in production; every proving and verifying key is
//! tied to one set of sizes by its shape hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Tree depths and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupParams {
    /// Depth of the append-only note hash tree.
    pub note_depth: u32,
    /// Depth of the indexed nullifier tree.
    pub nullifier_depth: u32,
    /// Depth of the public data tree (slots are below 2^depth).
    pub public_data_depth: u32,
    /// Depth of the L1-to-L2 message tree.
    pub message_depth: u32,
    /// Depth of the archive of block headers.
    pub archive_depth: u32,
    /// log2 of the note hashes each transaction appends (padded with zeros).
    pub log_notes_per_tx: u32,
    /// Nullifier slots per transaction (zero: unused).
    pub nullifiers_per_tx: u32,
    /// Public data write slots per transaction.
    pub public_writes_per_tx: u32,
    /// log2 of the messages one base parity hashes.
    pub log_messages_per_base_parity: u32,
    /// log2 of the base parities per block.
    pub log_base_parities_per_block: u32,
    /// log2 of the transactions per block (padded with empty transactions); at least 1.
    pub log_txs_per_block: u32,
}

/// Sizes that are not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rollup parameters: {0}")]
pub struct ParamsError(pub String);

impl RollupParams {
    /// Small trees and limits for unit tests (fast to prove).
    pub fn test() -> RollupParams {
        RollupParams {
            note_depth: 8,
            nullifier_depth: 8,
            public_data_depth: 8,
            message_depth: 8,
            archive_depth: 8,
            log_notes_per_tx: 1,
            nullifiers_per_tx: 2,
            public_writes_per_tx: 1,
            log_messages_per_base_parity: 1,
            log_base_parities_per_block: 1,
            log_txs_per_block: 2,
        }
    }

    /// The local devnet: room for thousands of blocks, proofs of a second or two on a laptop.
    pub fn devnet() -> RollupParams {
        RollupParams {
            note_depth: 20,
            nullifier_depth: 20,
            public_data_depth: 16,
            message_depth: 16,
            archive_depth: 16,
            log_notes_per_tx: 2,
            nullifiers_per_tx: 2,
            public_writes_per_tx: 2,
            log_messages_per_base_parity: 2,
            log_base_parities_per_block: 1,
            log_txs_per_block: 1,
        }
    }

    /// Production sizes: 32-level trees, 8 notes, 8 nullifiers and 4 public
    /// writes per transaction, 64 messages and 4 transactions per block.
    pub fn production() -> RollupParams {
        RollupParams {
            note_depth: 32,
            nullifier_depth: 32,
            public_data_depth: 32,
            message_depth: 32,
            archive_depth: 32,
            log_notes_per_tx: 3,
            nullifiers_per_tx: 8,
            public_writes_per_tx: 4,
            log_messages_per_base_parity: 4,
            log_base_parities_per_block: 2,
            log_txs_per_block: 2,
        }
    }

    /// A preset by name (`test`, `devnet`, `production`).
    pub fn preset(name: &str) -> Option<RollupParams> {
        match name {
            "test" => Some(RollupParams::test()),
            "devnet" => Some(RollupParams::devnet()),
            "production" => Some(RollupParams::production()),
            _ => None,
        }
    }

    /// Checks the sizes fit together.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let err = |m: String| Err(ParamsError(m));
        for (name, d) in [
            ("note_depth", self.note_depth),
            ("nullifier_depth", self.nullifier_depth),
            ("public_data_depth", self.public_data_depth),
            ("message_depth", self.message_depth),
            ("archive_depth", self.archive_depth),
        ] {
            if !(2..=40).contains(&d) {
                return err(format!("{name} = {d} is outside 2..=40"));
            }
        }
        if self.log_notes_per_tx > 8 || self.log_notes_per_tx >= self.note_depth {
            return err("log_notes_per_tx must be below note_depth and at most 8".into());
        }
        if self.nullifiers_per_tx == 0 || self.nullifiers_per_tx > 64 {
            return err("nullifiers_per_tx must be 1..=64".into());
        }
        if self.public_writes_per_tx == 0 || self.public_writes_per_tx > 64 {
            return err("public_writes_per_tx must be 1..=64".into());
        }
        if self.log_messages_per_block() >= self.message_depth {
            return err("messages per block must fit below message_depth".into());
        }
        if self.log_txs_per_block == 0 || self.log_txs_per_block > 8 {
            return err("log_txs_per_block must be 1..=8".into());
        }
        Ok(())
    }

    /// Note hashes per transaction.
    pub fn notes_per_tx(&self) -> usize {
        1 << self.log_notes_per_tx
    }

    /// log2 of L1-to-L2 messages per block.
    pub fn log_messages_per_block(&self) -> u32 {
        self.log_messages_per_base_parity + self.log_base_parities_per_block
    }

    /// Messages per block.
    pub fn messages_per_block(&self) -> usize {
        1 << self.log_messages_per_block()
    }

    /// Messages per base parity.
    pub fn messages_per_base_parity(&self) -> usize {
        1 << self.log_messages_per_base_parity
    }

    /// Base parities per block.
    pub fn base_parities_per_block(&self) -> usize {
        1 << self.log_base_parities_per_block
    }

    /// Transactions per block.
    pub fn txs_per_block(&self) -> usize {
        1 << self.log_txs_per_block
    }

    /// A digest of the sizes, part of every key's shape hash.
    pub fn digest(&self) -> [u8; 32] {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(canonical).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_distinct() {
        for p in [
            RollupParams::test(),
            RollupParams::devnet(),
            RollupParams::production(),
        ] {
            p.validate().unwrap();
        }
        assert_ne!(
            RollupParams::test().digest(),
            RollupParams::production().digest()
        );
        let mut bad = RollupParams::test();
        bad.log_txs_per_block = 0;
        assert!(bad.validate().is_err());
    }
}

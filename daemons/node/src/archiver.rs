//! The L2 block source: block proposals read from the rollup's logs on L1,
//! kept in step with the pending chain (a prune drops what it removed).

use std::collections::BTreeMap;

use aztec_prover_l1::chain::ProposedBlock;
use aztec_prover_l1::{L1, L1Error};

/// Most L1 blocks asked for in one `eth_getLogs`.
const LOG_RANGE: u64 = 5_000;

/// Pending L2 blocks by number.
#[derive(Debug, Default)]
pub struct Archiver {
    blocks: BTreeMap<u64, ProposedBlock>,
    next_l1_block: u64,
}

impl Archiver {
    /// Reads new proposals up to L1's latest block, and forgets pruned ones.
    pub async fn sync(&mut self, l1: &L1) -> Result<(), L1Error> {
        let latest = l1.l1_block_number().await?;
        if latest + 1 < self.next_l1_block {
            tracing::warn!(
                "L1 is at block {latest}, behind the {} already read: L1 was reset, reading again",
                self.next_l1_block - 1
            );
            *self = Archiver::default();
        }
        while self.next_l1_block <= latest {
            let to = (self.next_l1_block + LOG_RANGE - 1).min(latest);
            for b in l1.proposed_blocks(self.next_l1_block, to).await? {
                self.blocks.insert(b.number, b);
            }
            self.next_l1_block = to + 1;
        }
        let (pending, _) = l1.tips().await?;
        let pruned = self.blocks.split_off(&(pending + 1));
        if let (Some(first), Some(last)) = (pruned.keys().next(), pruned.keys().next_back()) {
            tracing::warn!("blocks {first}..={last} were pruned from the pending chain");
        }
        Ok(())
    }

    /// The newest block read.
    pub fn last(&self) -> Option<&ProposedBlock> {
        self.blocks.values().next_back()
    }

    /// Block `n`, if read.
    pub fn block(&self, n: u64) -> Option<&ProposedBlock> {
        self.blocks.get(&n)
    }

    /// Blocks `first..=last`, if all were read.
    pub fn range(&self, first: u64, last: u64) -> Option<Vec<&ProposedBlock>> {
        (first..=last).map(|n| self.blocks.get(&n)).collect()
    }
}

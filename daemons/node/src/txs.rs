//! The tx provider: a block's tx objects by hash from the remote node
//! (checked against their hashes there), and the block's messages, ready to
//! be re-executed.

use std::time::Duration;

use alloy::primitives::B256;
use aztec_prover_l1::chain::ProposedBlock;
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_l1::word_felt;
use aztec_prover_rollup::plan::BlockSpec;
use aztec_zk::circuits::base::Tx;

use crate::error::NodeError;

/// Fetches a tx, retrying a node that fails `attempts` times; a node that
/// does not have it is an error at once.
pub async fn fetch_tx(remote: &RemoteNode, hash: B256, attempts: u32) -> Result<Tx, NodeError> {
    let mut last = String::new();
    for i in 0..attempts.max(1) {
        match remote.tx(hash).await {
            Ok(Some(tx)) => return Ok(tx),
            Ok(None) => {
                return Err(NodeError::Txs(format!(
                    "the remote node {} does not have tx {hash}",
                    remote.url()
                )));
            }
            Err(e) => {
                last = e;
                tokio::time::sleep(Duration::from_millis(200 << i.min(5))).await;
            }
        }
    }
    Err(NodeError::Txs(format!(
        "tx {hash} could not be fetched: {last}"
    )))
}

/// A block proposal with its txs, ready to be re-executed.
pub async fn block_spec(remote: &RemoteNode, b: &ProposedBlock) -> Result<BlockSpec, NodeError> {
    let mut txs = Vec::with_capacity(b.tx_hashes.len());
    for h in &b.tx_hashes {
        txs.push(fetch_tx(remote, *h, 5).await?);
    }
    let messages = b
        .messages
        .iter()
        .map(|m| {
            word_felt(m).ok_or_else(|| {
                NodeError::Chain(format!(
                    "block {}: message {m} is not a field element",
                    b.number
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BlockSpec {
        txs,
        messages,
        slot: b.slot,
    })
}

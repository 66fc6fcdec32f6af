//! The remote node the prover talks to besides L1 (served by the devnet's
//! sequencer, by an Aztec node in production): tx objects by hash, and the
//! HTTP coordination endpoint for quotes (`PROVER_COORDINATION_NODE_URL`).
//! JSON-RPC 2.0 over HTTP.

use std::time::Duration;

use alloy::primitives::B256;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClient;
use jsonrpsee::rpc_params;

use crate::quote::SignedEpochProofQuote;

/// `node_getTxByHash(hash) -> Tx | null`.
pub const GET_TX_BY_HASH: &str = "node_getTxByHash";
/// `node_addEpochProofQuote(signedQuote) -> null`.
pub const ADD_EPOCH_PROOF_QUOTE: &str = "node_addEpochProofQuote";
/// `node_getEpochProofQuotes(epoch) -> [signedQuote]`.
pub const GET_EPOCH_PROOF_QUOTES: &str = "node_getEpochProofQuotes";

/// A client of the remote node at `url`.
#[derive(Clone)]
pub struct RemoteNode {
    client: HttpClient,
    url: String,
}

impl RemoteNode {
    /// Connects lazily to `url`; requests time out after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<RemoteNode, String> {
        let client = jsonrpsee::http_client::HttpClientBuilder::default()
            .request_timeout(timeout)
            .max_response_size(64 << 20)
            .build(url)
            .map_err(|e| format!("remote node URL {url:?}: {e}"))?;
        Ok(RemoteNode {
            client,
            url: url.to_string(),
        })
    }

    /// Where it is.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a quote to the coordination endpoint.
    pub async fn add_quote(&self, q: &SignedEpochProofQuote) -> Result<(), String> {
        self.client
            .request::<Option<()>, _>(ADD_EPOCH_PROOF_QUOTE, rpc_params![q])
            .await
            .map(|_| ())
            .map_err(|e| format!("{ADD_EPOCH_PROOF_QUOTE} at {}: {e}", self.url))
    }

    /// The quotes the node holds for `epoch`.
    pub async fn quotes(&self, epoch: u64) -> Result<Vec<SignedEpochProofQuote>, String> {
        self.client
            .request(GET_EPOCH_PROOF_QUOTES, rpc_params![epoch])
            .await
            .map_err(|e| format!("{GET_EPOCH_PROOF_QUOTES} at {}: {e}", self.url))
    }

    /// A tx by hash; `None` when the node does not have it. The answer is
    /// checked against the hash.
    pub async fn tx(&self, hash: B256) -> Result<Option<aztec_zk::circuits::base::Tx>, String> {
        let tx: Option<aztec_zk::circuits::base::Tx> = self
            .client
            .request(GET_TX_BY_HASH, rpc_params![hash])
            .await
            .map_err(|e| format!("{GET_TX_BY_HASH}({hash}) at {}: {e}", self.url))?;
        match tx {
            Some(t) if B256::from(t.hash()) != hash => Err(format!(
                "{} answered tx {hash} with a tx whose hash is {}",
                self.url,
                B256::from(t.hash())
            )),
            other => Ok(other),
        }
    }
}

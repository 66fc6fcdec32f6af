//! The quote provider: what fee and bond to ask for an epoch. Either fixed
//! (`QUOTE_PROVIDER_BASIS_POINT_FEE`, `QUOTE_PROVIDER_BOND_AMOUNT`) or asked
//! of an operator's HTTP service (`QUOTE_PROVIDER_URL`, seed 004): a POST
//! of `{epochNumber, fromBlock, endBlock, txCount, totalFees}` answered by
//! `{basisPointFee, bondAmount, validUntilSlot?}`. Without both a fee and a
//! bond there is no quote. A signed quote goes out through the
//! [`QuoteOutbox`]: gossip when P2P is on, else the coordination node.

use std::time::Duration;

use alloy::primitives::U256;
use alloy::transports::http::reqwest;
use aztec_prover_l1::quote::SignedEpochProofQuote;
use aztec_prover_l1::remote::RemoteNode;
use aztec_prover_p2p::Peers;
use serde::{Deserialize, Serialize};

/// What the provider is told about the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochSummary {
    /// The epoch.
    pub epoch_number: u64,
    /// Its first block.
    pub from_block: u64,
    /// Its last block (inclusive).
    pub end_block: u64,
    /// Its txs.
    pub tx_count: u64,
    /// Its fees (decimal string: it may not fit a JSON number).
    pub total_fees: String,
}

/// What a quote asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// Share of fees in basis points.
    pub basis_point_fee: u32,
    /// Bond offered.
    pub bond_amount: U256,
    /// Last slot to claim it, when the provider says.
    pub valid_until_slot: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    basis_point_fee: Option<serde_json::Value>,
    bond_amount: Option<serde_json::Value>,
    valid_until_slot: Option<serde_json::Value>,
}

/// Where terms come from.
#[derive(Debug, Clone)]
pub enum QuoteProvider {
    /// The same terms for every epoch (either may be missing: then no quote).
    Fixed {
        /// Basis points.
        basis_point_fee: Option<u32>,
        /// Bond.
        bond_amount: Option<U256>,
    },
    /// An HTTP service.
    Http {
        /// Its URL.
        url: String,
        /// The client.
        client: reqwest::Client,
    },
}

fn number(v: &serde_json::Value) -> Option<U256> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map(U256::from),
        serde_json::Value::String(s) => s.parse::<U256>().ok(),
        _ => None,
    }
}

impl QuoteProvider {
    /// An HTTP provider with a request timeout.
    pub fn http(url: &str, timeout: Duration) -> Result<QuoteProvider, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(QuoteProvider::Http {
            url: url.to_string(),
            client,
        })
    }

    /// The terms for `epoch`, or why there are none.
    pub async fn terms(&self, epoch: &EpochSummary) -> Result<Terms, String> {
        match self {
            QuoteProvider::Fixed {
                basis_point_fee,
                bond_amount,
            } => match (basis_point_fee, bond_amount) {
                (Some(b), Some(a)) => Ok(Terms {
                    basis_point_fee: *b,
                    bond_amount: *a,
                    valid_until_slot: None,
                }),
                _ => Err("QUOTE_PROVIDER_BASIS_POINT_FEE and QUOTE_PROVIDER_BOND_AMOUNT must both be set".into()),
            },
            QuoteProvider::Http { url, client } => {
                let body = serde_json::to_vec(epoch).map_err(|e| e.to_string())?;
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("quote provider {url}: {e}"))?;
                let status = resp.status();
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("quote provider {url}: {e}"))?;
                if !status.is_success() {
                    return Err(format!(
                        "quote provider {url} answered HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>()
                    ));
                }
                let a: Answer = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("quote provider {url} answered something that is not a quote: {e}"))?;
                let fee = a.basis_point_fee.as_ref().and_then(number);
                let bond = a.bond_amount.as_ref().and_then(number);
                let (Some(fee), Some(bond)) = (fee, bond) else {
                    return Err(format!(
                        "quote provider {url} gave no {}",
                        match (fee, bond) {
                            (None, None) => "basisPointFee and no bondAmount",
                            (None, _) => "basisPointFee",
                            _ => "bondAmount",
                        }
                    ));
                };
                let fee = u32::try_from(fee)
                    .ok()
                    .filter(|f| *f <= 10_000)
                    .ok_or_else(|| format!("quote provider {url}: basisPointFee {fee} is over 10000"))?;
                Ok(Terms {
                    basis_point_fee: fee,
                    bond_amount: bond,
                    valid_until_slot: a
                        .valid_until_slot
                        .as_ref()
                        .and_then(number)
                        .and_then(|v| u64::try_from(v).ok()),
                })
            }
        }
    }
}

/// Where signed quotes go.
#[derive(Clone)]
pub enum QuoteOutbox {
    /// `node_addEpochProofQuote` on the coordination node
    /// (`PROVER_COORDINATION_NODE_URL`, used when P2P is off).
    Http(RemoteNode),
    /// Published on the quotes topic (`P2P_ENABLED`).
    Gossip(Peers),
}

impl From<RemoteNode> for QuoteOutbox {
    fn from(r: RemoteNode) -> QuoteOutbox {
        QuoteOutbox::Http(r)
    }
}

impl QuoteOutbox {
    /// Sends `q`: an error when nobody could be given it (no peer on the
    /// topic yet, the coordination node down); the monitor tries again at
    /// its next poll.
    pub async fn send(&self, q: &SignedEpochProofQuote) -> Result<(), String> {
        match self {
            QuoteOutbox::Http(r) => r.add_quote(q).await,
            QuoteOutbox::Gossip(p) => p.publish(q.to_bytes()).await.map_err(|e| e.to_string()),
        }
    }
}

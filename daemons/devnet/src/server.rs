//! The sequencer's JSON-RPC endpoint: tx objects by hash (the remote node a
//! prover's tx provider reads) and quotes (the HTTP coordination endpoint,
//! `PROVER_COORDINATION_NODE_URL`). Method names: `aztec_prover_l1::remote`.

use std::net::TcpListener;
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use aztec_prover_l1::quote::SignedEpochProofQuote;
use aztec_prover_l1::remote::{ADD_EPOCH_PROOF_QUOTE, GET_EPOCH_PROOF_QUOTES, GET_TX_BY_HASH};
use jsonrpsee::RpcModule;
use jsonrpsee::server::ServerHandle;
use jsonrpsee::types::ErrorObjectOwned;

use crate::sequencer::Shared;

/// JSON-RPC "invalid params".
const INVALID_PARAMS: i32 = -32602;

struct Ctx {
    shared: Arc<Shared>,
    chain_id: u64,
    rollup: Address,
}

fn invalid(msg: String) -> ErrorObjectOwned {
    aztec_prover_common::rpc::error(INVALID_PARAMS, msg)
}

/// Serves the endpoint on `listener`.
pub fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    chain_id: u64,
    rollup: Address,
) -> std::io::Result<ServerHandle> {
    let mut m = RpcModule::new(Ctx {
        shared,
        chain_id,
        rollup,
    });
    let reg = |e: jsonrpsee::core::RegisterMethodError| std::io::Error::other(e.to_string());
    m.register_method(GET_TX_BY_HASH, |params, ctx, _| {
        let (hash,): (B256,) = params.parse()?;
        Ok::<_, ErrorObjectOwned>(ctx.shared.tx(&hash))
    })
    .map_err(reg)?;
    m.register_method(GET_EPOCH_PROOF_QUOTES, |params, ctx, _| {
        let (epoch,): (u64,) = params.parse()?;
        Ok::<_, ErrorObjectOwned>(ctx.shared.quotes(epoch))
    })
    .map_err(reg)?;
    m.register_method(ADD_EPOCH_PROOF_QUOTE, |params, ctx, _| {
        let (q,): (SignedEpochProofQuote,) = params.parse()?;
        if q.quote.rollup_address != ctx.rollup {
            return Err(invalid(format!(
                "the quote is for rollup {}, this node's is {}",
                q.quote.rollup_address, ctx.rollup
            )));
        }
        match q.signer(ctx.chain_id) {
            Some(s) if s == q.quote.prover => {}
            Some(s) => {
                return Err(invalid(format!(
                    "the quote is signed by {s}, not by its prover {}",
                    q.quote.prover
                )));
            }
            None => return Err(invalid("the quote's signature is malformed".into())),
        }
        tracing::info!(
            "quote from {} for epoch {}: {} bps, bond {}, valid until slot {}",
            q.quote.prover,
            q.quote.epoch_number,
            q.quote.basis_point_fee,
            q.quote.bond_amount,
            q.quote.valid_until_slot
        );
        ctx.shared.add_quote(q);
        Ok(())
    })
    .map_err(reg)?;
    aztec_prover_common::rpc::serve(
        listener,
        m,
        aztec_prover_common::rpc::ServeOptions::new(16 << 20, "aztec-prover devnet node: ok"),
    )
}

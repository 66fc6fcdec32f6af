//! The bond manager: keeps enough of the prover's fee asset in the escrow
//! for the bonds its quotes promise (seed 004's `ensureBond`).

use alloy::primitives::U256;
use aztec_prover_l1::{L1, L1Error};

/// Tops the free escrow deposit up to `target` when it is under `minimum`.
/// Returns what was deposited (zero when nothing was needed).
pub async fn ensure_bond(l1: &L1, minimum: U256, target: U256) -> Result<U256, L1Error> {
    ensure_bond_reporting(l1, minimum, target)
        .await
        .map(|(added, _)| added)
}

/// [`ensure_bond`], also returning the deposit it leaves in the escrow.
pub async fn ensure_bond_reporting(
    l1: &L1,
    minimum: U256,
    target: U256,
) -> Result<(U256, U256), L1Error> {
    let deposit = l1.escrow_deposit(l1.account).await?;
    if deposit >= minimum {
        tracing::debug!("escrow deposit {deposit} is at least the minimum {minimum}");
        return Ok((U256::ZERO, deposit));
    }
    let top_up = target.saturating_sub(deposit);
    let balance = l1.token_balance(l1.account).await?;
    if balance < top_up {
        return Err(L1Error::Other(format!(
            "the escrow needs {top_up} more fee-asset units to reach PROVER_TARGET_ESCROW_AMOUNT \
             {target}, but {} holds only {balance}",
            l1.account
        )));
    }
    l1.deposit_bond(top_up).await?;
    tracing::info!(
        "escrow deposit was {deposit} (under the minimum {minimum}): deposited {top_up}, now {target}"
    );
    Ok((top_up, deposit + top_up))
}

//! Quotes as they travel between peers: their bytes on the gossip topic and
//! the rules a node applies before it accepts and relays one (the proving
//! coordination design: quotes are "propagated over the p2p network" to
//! proposers). The book holds the live quote of each prover for each epoch
//! and the view of L1 the rules need (the current slot, the epoch that can
//! be claimed); its owner refreshes that view from L1 every poll.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolValue;

use crate::bindings::Rollup;
use crate::chain::{EpochToProve, L1, L1Error, RollupConfig};
use crate::quote::{EpochProofQuote, SignedEpochProofQuote};

/// A gossiped quote is its ABI encoding: 12 words.
pub const QUOTE_BYTES: usize = 12 * 32;
/// Gossiped messages longer than this are invalid on the quotes topic.
pub const MAX_QUOTE_MESSAGE_BYTES: usize = 1024;
/// How many times a prover may replace its quote for one epoch.
const MAX_REPLACEMENTS: u32 = 8;

/// The gossip topic of the quotes for `rollup` on chain `chain_id`
/// (versioned: a node of another wire version does not hear them).
pub fn topic(chain_id: u64, rollup: Address) -> String {
    format!("/aztec-prover/epoch-proof-quotes/1/{chain_id}/{rollup:#x}")
}

impl SignedEpochProofQuote {
    /// The bytes gossiped: `abi.encode(SignedEpochProofQuote)` as the
    /// contract takes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_sol().abi_encode()
    }

    /// A quote from gossiped bytes; why not, when they are not one.
    pub fn from_bytes(b: &[u8]) -> Result<SignedEpochProofQuote, String> {
        if b.len() != QUOTE_BYTES {
            return Err(format!("{} bytes, a quote is {QUOTE_BYTES}", b.len()));
        }
        let s = Rollup::SignedEpochProofQuote::abi_decode(b)
            .map_err(|e| format!("not an encoded quote: {e}"))?;
        let q = s.quote;
        let small = |v: U256, what: &str| {
            u64::try_from(v).map_err(|_| format!("{what} does not fit 64 bits"))
        };
        let mut signature = Vec::with_capacity(65);
        signature.extend_from_slice(s.signature.r.as_slice());
        signature.extend_from_slice(s.signature.s.as_slice());
        signature.push(s.signature.v);
        Ok(SignedEpochProofQuote {
            quote: EpochProofQuote {
                prover: q.prover,
                epoch_number: small(q.epochNumber, "epochNumber")?,
                epoch_init_block: small(q.epochInitBlock, "epochInitBlock")?,
                epoch_final_block: small(q.epochFinalBlock, "epochFinalBlock")?,
                total_fees: q.totalFees,
                rollup_address: q.rollupAddress,
                basis_point_fee: q.basisPointFee,
                bond_amount: q.bondAmount,
                valid_until_slot: small(q.validUntilSlot, "validUntilSlot")?,
            },
            signature: Bytes::from(signature),
        })
    }
}

/// What the rules need to know of L1, refreshed by the book's owner. Its
/// clock runs on between refreshes: a quote sent the moment an epoch ends
/// is judged by the time it arrives, not by the last refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The rollup's timing.
    pub config: RollupConfig,
    /// L1's time (its latest block's timestamp) at the refresh.
    pub l1_time: u64,
    /// When the refresh was made.
    pub at: Instant,
    /// The epoch waiting for a proof and its blocks so far, if any.
    pub to_prove: Option<EpochToProve>,
    /// The epoch the current claim is for, if any.
    pub claimed: Option<u64>,
}

impl View {
    /// A view at the first slot of the claim phase of `epoch` (blocks
    /// `first..=last`), epochs of 4 slots of `slot_duration` s, claims
    /// within 3 slots: for benchmarks and tests of the rules without an L1.
    pub fn in_claim_phase(epoch: u64, first: u64, last: u64, slot_duration: u64) -> View {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let slot = (epoch + 1) * 4;
        View {
            config: RollupConfig {
                genesis_time: now.saturating_sub(slot * slot_duration),
                slot_duration,
                epoch_duration: 4,
                claim_duration_slots: 3,
                proof_window_slots: 8,
            },
            l1_time: now,
            at: Instant::now(),
            to_prove: Some(EpochToProve {
                epoch,
                first_block: first,
                last_block: last,
            }),
            claimed: None,
        }
    }

    /// L1's slot now, by the view's clock.
    pub fn slot_now(&self) -> u64 {
        self.config
            .slot_at(self.l1_time.saturating_add(self.at.elapsed().as_secs()))
    }
}

/// What the rules say of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A valid quote, new or replacing its prover's older one: deliver and relay.
    Accept(SignedEpochProofQuote),
    /// Invalid: whoever sent it is at fault (forged, malformed, oversized,
    /// for another rollup, long expired).
    Reject(String),
    /// Valid but not wanted now (a duplicate, an epoch that cannot be
    /// claimed now, one that expired this slot): dropped without blame.
    Ignore(String),
}

/// The live quotes and the view of L1 they are checked against.
#[derive(Debug)]
pub struct QuoteBook {
    chain_id: u64,
    rollup: Address,
    view: Mutex<Option<View>>,
    /// (epoch, prover) -> the live quote and how often it was replaced.
    live: Mutex<BTreeMap<(u64, Address), (SignedEpochProofQuote, u32)>>,
}

impl QuoteBook {
    /// An empty book for `rollup` on `chain_id`; it accepts nothing until
    /// it has a view of L1 ([`QuoteBook::set_view`], [`QuoteBook::refresh`]).
    pub fn new(chain_id: u64, rollup: Address) -> QuoteBook {
        QuoteBook {
            chain_id,
            rollup,
            view: Mutex::new(None),
            live: Mutex::new(BTreeMap::new()),
        }
    }

    /// The gossip topic of this book's quotes.
    pub fn topic(&self) -> String {
        topic(self.chain_id, self.rollup)
    }

    /// Sets the view of L1; quotes of epochs before the one to prove are forgotten.
    pub fn set_view(&self, view: View) {
        if let Some(e) = view.to_prove {
            self.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(epoch, _), _| *epoch >= e.epoch);
        }
        *self.view.lock().unwrap_or_else(PoisonError::into_inner) = Some(view);
    }

    /// Reads the view from L1: its time, the epoch to prove and the claim.
    pub async fn refresh(&self, l1: &L1, config: &RollupConfig) -> Result<View, L1Error> {
        let at = Instant::now();
        let l1_time = l1.l1_timestamp().await?;
        let to_prove = l1.epoch_to_prove().await?;
        let claimed = l1.proof_claim().await?.map(|c| c.epoch);
        let view = View {
            config: *config,
            l1_time,
            at,
            to_prove,
            claimed,
        };
        self.set_view(view);
        Ok(view)
    }

    /// Checks gossiped bytes; an accepted quote becomes its prover's live
    /// quote for the epoch.
    pub fn check(&self, bytes: &[u8]) -> Check {
        if bytes.len() > MAX_QUOTE_MESSAGE_BYTES {
            return Check::Reject(format!(
                "{} bytes, over the {MAX_QUOTE_MESSAGE_BYTES} a quote may have",
                bytes.len()
            ));
        }
        let q = match SignedEpochProofQuote::from_bytes(bytes) {
            Ok(q) => q,
            Err(e) => return Check::Reject(e),
        };
        self.admit(q)
    }

    /// Applies the rules to a decoded quote.
    fn admit(&self, q: SignedEpochProofQuote) -> Check {
        let t = &q.quote;
        if t.rollup_address != self.rollup {
            return Check::Reject(format!(
                "for rollup {}, not {}",
                t.rollup_address, self.rollup
            ));
        }
        if t.basis_point_fee > 10_000 {
            return Check::Reject(format!("a fee of {} basis points", t.basis_point_fee));
        }
        match q.signer(self.chain_id) {
            Some(s) if s == t.prover => {}
            Some(s) => {
                return Check::Reject(format!("signed by {s}, not by its prover {}", t.prover));
            }
            None => return Check::Reject("its signature is malformed".into()),
        }
        let Some(view) = *self.view.lock().unwrap_or_else(PoisonError::into_inner) else {
            return Check::Ignore("no view of L1 yet".into());
        };
        let slot = view.slot_now();
        // A quote that expired this slot may have been valid when it was
        // sent; one older than that was not.
        if t.valid_until_slot.saturating_add(1) < slot {
            return Check::Reject(format!(
                "expired at slot {} (now {slot})",
                t.valid_until_slot
            ));
        }
        if t.valid_until_slot < slot {
            return Check::Ignore(format!("expired at slot {}", t.valid_until_slot));
        }
        // The epoch to prove, over, in its claim phase, not claimed. Peers
        // read L1 at different moments: the epoch may end in the slot the
        // view has not reached yet, and its last block may be one proposed
        // since the refresh (never one before).
        let c = &view.config;
        let claimable = view.to_prove.is_some_and(|e| {
            e.epoch == t.epoch_number
                && e.epoch < c.epoch_of(slot + 1)
                && slot <= c.last_claim_slot(e.epoch)
                && view.claimed != Some(e.epoch)
                && e.first_block == t.epoch_init_block
                && (e.last_block..=e.last_block.saturating_add(c.epoch_duration))
                    .contains(&t.epoch_final_block)
        });
        if !claimable {
            return Check::Ignore(format!(
                "epoch {} (blocks {}..={}) cannot be claimed now",
                t.epoch_number, t.epoch_init_block, t.epoch_final_block
            ));
        }
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (t.epoch_number, t.prover);
        match live.get_mut(&key) {
            Some((held, _)) if *held == q => Check::Ignore("a duplicate".into()),
            Some((_, n)) if *n >= MAX_REPLACEMENTS => Check::Ignore(format!(
                "prover {} replaced its quote for epoch {} {MAX_REPLACEMENTS} times already",
                t.prover, t.epoch_number
            )),
            Some((held, n)) => {
                *held = q.clone();
                *n += 1;
                Check::Accept(q)
            }
            None => {
                live.insert(key, (q.clone(), 0));
                Check::Accept(q)
            }
        }
    }

    /// The live quotes for `epoch`, one per prover.
    pub fn quotes(&self, epoch: u64) -> Vec<SignedEpochProofQuote> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .range((epoch, Address::ZERO)..=(epoch, Address::repeat_byte(0xff)))
            .map(|(_, (q, _))| q.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    const CHAIN: u64 = 31337;

    fn book() -> (QuoteBook, Address) {
        let rollup = Address::repeat_byte(7);
        let b = QuoteBook::new(CHAIN, rollup);
        // Slot 20, the first of epoch 5: epoch 4 can be claimed (until slot 22).
        b.set_view(View::in_claim_phase(4, 9, 12, 12));
        (b, rollup)
    }

    fn quote(key: &PrivateKeySigner, rollup: Address, fee: u32) -> EpochProofQuote {
        EpochProofQuote {
            prover: key.address(),
            epoch_number: 4,
            epoch_init_block: 9,
            epoch_final_block: 12,
            total_fees: U256::from(1234u64),
            rollup_address: rollup,
            basis_point_fee: fee,
            bond_amount: U256::from(500u64),
            valid_until_slot: 22,
        }
    }

    #[test]
    fn a_quote_round_trips_through_its_bytes_and_garbage_is_refused() {
        let key = PrivateKeySigner::random();
        let q = quote(&key, Address::repeat_byte(7), 150)
            .sign(&key, CHAIN)
            .unwrap();
        let b = q.to_bytes();
        assert_eq!(b.len(), QUOTE_BYTES);
        assert_eq!(SignedEpochProofQuote::from_bytes(&b).unwrap(), q);
        assert!(SignedEpochProofQuote::from_bytes(&b[1..]).is_err());
        let mut big = b.clone();
        big[32..64].fill(0xff); // epochNumber over 64 bits
        assert!(
            SignedEpochProofQuote::from_bytes(&big)
                .unwrap_err()
                .contains("epochNumber")
        );
    }

    #[test]
    fn the_rules_take_valid_quotes_once_and_blame_only_invalid_ones() {
        let (book, rollup) = book();
        let (key, other) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let good = quote(&key, rollup, 150).sign(&key, CHAIN).unwrap();
        assert_eq!(book.check(&good.to_bytes()), Check::Accept(good.clone()));
        assert!(
            matches!(book.check(&good.to_bytes()), Check::Ignore(w) if w.contains("duplicate"))
        );
        // A newer quote of the same prover replaces the older.
        let newer = quote(&key, rollup, 120).sign(&key, CHAIN).unwrap();
        assert_eq!(book.check(&newer.to_bytes()), Check::Accept(newer.clone()));
        assert_eq!(book.quotes(4), vec![newer]);

        let reject = |b: &[u8], why: &str| match book.check(b) {
            Check::Reject(w) => assert!(w.contains(why), "{w}"),
            other => panic!("{why}: {other:?}"),
        };
        let mut f = good.clone();
        f.quote.basis_point_fee = 10; // terms changed after signing
        reject(&f.to_bytes(), "signed by");
        let wrong = quote(&key, Address::repeat_byte(8), 150)
            .sign(&key, CHAIN)
            .unwrap();
        reject(&wrong.to_bytes(), "for rollup");
        let mut old = quote(&key, rollup, 150);
        old.valid_until_slot = 10;
        reject(&old.sign(&key, CHAIN).unwrap().to_bytes(), "expired");
        reject(&vec![0u8; 4096], "over the");
        reject(&[1, 2, 3], "a quote is");
        // Not blamed: expired this slot, or an epoch not claimable now.
        let mut just = quote(&other, rollup, 150);
        just.valid_until_slot = 19;
        assert!(matches!(
            book.check(&just.sign(&other, CHAIN).unwrap().to_bytes()),
            Check::Ignore(_)
        ));
        let mut later = quote(&other, rollup, 150);
        later.epoch_number = 5;
        let later = later.sign(&other, CHAIN).unwrap();
        assert!(matches!(book.check(&later.to_bytes()), Check::Ignore(_)));
        // A last block the view has not seen yet is fine; an earlier one is not.
        let mut ahead = quote(&other, rollup, 150);
        ahead.epoch_final_block = 13;
        let ahead = ahead.sign(&other, CHAIN).unwrap();
        assert_eq!(book.check(&ahead.to_bytes()), Check::Accept(ahead));
        let mut behind = quote(&key, rollup, 150);
        behind.epoch_final_block = 11;
        let behind = behind.sign(&key, CHAIN).unwrap();
        assert!(matches!(book.check(&behind.to_bytes()), Check::Ignore(_)));
        assert_eq!(book.quotes(4).len(), 2);
    }
}

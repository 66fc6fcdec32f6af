//! aztec-prover's peer-to-peer side, on rust-libp2p: a node's identity kept
//! in its data directory ([`identity`]) and its peers ([`peers`]): boot
//! nodes and Kademlia discovery, gossip on one topic with every message
//! checked before it is relayed.
//!
//! Work in progress (issue 26): the node, the devnet's sequencer and the
//! boot node command do not use it yet; quotes, txs by hash and peer
//! scoring come next.

#![forbid(unsafe_code)]

pub mod identity;
pub mod peers;

pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
pub use peers::{Peers, PeersConfig, PeersError, PeersEvent, PeersStatus, Validator, Verdict};

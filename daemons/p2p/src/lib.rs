//! aztec-prover's peer-to-peer side, on rust-libp2p: a node's identity kept
//! in its data directory ([`identity`]) and its peers ([`peers`]): boot
//! nodes and Kademlia discovery, gossip on one topic with every message
//! checked before it is relayed, objects (txs) asked of peers by key, and
//! peer scores that disconnect a peer sending invalid data ([`score`]).
//! What the messages mean (quotes, txs) is the caller's: this crate moves
//! bytes.

#![forbid(unsafe_code)]

pub mod identity;
pub mod peers;
pub mod score;

pub use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr};
pub use peers::{
    Peers, PeersConfig, PeersError, PeersEvent, PeersStatus, Provider, Validator, Verdict,
};

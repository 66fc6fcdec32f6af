//! Peer scores: every peer starts at zero; a message our validator rejects
//! or an answer that is not what was asked for takes points off; scores
//! drift back towards zero with time, so an honest peer that once relayed
//! something stale recovers. A peer that falls to [`DISCONNECT_AT`] is
//! disconnected and refused for [`BAN`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Points off for a gossiped message the validator rejected.
pub const REJECTED_MESSAGE: f64 = -10.0;
/// Points off for an answer that does not match its request (a tx body
/// whose hash is not the one asked for).
pub const WRONG_ANSWER: f64 = -20.0;
/// At or under this a peer is disconnected and banned.
pub const DISCONNECT_AT: f64 = -50.0;
/// How long a banned peer is refused.
pub const BAN: Duration = Duration::from_secs(600);
/// Each [`Scores::decay`] keeps this share of every score.
const DECAY: f64 = 0.9;

/// The scores of the peers this node has dealt with.
#[derive(Debug, Default)]
pub struct Scores {
    scores: HashMap<PeerId, f64>,
    banned: HashMap<PeerId, Instant>,
}

impl Scores {
    /// `peer`'s score now (zero for a peer never penalised).
    pub fn get(&self, peer: &PeerId) -> f64 {
        self.scores.get(peer).copied().unwrap_or(0.0)
    }

    /// Adds `points` (negative: a penalty) to `peer`'s score; true when it
    /// has just fallen to the disconnect threshold (then it is banned).
    pub fn add(&mut self, peer: PeerId, points: f64, now: Instant) -> bool {
        let s = self.scores.entry(peer).or_insert(0.0);
        *s += points;
        if *s <= DISCONNECT_AT && !self.banned.contains_key(&peer) {
            self.banned.insert(peer, now + BAN);
            return true;
        }
        false
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| now < *until)
    }

    /// Moves every score towards zero and returns the peers whose ban is
    /// over (their score starts again from zero).
    pub fn decay(&mut self, now: Instant) -> Vec<PeerId> {
        for s in self.scores.values_mut() {
            *s *= DECAY;
        }
        self.scores.retain(|_, s| s.abs() >= 0.5);
        let over: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(p, _)| *p)
            .collect();
        for p in &over {
            self.banned.remove(p);
            self.scores.remove(p);
        }
        over
    }

    /// Peers banned now.
    pub fn banned(&self) -> usize {
        self.banned.len()
    }

    /// Every peer with a score other than zero.
    pub fn all(&self) -> impl Iterator<Item = (&PeerId, f64)> {
        self.scores.iter().map(|(p, s)| (p, *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_keeps_sending_invalid_messages_is_banned_for_a_while_then_forgiven() {
        let mut s = Scores::default();
        let (bad, slip) = (PeerId::random(), PeerId::random());
        let t = Instant::now();
        // One stale relay: an honest peer recovers.
        assert!(!s.add(slip, REJECTED_MESSAGE, t));
        for _ in 0..40 {
            s.decay(t);
        }
        assert_eq!(s.get(&slip), 0.0);
        // Five rejected messages in a row: disconnect, once.
        let hits: Vec<bool> = (0..6).map(|_| s.add(bad, REJECTED_MESSAGE, t)).collect();
        assert_eq!(hits, [false, false, false, false, true, false]);
        assert!(s.is_banned(&bad, t));
        assert_eq!(s.banned(), 1);
        assert!(s.decay(t + BAN / 2).is_empty());
        assert_eq!(s.decay(t + BAN), vec![bad]);
        assert!(!s.is_banned(&bad, t + BAN));
        assert_eq!(s.get(&bad), 0.0);
    }
}

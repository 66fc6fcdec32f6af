//! The swarm: TCP with Noise and Yamux; Kademlia to discover peers from the
//! boot nodes; identify to learn their addresses; gossipsub on one topic,
//! where every message is checked by the caller's validator before it is
//! relayed (a rejected one counts against the peer that sent it, see
//! [`crate::score`]); and a request-response protocol that asks a peer for
//! an object by its key (a tx by its hash), answered by the caller's
//! [`Provider`].
//!
//! [`Peers::start`] runs the swarm on a task of its own and returns a handle:
//! publish, ask a peer, penalise one, read the peers and counters, receive
//! accepted messages.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, allow_block_list, identify, kad, noise, tcp, yamux,
};
use sha2::Digest;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::score::{self, Scores};

/// What the caller's validator says of a gossiped message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Good: deliver and relay.
    Accept,
    /// Invalid: drop, and count it against the peer that sent it.
    Reject,
    /// Not wanted now (a duplicate, a stale one): drop without penalty.
    Ignore,
}

/// Checks a message's bytes before it is delivered or relayed.
pub type Validator = Arc<dyn Fn(&PeerId, &[u8]) -> Verdict + Send + Sync>;

/// Answers a peer's request for the object with this key (`None`: not here).
pub type Provider = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Longest key a peer may ask for.
const MAX_KEY_BYTES: u64 = 64;
/// Longest answer taken from a peer.
const MAX_ANSWER_BYTES: u64 = 1 << 20;
/// How long a peer has to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node joins the network.
#[derive(Debug, Clone)]
pub struct PeersConfig {
    /// Where to listen (`/ip4/0.0.0.0/tcp/40400`).
    pub listen: Multiaddr,
    /// Boot nodes: multiaddrs ending in `/p2p/<peer id>`.
    pub boot_nodes: Vec<Multiaddr>,
    /// The gossip topic (versioned, with the rollup and chain in it); none
    /// for a boot node, which only helps others find each other.
    pub topic: Option<String>,
    /// Most bytes in one gossiped message.
    pub max_message_bytes: usize,
    /// Peers to keep connected at most.
    pub max_peers: u32,
    /// Gossipsub's heartbeat (mesh upkeep).
    pub heartbeat: Duration,
}

/// What the swarm tells its owner.
#[derive(Debug, Clone)]
pub enum PeersEvent {
    /// A gossiped message the validator accepted.
    Gossip {
        /// The peer that sent it to us (not necessarily its author).
        from: PeerId,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A peer connected.
    Connected(PeerId),
    /// A peer disconnected.
    Disconnected(PeerId),
}

/// Counters and peers, for the operator's view.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeersStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Where it listens.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<String>,
    /// The peers this node exchanges the topic's messages with in full (its
    /// gossipsub mesh); others hear of them by announcement only.
    pub mesh_peers: Vec<String>,
    /// Gossip messages accepted from peers.
    pub gossip_in: u64,
    /// Gossip messages published by this node.
    pub gossip_out: u64,
    /// Gossip messages rejected by the validator.
    pub gossip_rejected: u64,
    /// Requests answered for peers (with the object or with "not here").
    pub requests_served: u64,
    /// Peers disconnected and banned for their score.
    pub peers_banned: u64,
    /// Scores of the peers that have one other than zero (see `score`).
    pub scores: BTreeMap<String, f64>,
    /// Bytes received from peers, all protocols, on the wire (after
    /// Noise and Yamux), since the node started.
    pub bytes_in: u64,
    /// Bytes sent to peers, likewise.
    pub bytes_out: u64,
}

/// Why the swarm could not start or a call failed.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The swarm could not be built or could not listen.
    #[error("P2P: {0}")]
    Start(String),
    /// The swarm's task has stopped.
    #[error("P2P: the network task has stopped")]
    Stopped,
    /// Gossipsub refused to publish (no peers on the topic, too large, ...).
    #[error("P2P: cannot publish: {0}")]
    Publish(String),
    /// A request to a peer failed (not connected, timed out, refused).
    #[error("P2P: asking {peer}: {why}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// Why there is no answer.
        why: String,
    },
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: libp2p::connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
    objects: request_response::cbor::Behaviour<Vec<u8>, Option<Vec<u8>>>,
}

type Answer = oneshot::Sender<Result<Option<Vec<u8>>, PeersError>>;

enum Command {
    Publish(Vec<u8>, oneshot::Sender<Result<(), PeersError>>),
    Status(oneshot::Sender<PeersStatus>),
    Ranked(oneshot::Sender<Vec<PeerId>>),
    Request(PeerId, Vec<u8>, Answer),
    Penalize(PeerId, f64, String),
}

/// A running swarm. Cheap to clone; the swarm stops when the last handle
/// is dropped.
#[derive(Clone)]
pub struct Peers {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<PeersEvent>,
    peer_id: PeerId,
}

/// The protocol names, ours rather than the public networks'.
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/aztec-prover/kad/1.0.0");
const IDENTIFY_PROTOCOL: &str = "/aztec-prover/id/1.0.0";
const OBJECTS_PROTOCOL: StreamProtocol = StreamProtocol::new("/aztec-prover/tx-by-hash/1.0.0");

/// A message's id is the hash of its bytes: the same quote sent by two
/// peers is one message, delivered and checked once.
fn content_id(m: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::from(sha2::Sha256::digest(&m.data).to_vec())
}

impl Peers {
    /// Starts listening, dials the boot nodes and joins the topic; peers'
    /// requests are answered by `provider` (none: "not here" to all).
    pub async fn start(
        key: Keypair,
        config: PeersConfig,
        validator: Validator,
        provider: Option<Provider>,
    ) -> Result<Peers, PeersError> {
        let peer_id = key.public().to_peer_id();
        let max_peers = config.max_peers.max(1);
        let start = |e: &dyn std::fmt::Display| PeersError::Start(e.to_string());
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(config.heartbeat)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(config.max_message_bytes)
            .message_id_fn(content_id)
            .build()
            .map_err(|e| start(&e))?;
        // Bytes on the wire, per direction, for the operator's view.
        let mut registry = libp2p::metrics::Registry::default();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| start(&e))?
            .with_bandwidth_metrics(&mut registry)
            .with_behaviour(|key| {
                let id = key.public().to_peer_id();
                let gossipsub = gossipsub::Behaviour::new(
                    MessageAuthenticity::Signed(key.clone()),
                    gossip_config,
                )?;
                // Lookups run from our own timer, only where there are boot
                // nodes to start from.
                let mut kad_config = kad::Config::new(KAD_PROTOCOL);
                kad_config.set_periodic_bootstrap_interval(None);
                let mut kad =
                    kad::Behaviour::with_config(id, kad::store::MemoryStore::new(id), kad_config);
                // Answer other nodes' lookups, also on private addresses.
                kad.set_mode(Some(kad::Mode::Server));
                let identify = identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_PROTOCOL.to_string(),
                    key.public(),
                ));
                // The peer cap holds for every dial, Kademlia's own
                // lookups included, and for peers that dial us.
                let limits = libp2p::connection_limits::Behaviour::new(
                    libp2p::connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(max_peers))
                        .with_max_established_per_peer(Some(1)),
                );
                let objects = request_response::cbor::Behaviour::with_codec(
                    request_response::cbor::codec::Codec::default()
                        .set_request_size_maximum(MAX_KEY_BYTES + 16)
                        .set_response_size_maximum(MAX_ANSWER_BYTES),
                    [(OBJECTS_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                );
                Ok(Behaviour {
                    blocked: allow_block_list::Behaviour::default(),
                    limits,
                    gossipsub,
                    kad,
                    identify,
                    objects,
                })
            })
            .map_err(|e| start(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        let topic = config.topic.clone().map(IdentTopic::new);
        if let Some(topic) = &topic {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(topic)
                .map_err(|e| start(&e))?;
        }
        // The transport's error may say nothing in its text (an I/O error
        // inside): show its whole form.
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| PeersError::Start(format!("cannot listen on {}: {e:?}", config.listen)))?;
        for addr in &config.boot_nodes {
            let Some(libp2p::multiaddr::Protocol::P2p(boot)) = addr.iter().last() else {
                return Err(PeersError::Start(format!(
                    "boot node {addr} does not end in /p2p/<peer id>"
                )));
            };
            swarm.behaviour_mut().kad.add_address(&boot, addr.clone());
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!("P2P: cannot dial boot node {addr}: {e}");
            }
        }
        let (commands, mut rx) = mpsc::channel::<Command>(64);
        let (events, _) = broadcast::channel(1024);
        let out = events.clone();
        let status = Arc::new(Mutex::new(PeersStatus {
            peer_id: peer_id.to_string(),
            ..PeersStatus::default()
        }));
        let has_boot = !config.boot_nodes.is_empty();
        let boot_ids: Vec<PeerId> = config
            .boot_nodes
            .iter()
            .filter_map(|a| match a.iter().last() {
                Some(libp2p::multiaddr::Protocol::P2p(id)) => Some(id),
                _ => None,
            })
            .collect();
        let mut net = Net {
            validator,
            provider,
            status,
            out,
            max_peers: config.max_peers,
            scores: Scores::default(),
            pending: HashMap::new(),
        };
        tokio::spawn(async move {
            // Look for peers every 30 s while under the cap, and every 5 s
            // while only boot nodes are known (a network just forming).
            let mut discover = tokio::time::interval(Duration::from_secs(5));
            let mut last_lookup: Option<tokio::time::Instant> = None;
            let mut decay = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        None => return,
                        Some(Command::Publish(data, reply)) => {
                            let r = match &topic {
                                None => Err(PeersError::Publish("a boot node has no topic".into())),
                                Some(t) => swarm
                                    .behaviour_mut()
                                    .gossipsub
                                    .publish(t.clone(), data)
                                    .map(|_| ())
                                    .map_err(|e| PeersError::Publish(e.to_string())),
                            };
                            if r.is_ok() {
                                lock(&net.status).gossip_out += 1;
                            }
                            let _ = reply.send(r);
                        }
                        Some(Command::Request(peer, key, reply)) => {
                            if swarm.is_connected(&peer) {
                                let id = swarm.behaviour_mut().objects.send_request(&peer, key);
                                net.pending.insert(id, reply);
                            } else {
                                let _ = reply.send(Err(PeersError::Request { peer, why: "not connected".into() }));
                            }
                        }
                        Some(Command::Ranked(reply)) => {
                            let mut peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
                            peers.sort_by(|a, b| net.scores.get(b).total_cmp(&net.scores.get(a)));
                            let _ = reply.send(peers);
                        }
                        Some(Command::Penalize(peer, points, why)) => {
                            net.penalize(&mut swarm, peer, points, &why);
                        }
                        Some(Command::Status(reply)) => {
                            let mut s = lock(&net.status).clone();
                            s.peers = swarm.connected_peers().map(|p| p.to_string()).collect();
                            s.listen_addrs = swarm.listeners().map(|a| a.to_string()).collect();
                            if let Some(t) = &topic {
                                s.mesh_peers = swarm
                                    .behaviour()
                                    .gossipsub
                                    .mesh_peers(&t.hash())
                                    .map(|p| p.to_string())
                                    .collect();
                            }
                            s.scores = net
                                .scores
                                .all()
                                .map(|(p, v)| (p.to_string(), (v * 10.0).round() / 10.0))
                                .collect();
                            (s.bytes_in, s.bytes_out) = wire_bytes(&registry);
                            let _ = reply.send(s);
                        }
                    },
                    _ = discover.tick() => {
                        let connected = swarm.connected_peers().count();
                        let others = swarm.connected_peers().filter(|p| !boot_ids.contains(p)).count();
                        let due = last_lookup.is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
                        if has_boot && (connected as u32) < config.max_peers && (others == 0 || due) {
                            let _ = swarm.behaviour_mut().kad.bootstrap();
                            last_lookup = Some(tokio::time::Instant::now());
                        }
                    }
                    _ = decay.tick() => {
                        for peer in net.scores.decay(Instant::now()) {
                            swarm.behaviour_mut().blocked.unblock_peer(peer);
                            tracing::info!("P2P: the ban on {peer} is over");
                        }
                    }
                    event = swarm.select_next_some() => {
                        // A boot node just reached: look for peers through
                        // it now rather than at the next tick.
                        if let SwarmEvent::ConnectionEstablished { peer_id, .. } = &event
                            && boot_ids.contains(peer_id)
                        {
                            let _ = swarm.behaviour_mut().kad.bootstrap();
                        }
                        net.handle(&mut swarm, event);
                    }
                }
            }
        });
        Ok(Peers {
            commands,
            events,
            peer_id,
        })
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Accepted messages and peer changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PeersEvent> {
        self.events.subscribe()
    }

    /// Gossips `data` on the topic.
    pub async fn publish(&self, data: Vec<u8>) -> Result<(), PeersError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Publish(data, tx))
            .await
            .map_err(|_| PeersError::Stopped)?;
        rx.await.map_err(|_| PeersError::Stopped)?
    }

    /// Asks `peer` for the object with `key`: `None` when it does not have it.
    pub async fn request(&self, peer: PeerId, key: Vec<u8>) -> Result<Option<Vec<u8>>, PeersError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(peer, key, tx))
            .await
            .map_err(|_| PeersError::Stopped)?;
        rx.await.map_err(|_| PeersError::Stopped)?
    }

    /// Takes `points` off `peer`'s score for `why` (an answer that was not
    /// what was asked for); at the threshold it is disconnected and banned.
    pub async fn penalize(&self, peer: PeerId, points: f64, why: &str) -> Result<(), PeersError> {
        self.commands
            .send(Command::Penalize(peer, -points.abs(), why.to_string()))
            .await
            .map_err(|_| PeersError::Stopped)
    }

    /// Connected peers, best scored first (cheaper than [`Peers::status`]).
    pub async fn ranked_peers(&self) -> Result<Vec<PeerId>, PeersError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Ranked(tx))
            .await
            .map_err(|_| PeersError::Stopped)?;
        rx.await.map_err(|_| PeersError::Stopped)
    }

    /// Peers, addresses and counters now.
    pub async fn status(&self) -> Result<PeersStatus, PeersError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| PeersError::Stopped)?;
        rx.await.map_err(|_| PeersError::Stopped)
    }
}

/// Bytes in and out, summed over protocols, from the bandwidth counters.
fn wire_bytes(registry: &libp2p::metrics::Registry) -> (u64, u64) {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return (0, 0);
    }
    let (mut inbound, mut outbound) = (0u64, 0u64);
    for line in text
        .lines()
        .filter(|l| l.starts_with("libp2p_bandwidth_bytes_total{"))
    {
        let n = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if line.contains("direction=\"Inbound\"") {
            inbound += n;
        } else if line.contains("direction=\"Outbound\"") {
            outbound += n;
        }
    }
    (inbound, outbound)
}

fn lock(s: &Mutex<PeersStatus>) -> std::sync::MutexGuard<'_, PeersStatus> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The swarm task's own state.
struct Net {
    validator: Validator,
    provider: Option<Provider>,
    status: Arc<Mutex<PeersStatus>>,
    out: broadcast::Sender<PeersEvent>,
    max_peers: u32,
    scores: Scores,
    pending: HashMap<OutboundRequestId, Answer>,
}

impl Net {
    fn penalize(
        &mut self,
        swarm: &mut libp2p::Swarm<Behaviour>,
        peer: PeerId,
        points: f64,
        why: &str,
    ) {
        tracing::debug!("P2P: {peer} scores {points} for {why}");
        if self.scores.add(peer, points, Instant::now()) {
            tracing::warn!(
                "P2P: disconnecting {peer} and refusing it for {} s: its score fell to {:.0} ({why})",
                score::BAN.as_secs(),
                self.scores.get(&peer)
            );
            swarm.behaviour_mut().blocked.block_peer(peer);
            lock(&self.status).peers_banned += 1;
        }
    }

    fn handle(&mut self, swarm: &mut libp2p::Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("P2P: listening on {address}/p2p/{}", swarm.local_peer_id());
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                tracing::debug!("P2P: connected to {peer_id}");
                let _ = self.out.send(PeersEvent::Connected(peer_id));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!("P2P: disconnected from {peer_id}");
                let _ = self.out.send(PeersEvent::Disconnected(peer_id));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => {
                let connected = swarm.connected_peers().count() as u32;
                if connected < self.max_peers
                    && !swarm.is_connected(&peer)
                    && peer != *swarm.local_peer_id()
                    && !self.scores.is_banned(&peer, Instant::now())
                {
                    let _ = swarm.dial(
                        libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                            .addresses(addresses.into_vec())
                            .build(),
                    );
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.gossip(swarm, propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Objects(e)) => self.objects(swarm, e),
            _ => {}
        }
    }

    fn gossip(
        &mut self,
        swarm: &mut libp2p::Swarm<Behaviour>,
        from: PeerId,
        id: gossipsub::MessageId,
        data: Vec<u8>,
    ) {
        let verdict = (self.validator)(&from, &data);
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Reject => MessageAcceptance::Reject,
            Verdict::Ignore => MessageAcceptance::Ignore,
        };
        swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &from, acceptance);
        match verdict {
            Verdict::Accept => {
                lock(&self.status).gossip_in += 1;
                let _ = self.out.send(PeersEvent::Gossip { from, data });
            }
            Verdict::Reject => {
                lock(&self.status).gossip_rejected += 1;
                self.penalize(swarm, from, score::REJECTED_MESSAGE, "an invalid message");
            }
            Verdict::Ignore => {}
        }
    }

    fn objects(
        &mut self,
        swarm: &mut libp2p::Swarm<Behaviour>,
        event: request_response::Event<Vec<u8>, Option<Vec<u8>>>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let answer = if request.len() as u64 > MAX_KEY_BYTES {
                    None
                } else {
                    self.provider.as_ref().and_then(|p| p(&request))
                };
                lock(&self.status).requests_served += 1;
                if swarm
                    .behaviour_mut()
                    .objects
                    .send_response(channel, answer)
                    .is_err()
                {
                    tracing::debug!("P2P: {peer} went away before its answer");
                }
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(PeersError::Request {
                        peer,
                        why: error.to_string(),
                    }));
                }
            }
            _ => {}
        }
    }
}

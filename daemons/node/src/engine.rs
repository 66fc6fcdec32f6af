//! The node engine: the one code path from L1 to proven epochs, driven by
//! the node daemon ([`crate::daemon`]: systemd, D-Bus, the JSON-RPC API) and
//! by the devnet (progress bars). [`start`] takes a [`Monitor`] (quotes,
//! bond, claims) and a [`Pipeline`] (re-execution, the broker, L1) and runs
//! them: the monitor polls L1, each claim that names this prover is queued,
//! and claimed epochs are proven one at a time, in claim order. What it does
//! is written to the [`StatusBoard`] and sent as [`EngineEvent`]s; the
//! returned [`NodeHandle`] answers a health probe for the watchdog and stops
//! the engine.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aztec_prover_l1::chain::RollupConfig;
use aztec_zk::{CircuitId, RollupParams};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::broker::JobBroker;
use crate::error::NodeError;
use crate::monitor::{self, Monitor, NodeEvent};
use crate::orchestrator::{Checking, Progress};
use crate::pipeline::{EpochReport, Pipeline};
use crate::status::{LastProof, StatusBoard};

/// How the node checks results: every proof against the verifying keys in
/// `keys` (for the circuit sizes `params`), or only the public inputs when
/// proofs are simulated (`PROVER_REAL_PROOFS=false`).
pub fn checking(keys: &Path, real_proofs: bool, params: &RollupParams) -> Result<Checking, String> {
    if !real_proofs {
        return Ok(Checking::Simulated);
    }
    let mut vks = std::collections::HashMap::new();
    for c in CircuitId::ALL {
        let (_, vk) =
            aztec_zk::keys::load_verifying_key(keys, c, params).map_err(|e| e.to_string())?;
        vks.insert(c, vk);
    }
    Ok(Checking::Proofs(vks))
}

/// What the engine did, for a front end to show.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// What the monitor did: bond, quotes, claims.
    Monitor(NodeEvent),
    /// A claimed epoch's proving began.
    Proving {
        /// The epoch.
        epoch: u64,
        /// Its first block.
        first_block: u64,
        /// Its last block.
        last_block: u64,
    },
    /// The epoch being proven moved on.
    Progress {
        /// The epoch.
        epoch: u64,
        /// Where it stands.
        progress: Progress,
    },
    /// An epoch is proven on L1.
    Proven(EpochReport),
    /// An epoch was given up.
    Failed {
        /// The epoch.
        epoch: u64,
        /// Why.
        error: Arc<NodeError>,
    },
}

/// Whether the monitor's loop is alive: each step and each pause between
/// steps sets a deadline by which the loop must come back. A step that
/// hangs past [`Liveness::STEP_ALLOWANCE`] (every L1 call has a timeout far
/// shorter) or a loop that stopped misses it. An L1 that cannot be reached
/// is not a miss: the loop keeps stepping, with longer pauses, and the
/// status says so.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    /// Milliseconds after `origin` by which the loop must come back.
    deadline: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        let l = Liveness {
            origin: Instant::now(),
            deadline: AtomicU64::new(0),
        };
        l.step_started();
        l
    }
}

impl Liveness {
    /// Longest a monitor step may take.
    pub const STEP_ALLOWANCE: Duration = Duration::from_secs(120);

    fn come_back_within(&self, d: Duration) {
        let at = (Instant::now() + d).saturating_duration_since(self.origin);
        self.deadline
            .store(at.as_millis() as u64, Ordering::Relaxed);
    }

    /// A step begins.
    pub fn step_started(&self) {
        self.come_back_within(Self::STEP_ALLOWANCE);
    }

    /// The loop pauses for `pause` before its next step.
    pub fn pausing(&self, pause: Duration) {
        self.come_back_within(pause + Self::STEP_ALLOWANCE);
    }

    /// Whether the loop was alive at `now`.
    pub fn alive_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.origin).as_millis() as u64
            <= self.deadline.load(Ordering::Relaxed)
    }
}

/// What the watchdog asks: is the monitor stepping, are the engine's tasks
/// (monitor, claim forwarder, prover) all running. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    liveness: Arc<Liveness>,
    running: Arc<AtomicUsize>,
    tasks: usize,
}

impl HealthProbe {
    /// Whether the engine is healthy now.
    pub fn healthy(&self) -> bool {
        self.healthy_at(Instant::now())
    }

    /// Whether the engine was healthy at `now`.
    pub fn healthy_at(&self, now: Instant) -> bool {
        self.liveness.alive_at(now) && self.running.load(Ordering::Relaxed) == self.tasks
    }
}

/// Counts a task as running until it ends, however it ends (a panic too).
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::Relaxed);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The running engine.
pub struct NodeHandle {
    events: broadcast::Sender<EngineEvent>,
    status: StatusBoard,
    probe: HealthProbe,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    rollup: RollupConfig,
}

impl NodeHandle {
    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// What the node is doing.
    pub fn status(&self) -> &StatusBoard {
        &self.status
    }

    /// The watchdog's probe.
    pub fn probe(&self) -> HealthProbe {
        self.probe.clone()
    }

    /// The rollup's timing.
    pub fn rollup_config(&self) -> RollupConfig {
        self.rollup
    }

    /// Stops the monitor (letting its step finish) and the prover (an epoch
    /// being proven is dropped: its jobs stay in the broker, and a
    /// restarted node re-attaches to them).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut tasks = self.tasks.into_iter();
        if let Some(monitor) = tasks.next() {
            let _ = monitor.await;
        }
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// How the engine reports progress in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressLog {
    /// A line at every tenth of an epoch's jobs (the daemon: journald).
    Lines,
    /// None (the devnet draws a progress bar).
    Quiet,
}

/// Starts the engine: the monitor's loop, the forwarding of its events
/// (claims that name us go to the prover), and the prover.
pub fn start<B: JobBroker + 'static>(
    monitor: Monitor,
    pipeline: Pipeline<B>,
    status: StatusBoard,
    log: ProgressLog,
) -> NodeHandle {
    start_with(monitor, pipeline, status, log, None)
}

/// What the prover task does next.
enum Work {
    /// Prove this claimed epoch (first and last block).
    Prove(u64, u64, u64),
    /// This epoch went to another prover.
    NotOurs(u64),
}

/// [`start`], proving the running epoch's blocks ahead of its claim every
/// `ahead_every` ([`Pipeline::prove_ahead`]) when given.
pub fn start_with<B: JobBroker + 'static>(
    monitor: Monitor,
    pipeline: Pipeline<B>,
    status: StatusBoard,
    log: ProgressLog,
    ahead_every: Option<Duration>,
) -> NodeHandle {
    let (events, _) = broadcast::channel(1024);
    let (stop, stop_rx) = watch::channel(false);
    let liveness = Arc::new(Liveness::default());
    let running = Arc::new(AtomicUsize::new(0));
    let rollup = monitor.rollup_config();
    let monitor = monitor.with_status(status.clone());
    let mut from_monitor = monitor.subscribe();
    status.set_world_state_block(pipeline.world_block());

    let live = liveness.clone();
    let guard = Running::new(&running);
    let monitor_task = tokio::spawn(async move {
        let _running = guard;
        monitor::run(monitor, stop_rx, live).await;
    });

    // Claims go to the prover through a queue of their own: the monitor's
    // events are a broadcast, and one slow epoch must not lose a claim.
    let (claims, mut claimed) = mpsc::unbounded_channel::<Work>();
    let (tx, st) = (events.clone(), status.clone());
    let guard = Running::new(&running);
    let forwarder = tokio::spawn(async move {
        let _running = guard;
        loop {
            match from_monitor.recv().await {
                Ok(e) => {
                    if let NodeEvent::ClaimIsOurs {
                        epoch,
                        first_block,
                        last_block,
                        ..
                    } = &e
                    {
                        st.claimed(*epoch, *first_block, *last_block);
                        let _ = claims.send(Work::Prove(*epoch, *first_block, *last_block));
                    }
                    if let NodeEvent::ClaimedByOther { epoch, .. } = &e {
                        let _ = claims.send(Work::NotOurs(*epoch));
                    }
                    let _ = tx.send(EngineEvent::Monitor(e));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} monitor events were not read in time");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });

    let (tx, st) = (events.clone(), status.clone());
    let guard = Running::new(&running);
    let prover = tokio::spawn(async move {
        let _running = guard;
        let mut pipeline = pipeline;
        st.set_status("watching L1");
        loop {
            // Between claims, the blocks of the running epoch are proven
            // ahead when the node is set to.
            let tick = tokio::time::sleep(ahead_every.unwrap_or(Duration::MAX));
            tokio::select! {
                work = claimed.recv() => match work {
                    Some(Work::Prove(epoch, first, last)) => {
                        prove_one(&mut pipeline, &st, &tx, log, epoch, first, last).await;
                        st.set_status("watching L1");
                    }
                    Some(Work::NotOurs(epoch)) => {
                        pipeline.ahead.not_ours(epoch);
                    }
                    None => break,
                },
                _ = tick, if ahead_every.is_some() => {
                    if let Err(e) = pipeline.prove_ahead().await {
                        tracing::warn!("proving ahead: {e}");
                    }
                }
            }
            st.set_dropped_ahead(pipeline.ahead.dropped());
        }
    });

    NodeHandle {
        events,
        status,
        probe: HealthProbe {
            liveness,
            running,
            tasks: 3,
        },
        stop,
        tasks: vec![monitor_task, forwarder, prover],
        rollup,
    }
}

/// Proves one claimed epoch, reporting as it goes.
async fn prove_one<B: JobBroker>(
    pipeline: &mut Pipeline<B>,
    st: &StatusBoard,
    tx: &broadcast::Sender<EngineEvent>,
    log: ProgressLog,
    e: u64,
    first: u64,
    last: u64,
) {
    st.set_status(&format!("proving epoch {e} (blocks {first}..={last})"));
    let _ = tx.send(EngineEvent::Proving {
        epoch: e,
        first_block: first,
        last_block: last,
    });
    let mut shown = 0;
    let r = pipeline
        .prove(e, first, last, |p| {
            st.progress(e, p.proven, p.total);
            let step = p.total.div_ceil(10).max(1);
            if log == ProgressLog::Lines && (p.proven >= shown + step || p.proven == p.total) {
                shown = p.proven;
                tracing::info!(EPOCH = e, "epoch {e}: {}/{} jobs proven", p.proven, p.total);
            }
            let _ = tx.send(EngineEvent::Progress {
                epoch: e,
                progress: p.clone(),
            });
        })
        .await;
    st.set_world_state_block(pipeline.world_block());
    match r {
        Ok(rep) => {
            tracing::info!(
                EPOCH = e,
                "epoch {e} proven on L1: blocks {}..={}, {} proofs, {} gas, {:.1} s",
                rep.blocks.0,
                rep.blocks.1,
                rep.proofs,
                rep.gas,
                rep.took.as_secs_f64()
            );
            st.completed(LastProof {
                epoch_number: e,
                proven_block: rep.blocks.1,
                proofs: rep.proofs,
                gas: rep.gas,
                seconds: rep.took.as_secs_f64(),
            });
            let _ = tx.send(EngineEvent::Proven(rep));
        }
        Err(err) => {
            tracing::error!(EPOCH = e, "epoch {e} not proven: {err}");
            st.failed(e, err.to_string());
            let _ = tx.send(EngineEvent::Failed {
                epoch: e,
                error: Arc::new(err),
            });
        }
    }
}

/// A probe for a watchdog that starts before the engine does (the daemon
/// reports READY, then waits for L1): healthy until the engine's probe is
/// set, then whatever it says.
#[derive(Debug, Clone, Default)]
pub struct LateProbe(Arc<OnceLock<HealthProbe>>);

impl LateProbe {
    /// From now on, ask `probe`.
    pub fn set(&self, probe: HealthProbe) {
        let _ = self.0.set(probe);
    }

    /// Whether the node is healthy now.
    pub fn healthy(&self) -> bool {
        self.0.get().is_none_or(HealthProbe::healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitor_stuck_in_a_step_is_not_alive_past_the_allowance() {
        let l = Liveness::default();
        let t0 = Instant::now();
        l.step_started();
        assert!(l.alive_at(t0 + Duration::from_secs(60)));
        assert!(!l.alive_at(t0 + Liveness::STEP_ALLOWANCE + Duration::from_secs(1)));
        // A loop that pauses between steps is alive through its pause.
        l.pausing(Duration::from_secs(30));
        let t1 = Instant::now();
        assert!(l.alive_at(t1 + Liveness::STEP_ALLOWANCE + Duration::from_secs(29)));
        assert!(!l.alive_at(t1 + Liveness::STEP_ALLOWANCE + Duration::from_secs(31)));
    }

    /// The node's watchdog asks the engine: a monitor whose step hangs
    /// makes it unhealthy, and so does a task of the engine that ended.
    #[tokio::test]
    async fn a_node_whose_monitor_is_stuck_stops_pinging_the_watchdog() {
        let liveness = Arc::new(Liveness::default());
        let running = Arc::new(AtomicUsize::new(0));
        let probe = HealthProbe {
            liveness: liveness.clone(),
            running: running.clone(),
            tasks: 2,
        };
        let late = LateProbe::default();
        assert!(late.healthy(), "healthy while the engine is not started");
        late.set(probe.clone());
        // A monitor loop whose step never returns (an L1 call without a
        // timeout, a deadlock).
        let live = liveness.clone();
        let guard = Running::new(&running);
        let stuck = tokio::spawn(async move {
            let _running = guard;
            live.step_started();
            std::future::pending::<()>().await;
        });
        let other = tokio::spawn({
            let guard = Running::new(&running);
            async move {
                let _running = guard;
                std::future::pending::<()>().await;
            }
        });
        tokio::task::yield_now().await;
        assert!(late.healthy(), "a step just begun");
        let later = Instant::now() + Liveness::STEP_ALLOWANCE + Duration::from_secs(1);
        assert!(
            !probe.healthy_at(later),
            "stuck past the allowance: no watchdog ping"
        );
        // A task that ended is unhealthy at once.
        other.abort();
        let _ = other.await;
        assert!(!probe.healthy(), "the prover task is gone");
        stuck.abort();
    }
}

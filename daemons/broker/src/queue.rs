//! The broker's engine: a durable job queue with leases, retries and
//! retention, as a plain state machine over a store transaction.
//!
//! Owns every rule of the broker (what enqueue, lease, report, cancel,
//! expire and clean-up mean). Knows nothing of threads, JSON-RPC or D-Bus:
//! `writer.rs` runs it, `rpc.rs` and `dbus.rs` adapt to it.
//!
//! Each operation reads and checks first, then writes to the store, and only
//! then changes memory, so a failed operation leaves nothing behind once its
//! (nested) transaction is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::Path;

use aztec_prover_protocol::aztec::AztecVersion;
use aztec_prover_protocol::{
    EnqueueRequest, Epoch, GetProvingJobResponse, JobId, JobType, ProofUri, ProvingJob,
    ProvingJobFilter, ProvingJobStatus, QueueStats, StateCounts, UriKind,
};
use aztec_prover_store::{Options, Reader, Store, StoreError, WriteTxn};

use crate::records::{self, JobRecord, JobState, Tables};

/// What went wrong with a broker operation. Nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// The job id is unknown.
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// The report names a lease that expired or was never granted.
    #[error("stale lease on job {id}: startedAt {started_at} is not the current lease ({current})")]
    StaleLease {
        /// The job.
        id: JobId,
        /// The stamp the caller quoted.
        started_at: u64,
        /// What the broker holds.
        current: String,
    },
    /// The job already settled.
    #[error("job {id} is already {state}")]
    AlreadySettled {
        /// The job.
        id: JobId,
        /// `fulfilled` or `rejected`.
        state: &'static str,
    },
    /// The request is inconsistent.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A payload over the limit.
    #[error(
        "payload of {size} bytes is over the limit of {limit} bytes (PROVER_BROKER_MAX_BODY_BYTES)"
    )]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A `blob:` URI the broker does not hold.
    #[error("blob {0} not found")]
    BlobNotFound(String),
    /// The store failed; nothing was committed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// A stored record that does not decode.
    #[error("damaged record in the store: {0}")]
    Corrupt(String),
    /// The broker is stopping.
    #[error("the broker is shutting down")]
    Unavailable,
}

/// Settings the engine obeys; changeable at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A lease with no heartbeat for this long expires.
    pub job_timeout_ms: u64,
    /// Attempts a job gets, Aztec's meaning of `maxRetries` (3: the first
    /// and two more): a failed attempt (an error with retry, an expired
    /// lease, a refused result) queues the job again until this many have
    /// failed; then it is rejected.
    pub max_retries: u32,
    /// Epochs older than the newest proven one minus this many are deleted.
    pub keep_epochs: u64,
    /// Epochs more than this far ahead of the newest enqueued one are
    /// refused (a client cannot make a far-future epoch the newest).
    pub max_epochs_ahead: u64,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: usize,
    /// Whose job type numbers the Aztec-compatible API speaks.
    pub aztec_version: AztecVersion,
}

impl Policy {
    /// The defaults: the one place they are written (settings, D-Bus and
    /// `etc/broker.toml` follow them; a test checks the file).
    pub const DEFAULT: Policy = Policy {
        job_timeout_ms: 30_000,
        max_retries: 3,
        keep_epochs: 1,
        max_epochs_ahead: 10_000,
        max_blob_bytes: 64 << 20,
        aztec_version: AztecVersion::DEFAULT,
    };

    /// Longest lease timeout accepted (one day).
    pub const MAX_JOB_TIMEOUT_MS: u64 = 86_400_000;

    /// Most attempts accepted.
    pub const MAX_RETRIES: u32 = 1000;

    /// Most epochs kept behind the newest, and most epochs ahead accepted.
    pub const MAX_EPOCH_SPAN: u64 = 1_000_000;

    /// Whether `n` epochs is a span (kept, or ahead) the broker takes.
    pub fn check_epoch_span(n: u64) -> Result<(), String> {
        if n > Self::MAX_EPOCH_SPAN {
            return Err(format!("must be at most {}, got {n}", Self::MAX_EPOCH_SPAN));
        }
        Ok(())
    }

    /// Whether `ms` is a lease timeout the broker takes.
    pub fn check_job_timeout_ms(ms: u64) -> Result<(), String> {
        if ms == 0 || ms > Self::MAX_JOB_TIMEOUT_MS {
            return Err(format!(
                "must be between 1 and {} ms, got {ms}",
                Self::MAX_JOB_TIMEOUT_MS
            ));
        }
        Ok(())
    }

    /// Whether `n` is a retry count the broker takes.
    pub fn check_max_retries(n: u32) -> Result<(), String> {
        if n == 0 || n > Self::MAX_RETRIES {
            return Err(format!(
                "must be between 1 and {} (attempts a job gets), got {n}",
                Self::MAX_RETRIES
            ));
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

/// What a job is: one of our job types, or one of Aztec's (its number in
/// the policy's [`AztecVersion`]). Jobs of the two families share the
/// store, the retention window and the writer, never a lease: an agent of
/// one API is only handed jobs of its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Ours.
    Ours(JobType),
    /// Aztec's, by number (below [`Kind::AZTEC_LIMIT`]).
    Aztec(u8),
}

/// Slots of the per-kind queued counts: one per kind byte.
const KIND_SLOTS: usize = 128;

impl Kind {
    /// The first kind byte of Aztec's types.
    const AZTEC_BASE: u8 = 64;
    /// Aztec type numbers must be below this.
    pub const AZTEC_LIMIT: u8 = 64;

    /// The byte that stands for the kind in store keys and records.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Ours(t) => t.id(),
            Kind::Aztec(n) => Kind::AZTEC_BASE + n,
        }
    }

    /// The kind a stored byte stands for.
    pub fn from_byte(b: u8) -> Option<Kind> {
        if b < Kind::AZTEC_BASE {
            JobType::from_id(b).map(Kind::Ours)
        } else if b < Kind::AZTEC_BASE + Kind::AZTEC_LIMIT {
            Some(Kind::Aztec(b - Kind::AZTEC_BASE))
        } else {
            None
        }
    }

    /// Whether the kind is one of Aztec's.
    pub fn is_aztec(self) -> bool {
        matches!(self, Kind::Aztec(_))
    }

    /// The type's name (Aztec's in `version`'s table).
    pub fn name(self, version: AztecVersion) -> &'static str {
        match self {
            Kind::Ours(t) => t.name(),
            Kind::Aztec(n) => version.type_name(n).unwrap_or("UNKNOWN_AZTEC_TYPE"),
        }
    }
}

/// Jobs settled since a producer last asked, one list per family.
#[derive(Debug, Default, Clone)]
struct Feed {
    items: Vec<JobId>,
    /// Taken from `items` since the last commit, in order (for roll-back).
    taken: Vec<JobId>,
}

/// A lease held in memory (deadlines are not persisted: after a restart every
/// leased job goes back to the queue).
#[derive(Debug, Clone)]
struct Lease {
    started_at: u64,
    deadline_ms: u64,
    agent: String,
}

/// Something an operation wants logged, with the structured fields attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A new job entered the queue.
    Enqueued { id: JobId, ty: &'static str },
    /// A job the broker already had was enqueued again.
    Cached { id: JobId, ty: &'static str },
    /// A job was leased.
    Leased {
        id: JobId,
        ty: &'static str,
        agent: String,
    },
    /// A job was proven.
    Fulfilled {
        id: JobId,
        ty: &'static str,
        agent: String,
    },
    /// A failed attempt went back to the queue.
    Retried {
        id: JobId,
        ty: &'static str,
        agent: String,
        failures: u32,
        reason: String,
    },
    /// A job failed for good.
    Rejected {
        id: JobId,
        ty: &'static str,
        agent: String,
        reason: String,
    },
    /// A lease expired.
    LeaseExpired {
        id: JobId,
        ty: &'static str,
        agent: String,
    },
    /// A job was cancelled.
    Cancelled { id: JobId, ty: &'static str },
    /// An epoch's jobs were deleted.
    EpochCleaned { epoch: Epoch, jobs: u64 },
}

/// The engine's in-memory state (everything else is in the store).
pub struct Queue {
    t: Tables,
    policy: Policy,
    leases: HashMap<JobId, Lease>,
    stats: BTreeMap<(Epoch, Kind), StateCounts>,
    dirty_stats: BTreeSet<(Epoch, Kind)>,
    queued_by_type: [u64; KIND_SLOTS],
    seq: u64,
    /// The newest epoch enqueued (bounds how far ahead an enqueue may be).
    newest_epoch: Option<Epoch>,
    /// The newest epoch with a proven job: the retention window follows it,
    /// so that an enqueue alone never deletes anything.
    proven_epoch: Option<Epoch>,
    last_stamp: u64,
    /// Settled jobs not yet reported: ours, then Aztec's.
    feeds: [Feed; 2],
    timeouts: u64,
    events: Vec<Event>,
    policy_changed: bool,
    /// Each lease change since the last commit, with the lease it replaced
    /// (for [`Queue::roll_back`]).
    lease_undo: Vec<(JobId, Option<Lease>)>,
}

/// Where the in-memory state stood before a request or a batch: a change
/// the store did not keep (a failed commit, a request that failed half-way)
/// is undone in memory by [`Queue::roll_back`], and nothing else moves.
pub(crate) struct Checkpoint {
    policy: Policy,
    stats: BTreeMap<(Epoch, Kind), StateCounts>,
    dirty_stats: BTreeSet<(Epoch, Kind)>,
    queued_by_type: [u64; KIND_SLOTS],
    seq: u64,
    newest_epoch: Option<Epoch>,
    proven_epoch: Option<Epoch>,
    last_stamp: u64,
    timeouts: u64,
    policy_changed: bool,
    events: usize,
    lease_undo: usize,
    feeds: [(usize, usize); 2],
}

/// Opens the broker's store in `dir`.
pub fn open_store(dir: &Path, map_size_bytes: usize) -> Result<(Store, Tables), BrokerError> {
    let (store, handles) = Store::open(
        dir,
        &records::TABLE_NAMES,
        &Options {
            map_size_bytes,
            max_readers: 1024,
        },
    )?;
    let t =
        Tables::from_handles(&handles).ok_or_else(|| BrokerError::Corrupt("table set".into()))?;
    Ok((store, t))
}

fn corrupt(what: impl std::fmt::Display) -> BrokerError {
    BrokerError::Corrupt(what.to_string())
}

fn kind_of(r: &JobRecord) -> Result<Kind, BrokerError> {
    Kind::from_byte(r.job_type).ok_or_else(|| corrupt(format!("job kind {}", r.job_type)))
}

/// A job id read from the store's keys or values.
fn stored_id(bytes: &[u8]) -> Result<JobId, BrokerError> {
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("job id is not UTF-8"))?;
    JobId::from_stored(text).map_err(corrupt)
}

/// Reads a job record.
pub fn read_record(
    r: &impl Reader,
    t: &Tables,
    id: &JobId,
) -> Result<Option<JobRecord>, BrokerError> {
    match r.get(t.jobs, id.as_str().as_bytes())? {
        None => Ok(None),
        Some(bytes) => JobRecord::decode(bytes)
            .map(Some)
            .ok_or_else(|| corrupt(format!("job {id}"))),
    }
}

/// The status of a job as clients see it.
pub fn status_of(r: &impl Reader, t: &Tables, id: &JobId) -> Result<ProvingJobStatus, BrokerError> {
    Ok(match read_record(r, t, id)? {
        None => ProvingJobStatus::NotFound,
        Some(rec) => status_of_record(&rec),
    })
}

fn status_of_record(rec: &JobRecord) -> ProvingJobStatus {
    match &rec.state {
        JobState::Queued => ProvingJobStatus::InQueue,
        JobState::InProgress { .. } => ProvingJobStatus::InProgress,
        JobState::Fulfilled { value, agent } => ProvingJobStatus::Fulfilled {
            value: ProofUri::from_text(value.clone()),
            agent: (!agent.is_empty()).then(|| agent.clone()),
        },
        JobState::Rejected { reason } => ProvingJobStatus::Rejected {
            reason: reason.clone(),
        },
    }
}

/// Reads a blob by URI.
pub fn read_blob(r: &impl Reader, t: &Tables, uri: &ProofUri) -> Result<Vec<u8>, BrokerError> {
    with_blob(r, t, uri, <[u8]>::to_vec)
}

/// Runs `f` on the bytes `uri` names (for a stored blob, the store's own
/// pages: nothing is copied unless `f` copies).
pub fn with_blob<T>(
    r: &impl Reader,
    t: &Tables,
    uri: &ProofUri,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T, BrokerError> {
    match uri.kind() {
        Ok(UriKind::Blob(digest)) => r
            .get(t.blobs, &digest)?
            .map(f)
            .ok_or_else(|| BrokerError::BlobNotFound(uri.as_str().to_string())),
        Ok(UriKind::Inline(bytes)) => Ok(f(&bytes)),
        Ok(UriKind::External) => Err(BrokerError::InvalidJob(format!(
            "{uri} is not stored by this broker; fetch it from its own store"
        ))),
        Err(e) => Err(BrokerError::InvalidJob(e.to_string())),
    }
}

impl Queue {
    /// Loads the engine's memory from the store: counters, sequence, and every
    /// job that was leased when the broker stopped, which goes back to the queue.
    pub fn recover(
        store: &Store,
        t: Tables,
        policy: Policy,
    ) -> Result<(Queue, usize), BrokerError> {
        let mut q = Queue {
            t,
            policy,
            leases: HashMap::new(),
            stats: BTreeMap::new(),
            dirty_stats: BTreeSet::new(),
            queued_by_type: [0; KIND_SLOTS],
            seq: 0,
            newest_epoch: None,
            proven_epoch: None,
            last_stamp: 0,
            feeds: Default::default(),
            timeouts: 0,
            events: Vec::new(),
            policy_changed: false,
            lease_undo: Vec::new(),
        };
        let mut txn = store.write()?;
        match txn.get(t.meta, b"schema")?.map(records::decode_u32) {
            None => txn.put(t.meta, b"schema", &records::SCHEMA_VERSION.to_le_bytes())?,
            Some(Some(records::SCHEMA_VERSION)) => {}
            Some(v) => {
                return Err(corrupt(format!(
                    "store schema {v:?}, this broker reads {}",
                    records::SCHEMA_VERSION
                )));
            }
        }
        q.seq = txn
            .get(t.meta, b"seq")?
            .and_then(records::decode_u64)
            .unwrap_or(0);
        q.newest_epoch = txn
            .get(t.meta, b"newest_epoch")?
            .and_then(records::decode_u64);
        q.proven_epoch = txn
            .get(t.meta, b"proven_epoch")?
            .and_then(records::decode_u64);
        let mut bad = None;
        txn.scan_from(t.stats, b"", &mut |k, v| {
            let key = records::parse_stats_key(k).and_then(|(e, b)| Some((e, Kind::from_byte(b)?)));
            match (key, records::decode_counts(v)) {
                (Some(key), Some(c)) => {
                    q.stats.insert(key, c);
                }
                _ => bad = Some("stats row"),
            }
            ControlFlow::Continue(())
        })?;
        if let Some(what) = bad {
            return Err(corrupt(what));
        }
        let mut leased = Vec::new();
        txn.scan_from(t.leased, b"", &mut |k, _| {
            leased.push(k.to_vec());
            ControlFlow::Continue(())
        })?;
        for key in &leased {
            let id = stored_id(key)?;
            let Some(mut rec) = read_record(&txn, &t, &id)? else {
                txn.del(t.leased, key)?;
                continue;
            };
            let ty = kind_of(&rec)?;
            rec.state = JobState::Queued;
            txn.put(t.jobs, key, &rec.encode())?;
            txn.put(
                t.queue,
                &records::queue_key(ty.byte(), rec.epoch, rec.seq),
                key,
            )?;
            txn.del(t.leased, key)?;
            let c = q.stats.entry((rec.epoch, ty)).or_default();
            c.in_progress = c.in_progress.saturating_sub(1);
            c.queued += 1;
            q.dirty_stats.insert((rec.epoch, ty));
        }
        q.check_aztec_version(&txn)?;
        q.flush_stats(&mut txn)?;
        txn.commit()?;
        q.recount_queued();
        Ok((q, leased.len()))
    }

    /// Marks where the in-memory state stands now.
    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            policy: self.policy.clone(),
            stats: self.stats.clone(),
            dirty_stats: self.dirty_stats.clone(),
            queued_by_type: self.queued_by_type,
            seq: self.seq,
            newest_epoch: self.newest_epoch,
            proven_epoch: self.proven_epoch,
            last_stamp: self.last_stamp,
            timeouts: self.timeouts,
            policy_changed: self.policy_changed,
            events: self.events.len(),
            lease_undo: self.lease_undo.len(),
            feeds: [
                (self.feeds[0].items.len(), self.feeds[0].taken.len()),
                (self.feeds[1].items.len(), self.feeds[1].taken.len()),
            ],
        }
    }

    /// Puts the in-memory state back where `c` marked it, for a store
    /// transaction that was not kept. Leases granted before `c` stay as
    /// they were.
    pub(crate) fn roll_back(&mut self, c: Checkpoint) {
        for (id, old) in self.lease_undo.drain(c.lease_undo..).rev() {
            match old {
                Some(lease) => self.leases.insert(id, lease),
                None => self.leases.remove(&id),
            };
        }
        // What was taken since `c`, then what is left, is the feed at `c`
        // followed by what was added since.
        for (f, (len, taken)) in self.feeds.iter_mut().zip(c.feeds) {
            let mut items = f.taken.split_off(taken);
            items.append(&mut f.items);
            items.truncate(len);
            f.items = items;
        }
        self.events.truncate(c.events);
        self.policy = c.policy;
        self.stats = c.stats;
        self.dirty_stats = c.dirty_stats;
        self.queued_by_type = c.queued_by_type;
        self.seq = c.seq;
        self.newest_epoch = c.newest_epoch;
        self.proven_epoch = c.proven_epoch;
        self.last_stamp = c.last_stamp;
        self.timeouts = c.timeouts;
        self.policy_changed = c.policy_changed;
    }

    /// The store kept everything: nothing before now can be rolled back.
    pub(crate) fn settle(&mut self) {
        self.lease_undo.clear();
        for f in &mut self.feeds {
            f.taken.clear();
        }
    }

    fn set_lease(&mut self, id: &JobId, lease: Lease) {
        let old = self.leases.insert(id.clone(), lease);
        self.lease_undo.push((id.clone(), old));
    }

    fn drop_lease(&mut self, id: &JobId) -> Option<Lease> {
        let old = self.leases.remove(id);
        if old.is_some() {
            self.lease_undo.push((id.clone(), old.clone()));
        }
        old
    }

    fn recount_queued(&mut self) {
        self.queued_by_type = [0; KIND_SLOTS];
        for ((_, k), c) in &self.stats {
            self.queued_by_type[usize::from(k.byte())] += c.queued;
        }
    }

    /// The current policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy (lease deadlines already granted keep their old timeout).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        self.policy_changed = true;
    }

    /// Events since the last call, for logging.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A fresh lease stamp: milliseconds since the Unix epoch, strictly increasing.
    fn stamp(&mut self, now_ms: u64) -> u64 {
        self.last_stamp = now_ms.max(self.last_stamp + 1);
        self.last_stamp
    }

    fn bump(&mut self, epoch: Epoch, t: Kind, f: impl FnOnce(&mut StateCounts)) {
        f(self.stats.entry((epoch, t)).or_default());
        self.dirty_stats.insert((epoch, t));
    }

    /// Writes changed counters; call once per batch, before commit.
    /// Returns whether any changed.
    pub fn flush_stats(&mut self, txn: &mut WriteTxn<'_>) -> Result<bool, BrokerError> {
        let changed = !self.dirty_stats.is_empty() || std::mem::take(&mut self.policy_changed);
        for key in std::mem::take(&mut self.dirty_stats) {
            let sk = records::stats_key(key.0, key.1.byte());
            match self.stats.get(&key) {
                Some(c) if *c != StateCounts::default() => {
                    txn.put(self.t.stats, &sk, &records::encode_counts(c))?
                }
                _ => {
                    self.stats.remove(&key);
                    txn.del(self.t.stats, &sk)?;
                }
            }
        }
        Ok(changed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> QueueStats {
        let mut epochs: BTreeMap<Epoch, BTreeMap<JobType, StateCounts>> = BTreeMap::new();
        let mut aztec: BTreeMap<Epoch, BTreeMap<String, StateCounts>> = BTreeMap::new();
        for ((e, k), c) in &self.stats {
            match k {
                Kind::Ours(t) => {
                    epochs.entry(*e).or_default().insert(*t, *c);
                }
                Kind::Aztec(_) => {
                    aztec
                        .entry(*e)
                        .or_default()
                        .insert(k.name(self.policy.aztec_version).to_string(), *c);
                }
            }
        }
        QueueStats {
            aztec,
            epochs,
            timeouts: self.timeouts,
            job_timeout_ms: self.policy.job_timeout_ms,
            max_retries: self.policy.max_retries,
        }
    }

    /// Stores `data` as a blob (or adds a reference to the same blob).
    fn put_blob(&self, txn: &mut WriteTxn<'_>, data: &[u8]) -> Result<[u8; 32], BrokerError> {
        if data.len() > self.policy.max_blob_bytes {
            return Err(BrokerError::TooLarge {
                size: data.len(),
                limit: self.policy.max_blob_bytes,
            });
        }
        let digest = aztec_prover_protocol::job::sha256(data);
        let refs = txn
            .get(self.t.blob_refs, &digest)?
            .and_then(records::decode_u32)
            .unwrap_or(0);
        if refs == 0 {
            txn.put(self.t.blobs, &digest, data)?;
        }
        txn.put(self.t.blob_refs, &digest, &(refs + 1).to_le_bytes())?;
        Ok(digest)
    }

    fn add_blob_ref(&self, txn: &mut WriteTxn<'_>, digest: &[u8; 32]) -> Result<(), BrokerError> {
        let refs = txn
            .get(self.t.blob_refs, digest)?
            .and_then(records::decode_u32)
            .unwrap_or(0);
        txn.put(self.t.blob_refs, digest, &(refs + 1).to_le_bytes())?;
        Ok(())
    }

    fn drop_blob_ref(&self, txn: &mut WriteTxn<'_>, digest: &[u8; 32]) -> Result<(), BrokerError> {
        let refs = txn
            .get(self.t.blob_refs, digest)?
            .and_then(records::decode_u32)
            .unwrap_or(0);
        if refs <= 1 {
            txn.del(self.t.blob_refs, digest)?;
            txn.del(self.t.blobs, digest)?;
        } else {
            txn.put(self.t.blob_refs, digest, &(refs - 1).to_le_bytes())?;
        }
        Ok(())
    }

    /// Enqueues a job; a job that exists is left alone and its status returned.
    pub fn enqueue(
        &mut self,
        txn: &mut WriteTxn<'_>,
        req: &EnqueueRequest,
    ) -> Result<ProvingJobStatus, BrokerError> {
        let kind = req
            .inputs_uri
            .kind()
            .map_err(|e| BrokerError::InvalidJob(e.to_string()))?;
        let digest = match &kind {
            UriKind::Inline(bytes) => aztec_prover_protocol::job::sha256(bytes),
            UriKind::Blob(d) => *d,
            UriKind::External => {
                aztec_prover_protocol::job::sha256(req.inputs_uri.as_str().as_bytes())
            }
        };
        let id = JobId::new(req.epoch_number, req.job_type, &digest);
        if let Some(given) = &req.id
            && *given != id
        {
            return Err(BrokerError::InvalidJob(format!(
                "id {given} does not match its type, epoch and inputs (expected {id})"
            )));
        }
        if let Some(rec) = read_record(txn, &self.t, &id)? {
            self.events.push(Event::Cached {
                id,
                ty: req.job_type.name(),
            });
            return Ok(status_of_record(&rec));
        }
        self.check_epoch(req.epoch_number)?;
        let (inputs_uri, inputs_blob) = match kind {
            UriKind::Inline(bytes) => {
                let d = self.put_blob(txn, &bytes)?;
                (ProofUri::blob(&d).as_str().to_string(), Some(d))
            }
            UriKind::Blob(d) => {
                if txn.get(self.t.blobs, &d)?.is_none() {
                    return Err(BrokerError::BlobNotFound(
                        req.inputs_uri.as_str().to_string(),
                    ));
                }
                self.add_blob_ref(txn, &d)?;
                (req.inputs_uri.as_str().to_string(), Some(d))
            }
            UriKind::External => (req.inputs_uri.as_str().to_string(), None),
        };
        self.insert_queued(
            txn,
            id,
            Kind::Ours(req.job_type),
            req.epoch_number,
            inputs_uri,
            inputs_blob,
        )?;
        Ok(ProvingJobStatus::InQueue)
    }

    /// Refuses an epoch outside the retention window or too far ahead.
    fn check_epoch(&self, epoch: Epoch) -> Result<(), BrokerError> {
        if let Some(proven) = self.proven_epoch
            && epoch.saturating_add(self.policy.keep_epochs) < proven
        {
            return Err(BrokerError::InvalidJob(format!(
                "epoch {epoch} is outside the retention window (newest proven epoch {proven}, keeping {} older)",
                self.policy.keep_epochs
            )));
        }
        if let Some(newest) = self.newest_epoch
            && epoch > newest.saturating_add(self.policy.max_epochs_ahead)
        {
            return Err(BrokerError::InvalidJob(format!(
                "epoch {epoch} is more than {} epochs ahead of the newest epoch {newest}",
                self.policy.max_epochs_ahead
            )));
        }
        Ok(())
    }

    /// Stores a new job, queued at the back of its kind and epoch.
    fn insert_queued(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: JobId,
        kind: Kind,
        epoch: Epoch,
        inputs_uri: String,
        inputs_blob: Option<[u8; 32]>,
    ) -> Result<(), BrokerError> {
        let seq = self.seq;
        let rec = JobRecord {
            job_type: kind.byte(),
            epoch,
            inputs_uri,
            inputs_blob,
            result_blob: None,
            seq,
            failures: 0,
            state: JobState::Queued,
        };
        let key = id.as_str().as_bytes();
        txn.put(self.t.jobs, key, &rec.encode())?;
        txn.put(
            self.t.queue,
            &records::queue_key(kind.byte(), epoch, seq),
            key,
        )?;
        txn.put(self.t.epochs, &records::epoch_key(epoch, id.as_str()), b"")?;
        txn.put(self.t.meta, b"seq", &(seq + 1).to_le_bytes())?;
        let newer = self.newest_epoch.is_none_or(|n| epoch > n);
        if newer {
            txn.put(self.t.meta, b"newest_epoch", &epoch.to_le_bytes())?;
        }
        // memory
        self.seq = seq + 1;
        if newer {
            self.newest_epoch = Some(epoch);
        }
        self.bump(epoch, kind, |c| c.queued += 1);
        self.queued_by_type[usize::from(kind.byte())] += 1;
        self.events.push(Event::Enqueued {
            id,
            ty: kind.name(self.policy.aztec_version),
        });
        Ok(())
    }

    /// Whether any job the filter admits is queued (answerable without the store).
    pub fn has_work_for(&self, filter: &ProvingJobFilter) -> bool {
        JobType::ALL
            .iter()
            .any(|t| filter.allows(*t) && self.queued(Kind::Ours(*t)) > 0)
    }

    /// Jobs of `kind` queued now.
    fn queued(&self, kind: Kind) -> u64 {
        self.queued_by_type[usize::from(kind.byte())]
    }

    /// Leases the best job the filter admits: oldest epoch, then types nearer
    /// the epoch root, then first come.
    pub fn lease(
        &mut self,
        txn: &mut WriteTxn<'_>,
        filter: &ProvingJobFilter,
        agent: &str,
        now_ms: u64,
    ) -> Result<Option<GetProvingJobResponse>, BrokerError> {
        if !self.has_work_for(filter) {
            return Ok(None);
        }
        let kinds = JobType::ALL
            .into_iter()
            .filter(|t| filter.allows(*t))
            .map(Kind::Ours);
        let rank = |k: Kind, epoch: Epoch, seq: u64| match k {
            Kind::Ours(t) => (epoch, u64::from(t.priority()), seq),
            Kind::Aztec(_) => (u64::MAX, u64::MAX, seq),
        };
        let Some((id, rec, started_at)) = self.take_best(txn, kinds, rank, agent, now_ms)? else {
            return Ok(None);
        };
        let Kind::Ours(job_type) = kind_of(&rec)? else {
            return Err(corrupt(format!("job {id} in our queue is Aztec's")));
        };
        Ok(Some(GetProvingJobResponse {
            job: ProvingJob {
                id,
                job_type,
                epoch_number: rec.epoch,
                inputs_uri: ProofUri::from_text(rec.inputs_uri),
            },
            time: started_at,
        }))
    }

    /// Leases the queued job of `kinds` that `rank` puts first (the head of
    /// each kind's queue is its oldest epoch, first come); returns it and
    /// its lease stamp.
    fn take_best(
        &mut self,
        txn: &mut WriteTxn<'_>,
        kinds: impl Iterator<Item = Kind>,
        rank: impl Fn(Kind, Epoch, u64) -> (u64, u64, u64),
        agent: &str,
        now_ms: u64,
    ) -> Result<Option<(JobId, JobRecord, u64)>, BrokerError> {
        // The best queued job so far: its rank, its store key and its id.
        type Best = ((u64, u64, u64), Vec<u8>, Vec<u8>);
        let mut best: Option<Best> = None;
        for k in kinds {
            if self.queued(k) == 0 {
                continue;
            }
            if let Some((key, v)) = txn.first_with_prefix(self.t.queue, &[k.byte()])? {
                let epoch = records::queue_key_epoch(&key).ok_or_else(|| corrupt("queue key"))?;
                let seq = records::queue_key_seq(&key).ok_or_else(|| corrupt("queue key"))?;
                let r = rank(k, epoch, seq);
                if best.as_ref().is_none_or(|(b, _, _)| r < *b) {
                    best = Some((r, key, v));
                }
            }
        }
        let Some((_, _, idbytes)) = best else {
            return Ok(None);
        };
        let id = stored_id(&idbytes)?;
        let mut rec = read_record(txn, &self.t, &id)?
            .ok_or_else(|| corrupt(format!("queued job {id} has no record")))?;
        let started_at = self.stamp(now_ms);
        let ty = self.lease_queued(txn, &id, &mut rec, agent, started_at, now_ms)?;
        self.events.push(Event::Leased {
            id: id.clone(),
            ty: ty.name(self.policy.aztec_version),
            agent: agent.to_string(),
        });
        Ok(Some((id, rec, started_at)))
    }

    /// Takes queued job `id` (record `rec`) out of its queue under a lease
    /// of `agent` stamped `started_at`, in the store and in memory; returns
    /// its kind.
    fn lease_queued(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        rec: &mut JobRecord,
        agent: &str,
        started_at: u64,
        now_ms: u64,
    ) -> Result<Kind, BrokerError> {
        let ty = kind_of(rec)?;
        rec.state = JobState::InProgress {
            started_at,
            agent: agent.to_string(),
        };
        let key = id.as_str().as_bytes();
        txn.put(self.t.jobs, key, &rec.encode())?;
        txn.del(
            self.t.queue,
            &records::queue_key(ty.byte(), rec.epoch, rec.seq),
        )?;
        txn.put(self.t.leased, key, b"")?;
        // memory
        self.set_lease(
            id,
            Lease {
                started_at,
                deadline_ms: now_ms + self.policy.job_timeout_ms,
                agent: agent.to_string(),
            },
        );
        self.bump(rec.epoch, ty, |c| {
            c.queued = c.queued.saturating_sub(1);
            c.in_progress += 1;
        });
        self.queued_by_type[usize::from(ty.byte())] = self.queued(ty).saturating_sub(1);
        Ok(ty)
    }

    /// Checks that `started_at` is the live lease of `id`; returns the record.
    fn check_lease(
        &self,
        txn: &WriteTxn<'_>,
        id: &JobId,
        started_at: u64,
    ) -> Result<JobRecord, BrokerError> {
        let rec =
            read_record(txn, &self.t, id)?.ok_or_else(|| BrokerError::JobNotFound(id.clone()))?;
        match &rec.state {
            JobState::Fulfilled { .. } => Err(BrokerError::AlreadySettled {
                id: id.clone(),
                state: "fulfilled",
            }),
            JobState::Rejected { .. } => Err(BrokerError::AlreadySettled {
                id: id.clone(),
                state: "rejected",
            }),
            JobState::Queued => Err(BrokerError::StaleLease {
                id: id.clone(),
                started_at,
                current: "none: the job is back in the queue".into(),
            }),
            JobState::InProgress {
                started_at: current,
                ..
            } if *current != started_at => Err(BrokerError::StaleLease {
                id: id.clone(),
                started_at,
                current: format!("startedAt {current}"),
            }),
            JobState::InProgress { .. } => Ok(rec),
        }
    }

    /// Records a proof; the result is stored as a blob when given inline.
    pub fn report_success(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        started_at: u64,
        result: &ProofUri,
    ) -> Result<String, BrokerError> {
        let rec = self.check_lease(txn, id, started_at)?;
        // A result is kept only in a form every producer can read back: data
        // the broker stores, not a reference it cannot check.
        let (value, blob) = match result
            .kind()
            .map_err(|e| BrokerError::InvalidJob(e.to_string()))?
        {
            UriKind::Inline(bytes) if bytes.is_empty() => {
                return Err(BrokerError::InvalidJob("an empty result".into()));
            }
            UriKind::Inline(bytes) => {
                let d = self.put_blob(txn, &bytes)?;
                (ProofUri::blob(&d).as_str().to_string(), Some(d))
            }
            UriKind::Blob(d) => {
                if txn.get(self.t.blobs, &d)?.is_none() {
                    return Err(BrokerError::BlobNotFound(result.as_str().to_string()));
                }
                self.add_blob_ref(txn, &d)?;
                (result.as_str().to_string(), Some(d))
            }
            UriKind::External => {
                return Err(BrokerError::InvalidJob(format!(
                    "result {}: only inline data or a stored blob is accepted, not an outside reference",
                    result.as_str().chars().take(80).collect::<String>()
                )));
            }
        };
        self.fulfil(txn, id, rec, value, blob)
    }

    /// Settles a job that is in progress as proven with `value` (its blob
    /// already counted): the retention window follows, and the job goes to
    /// its family's feed. Returns the agent that proved it.
    fn fulfil(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        mut rec: JobRecord,
        value: String,
        blob: Option<[u8; 32]>,
    ) -> Result<String, BrokerError> {
        let ty = kind_of(&rec)?;
        let agent = match &rec.state {
            JobState::InProgress { agent, .. } => agent.clone(),
            _ => String::new(),
        };
        rec.state = JobState::Fulfilled {
            value,
            agent: agent.clone(),
        };
        rec.result_blob = blob;
        let key = id.as_str().as_bytes();
        txn.put(self.t.jobs, key, &rec.encode())?;
        txn.del(self.t.leased, key)?;
        // A proven job moves the retention window (never past the newest
        // epoch enqueued, which is itself bounded).
        let moves = self.proven_epoch.is_none_or(|p| rec.epoch > p);
        if moves {
            txn.put(self.t.meta, b"proven_epoch", &rec.epoch.to_le_bytes())?;
        }
        // memory
        if moves {
            self.proven_epoch = Some(rec.epoch);
        }
        let agent = self.drop_lease(id).map(|l| l.agent).unwrap_or(agent);
        self.bump(rec.epoch, ty, |c| {
            c.in_progress = c.in_progress.saturating_sub(1);
            c.fulfilled += 1;
        });
        self.feed(ty).items.push(id.clone());
        self.events.push(Event::Fulfilled {
            id: id.clone(),
            ty: ty.name(self.policy.aztec_version),
            agent: agent.clone(),
        });
        Ok(agent)
    }

    /// The feed of settled jobs of `kind`'s family.
    fn feed(&mut self, kind: Kind) -> &mut Feed {
        &mut self.feeds[usize::from(kind.is_aztec())]
    }

    /// Records a failed attempt: re-queued while retries remain and `retry`
    /// is set, otherwise rejected with `reason`.
    pub fn report_error(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        started_at: u64,
        reason: &str,
        retry: bool,
    ) -> Result<String, BrokerError> {
        let rec = self.check_lease(txn, id, started_at)?;
        let agent = self
            .leases
            .get(id)
            .map(|l| l.agent.clone())
            .unwrap_or_default();
        self.fail_attempt(txn, id, rec, reason, retry, agent.clone())?;
        Ok(agent)
    }

    fn fail_attempt(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        mut rec: JobRecord,
        reason: &str,
        retry: bool,
        agent: String,
    ) -> Result<(), BrokerError> {
        let ty = kind_of(&rec)?;
        let name = ty.name(self.policy.aztec_version);
        let key = id.as_str().as_bytes();
        // This attempt is attempt `failures + 1`; the job has `max_retries`.
        let requeue = retry && rec.failures + 1 < self.policy.max_retries;
        rec.failures += 1;
        if requeue {
            rec.state = JobState::Queued;
            txn.put(
                self.t.queue,
                &records::queue_key(ty.byte(), rec.epoch, rec.seq),
                key,
            )?;
        } else {
            rec.state = JobState::Rejected {
                reason: reason.to_string(),
            };
        }
        txn.put(self.t.jobs, key, &rec.encode())?;
        txn.del(self.t.leased, key)?;
        // memory
        self.drop_lease(id);
        if requeue {
            self.bump(rec.epoch, ty, |c| {
                c.in_progress = c.in_progress.saturating_sub(1);
                c.queued += 1;
            });
            self.queued_by_type[usize::from(ty.byte())] += 1;
            self.events.push(Event::Retried {
                id: id.clone(),
                ty: name,
                agent,
                failures: rec.failures,
                reason: reason.to_string(),
            });
        } else {
            self.bump(rec.epoch, ty, |c| {
                c.in_progress = c.in_progress.saturating_sub(1);
                c.rejected += 1;
            });
            self.feed(ty).items.push(id.clone());
            self.events.push(Event::Rejected {
                id: id.clone(),
                ty: name,
                agent,
                reason: reason.to_string(),
            });
        }
        Ok(())
    }

    /// Extends a lease. Memory only: deadlines are not persisted.
    pub fn heartbeat(
        &mut self,
        txn: &WriteTxn<'_>,
        id: &JobId,
        started_at: u64,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let timeout = self.policy.job_timeout_ms;
        if let Some(l) = self.leases.get(id)
            && l.started_at == started_at
        {
            let renewed = Lease {
                deadline_ms: now_ms + timeout,
                ..l.clone()
            };
            self.set_lease(id, renewed);
            return Ok(());
        }
        // Not a live lease: say precisely why.
        self.check_lease(txn, id, started_at)?;
        Err(BrokerError::StaleLease {
            id: id.clone(),
            started_at,
            current: "expired".into(),
        })
    }

    /// Drops a fulfilled job's result `value`, which failed the producer's
    /// checks, and queues the job again in its old place (a failed attempt:
    /// past the retry limit it is rejected). Nothing happens when the job's
    /// result is no longer `value`.
    pub fn refuse_result(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        value: &ProofUri,
        reason: &str,
    ) -> Result<ProvingJobStatus, BrokerError> {
        let mut rec =
            read_record(txn, &self.t, id)?.ok_or_else(|| BrokerError::JobNotFound(id.clone()))?;
        let agent = match &rec.state {
            JobState::Fulfilled { value: v, agent } if v == value.as_str() => agent.clone(),
            _ => return Ok(status_of_record(&rec)),
        };
        let ty = kind_of(&rec)?;
        if let Some(d) = rec.result_blob.take() {
            self.drop_blob_ref(txn, &d)?;
        }
        let reason = format!("result refused by the producer: {reason}");
        // Counted as in progress for a moment, so that the attempt is booked
        // the way a failed proving attempt is.
        rec.state = JobState::InProgress {
            started_at: 0,
            agent: agent.clone(),
        };
        self.bump(rec.epoch, ty, |c| {
            c.fulfilled = c.fulfilled.saturating_sub(1);
            c.in_progress += 1;
        });
        self.fail_attempt(txn, id, rec, &reason, true, agent)?;
        status_of(txn, &self.t, id)
    }

    /// Cancels a job that has not settled (settled jobs are left as they are).
    pub fn cancel(&mut self, txn: &mut WriteTxn<'_>, id: &JobId) -> Result<(), BrokerError> {
        let rec =
            read_record(txn, &self.t, id)?.ok_or_else(|| BrokerError::JobNotFound(id.clone()))?;
        self.cancel_record(txn, id, rec, "cancelled")
    }

    /// Rejects `rec` with `reason` unless it has settled.
    fn cancel_record(
        &mut self,
        txn: &mut WriteTxn<'_>,
        id: &JobId,
        mut rec: JobRecord,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let ty = kind_of(&rec)?;
        let key = id.as_str().as_bytes();
        let was_queued = match rec.state {
            JobState::Queued => true,
            JobState::InProgress { .. } => false,
            JobState::Fulfilled { .. } | JobState::Rejected { .. } => return Ok(()),
        };
        if was_queued {
            txn.del(
                self.t.queue,
                &records::queue_key(ty.byte(), rec.epoch, rec.seq),
            )?;
        } else {
            txn.del(self.t.leased, key)?;
        }
        rec.state = JobState::Rejected {
            reason: reason.into(),
        };
        txn.put(self.t.jobs, key, &rec.encode())?;
        // memory
        self.drop_lease(id);
        self.bump(rec.epoch, ty, |c| {
            if was_queued {
                c.queued = c.queued.saturating_sub(1);
            } else {
                c.in_progress = c.in_progress.saturating_sub(1);
            }
            c.rejected += 1;
        });
        if was_queued {
            self.queued_by_type[usize::from(ty.byte())] = self.queued(ty).saturating_sub(1);
        }
        self.feed(ty).items.push(id.clone());
        self.events.push(Event::Cancelled {
            id: id.clone(),
            ty: ty.name(self.policy.aztec_version),
        });
        Ok(())
    }

    /// Cancels every unsettled job of `epoch`; returns how many.
    pub fn cancel_epoch(
        &mut self,
        txn: &mut WriteTxn<'_>,
        epoch: Epoch,
    ) -> Result<u64, BrokerError> {
        let ids = self.epoch_job_ids(txn, epoch, usize::MAX)?;
        let mut n = 0;
        for id in ids {
            let settled = read_record(txn, &self.t, &id)?.is_none_or(|r| {
                matches!(
                    r.state,
                    JobState::Fulfilled { .. } | JobState::Rejected { .. }
                )
            });
            if !settled {
                self.cancel(txn, &id)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn epoch_job_ids(
        &self,
        r: &impl Reader,
        epoch: Epoch,
        limit: usize,
    ) -> Result<Vec<JobId>, BrokerError> {
        let mut ids = Vec::new();
        let mut bad = false;
        r.scan_prefix(self.t.epochs, &epoch.to_be_bytes(), &mut |k, _| {
            match k.get(8..).map(stored_id) {
                Some(Ok(id)) => ids.push(id),
                _ => bad = true,
            }
            if ids.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if bad {
            return Err(corrupt("epoch index"));
        }
        Ok(ids)
    }

    /// Job ids settled since the last call, plus those of `ids` that are settled.
    pub fn completed(&mut self, r: &impl Reader, ids: &[JobId]) -> Result<Vec<JobId>, BrokerError> {
        let mut out = BTreeSet::new();
        for id in ids {
            if let Some(rec) = read_record(r, &self.t, id)?
                && matches!(
                    rec.state,
                    JobState::Fulfilled { .. } | JobState::Rejected { .. }
                )
            {
                out.insert(id.clone());
            }
        }
        let feed = &mut self.feeds[0];
        let items = std::mem::take(&mut feed.items);
        out.extend(items.iter().cloned());
        feed.taken.extend(items);
        Ok(out.into_iter().collect())
    }

    /// The earliest lease deadline, if any lease is held.
    pub fn next_deadline(&self) -> Option<u64> {
        self.leases.values().map(|l| l.deadline_ms).min()
    }

    /// Returns expired leases to the queue (or rejects jobs out of retries).
    /// Returns whether anything changed.
    pub fn expire_leases(
        &mut self,
        txn: &mut WriteTxn<'_>,
        now_ms: u64,
    ) -> Result<bool, BrokerError> {
        let expired: Vec<(JobId, String)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline_ms <= now_ms)
            .map(|(id, l)| (id.clone(), l.agent.clone()))
            .collect();
        for (id, agent) in &expired {
            let Some(rec) = read_record(txn, &self.t, id)? else {
                self.drop_lease(id);
                continue;
            };
            let reason = format!(
                "lease expired: no heartbeat from {agent} for {} ms",
                self.policy.job_timeout_ms
            );
            let ty = kind_of(&rec)?.name(self.policy.aztec_version);
            let mut nested = txn.nested()?;
            self.fail_attempt(&mut nested, id, rec, &reason, true, agent.clone())?;
            nested.commit()?;
            self.timeouts += 1;
            self.events.push(Event::LeaseExpired {
                id: id.clone(),
                ty,
                agent: agent.clone(),
            });
        }
        Ok(!expired.is_empty())
    }

    /// Deletes up to `budget` jobs of epochs older than the retention window.
    /// Returns how many jobs were deleted.
    pub fn clean_old_epochs(
        &mut self,
        txn: &mut WriteTxn<'_>,
        budget: usize,
    ) -> Result<u64, BrokerError> {
        let Some(newest) = self.proven_epoch else {
            return Ok(0);
        };
        let Some(cutoff) = newest.checked_sub(self.policy.keep_epochs) else {
            return Ok(0);
        };
        let old_epochs: Vec<Epoch> = self
            .stats
            .keys()
            .map(|(e, _)| *e)
            .filter(|e| *e < cutoff)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut deleted = 0u64;
        for epoch in old_epochs {
            let left = budget.saturating_sub(deleted as usize);
            if left == 0 {
                break;
            }
            let ids = self.epoch_job_ids(txn, epoch, left)?;
            for id in &ids {
                self.delete_job(txn, id)?;
                deleted += 1;
            }
            if self.epoch_job_ids(txn, epoch, 1)?.is_empty() {
                self.events.push(Event::EpochCleaned {
                    epoch,
                    jobs: ids.len() as u64,
                });
            }
        }
        Ok(deleted)
    }

    fn delete_job(&mut self, txn: &mut WriteTxn<'_>, id: &JobId) -> Result<(), BrokerError> {
        let key = id.as_str().as_bytes();
        let Some(rec) = read_record(txn, &self.t, id)? else {
            return Ok(());
        };
        let ty = kind_of(&rec)?;
        match rec.state {
            JobState::Queued => {
                txn.del(
                    self.t.queue,
                    &records::queue_key(ty.byte(), rec.epoch, rec.seq),
                )?;
            }
            JobState::InProgress { .. } => {
                txn.del(self.t.leased, key)?;
            }
            _ => {}
        }
        if let Some(d) = rec.inputs_blob {
            self.drop_blob_ref(txn, &d)?;
        }
        if let Some(d) = rec.result_blob {
            self.drop_blob_ref(txn, &d)?;
        }
        txn.del(self.t.jobs, key)?;
        txn.del(self.t.epochs, &records::epoch_key(rec.epoch, id.as_str()))?;
        // memory
        if matches!(rec.state, JobState::Queued) {
            self.queued_by_type[usize::from(ty.byte())] = self.queued(ty).saturating_sub(1);
        }
        self.drop_lease(id);
        self.bump(rec.epoch, ty, |c| match rec.state {
            JobState::Queued => c.queued = c.queued.saturating_sub(1),
            JobState::InProgress { .. } => c.in_progress = c.in_progress.saturating_sub(1),
            JobState::Fulfilled { .. } => c.fulfilled = c.fulfilled.saturating_sub(1),
            JobState::Rejected { .. } => c.rejected = c.rejected.saturating_sub(1),
        });
        Ok(())
    }

    /// Leases held now.
    pub fn lease_count(&self) -> usize {
        self.leases.len()
    }
}

mod aztec;
pub use aztec::aztec_status;

#[cfg(test)]
mod tests;

//! The engine's rules for the jobs of Aztec's prover node and agents (the
//! Aztec-compatible API): the same store, leases, retries, retention and
//! group commit as ours, with Aztec's answers where its clients depend on
//! them. `daemons/protocol/aztec-api.md` lists each rule and why.
//!
//! Ids and URIs are the producer's text. A job's key is its id after
//! `aztec/` ([`JobId::foreign`]); a `data:` URI (Aztec's inline proof
//! store) is kept whole as a blob and its record holds an empty text, so
//! it is rebuilt byte for byte when read and never held in memory.

use aztec_prover_protocol::aztec::{AztecFilter, AztecJob, AztecLease, MAX_ID_BYTES};

use super::*;

/// Longest URI kept in a record (one that is not a `data:` URI, which is
/// stored as a blob).
const MAX_REFERENCE_BYTES: usize = 4096;

/// Why an Aztec id is refused, if it is.
fn check_raw_id(raw: &str) -> Result<(), BrokerError> {
    if raw.is_empty() {
        return Err(BrokerError::InvalidJob("an empty job id".into()));
    }
    if raw.len() > MAX_ID_BYTES {
        return Err(BrokerError::InvalidJob(format!(
            "a job id of {} bytes (at most {MAX_ID_BYTES})",
            raw.len()
        )));
    }
    Ok(())
}

/// The text and blob a URI is kept as: a `data:` URI whole in a blob,
/// another reference in the record.
fn is_inline(uri: &str) -> bool {
    uri.starts_with("data:")
}

/// The producer's text of a URI kept as `text` (empty) and `blob`.
fn stored_text(
    r: &impl Reader,
    t: &Tables,
    text: &str,
    blob: Option<[u8; 32]>,
) -> Result<String, BrokerError> {
    match blob {
        Some(d) if text.is_empty() => {
            let bytes = r
                .get(t.blobs, &d)?
                .ok_or_else(|| corrupt(format!("blob {} of a job", hex_short(&d))))?;
            String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("an inline URI is not UTF-8"))
        }
        _ => Ok(text.to_string()),
    }
}

fn hex_short(d: &[u8; 32]) -> String {
    d[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Where an Aztec job stands, as Aztec's broker answers (`not-found` for
/// ids it does not know; a result's URI as the agent sent it).
pub fn aztec_status(
    r: &impl Reader,
    t: &Tables,
    raw: &str,
) -> Result<ProvingJobStatus, BrokerError> {
    let Some(rec) = read_record(r, t, &JobId::foreign(raw))? else {
        return Ok(ProvingJobStatus::NotFound);
    };
    if !kind_of(&rec)?.is_aztec() {
        return Ok(ProvingJobStatus::NotFound);
    }
    aztec_status_of_record(r, t, &rec)
}

fn aztec_status_of_record(
    r: &impl Reader,
    t: &Tables,
    rec: &JobRecord,
) -> Result<ProvingJobStatus, BrokerError> {
    Ok(match &rec.state {
        JobState::Fulfilled { value, .. } => ProvingJobStatus::Fulfilled {
            value: ProofUri::from_text(stored_text(r, t, value, rec.result_blob)?),
            agent: None,
        },
        _ => status_of_record(rec),
    })
}

impl Queue {
    /// The kind of Aztec type number `n`, if the configured version has it.
    pub fn aztec_kind(&self, n: u8) -> Result<Kind, BrokerError> {
        let v = self.policy.aztec_version;
        if n >= Kind::AZTEC_LIMIT || !v.has_type(n) {
            return Err(BrokerError::InvalidJob(format!(
                "job type {n} is not one of Aztec {v}'s ({} types, set by PROVER_BROKER_AZTEC_VERSION)",
                v.type_names().len()
            )));
        }
        Ok(Kind::Aztec(n))
    }

    /// Reads an Aztec job's record; `None` for ids it does not know.
    fn aztec_record(
        &self,
        r: &impl Reader,
        raw: &str,
    ) -> Result<Option<(JobId, JobRecord)>, BrokerError> {
        let id = JobId::foreign(raw);
        Ok(read_record(r, &self.t, &id)?.map(|rec| (id, rec)))
    }

    /// Keeps `uri` as a job's text and blob.
    fn keep_uri(
        &self,
        txn: &mut WriteTxn<'_>,
        uri: &str,
    ) -> Result<(String, Option<[u8; 32]>), BrokerError> {
        if uri.is_empty() {
            return Err(BrokerError::InvalidJob("an empty URI".into()));
        }
        if is_inline(uri) {
            let d = self.put_blob(txn, uri.as_bytes())?;
            return Ok((String::new(), Some(d)));
        }
        if uri.len() > MAX_REFERENCE_BYTES {
            return Err(BrokerError::InvalidJob(format!(
                "a URI of {} bytes that is not a data: URI (at most {MAX_REFERENCE_BYTES})",
                uri.len()
            )));
        }
        Ok((uri.to_string(), None))
    }

    /// Aztec's `enqueueProvingJob`: the status before the call (`not-found`
    /// for a new job); the same id with other content is refused.
    pub fn aztec_enqueue(
        &mut self,
        txn: &mut WriteTxn<'_>,
        job: &AztecJob,
    ) -> Result<ProvingJobStatus, BrokerError> {
        check_raw_id(&job.id)?;
        let kind = self.aztec_kind(job.job_type)?;
        if let Some((id, rec)) = self.aztec_record(txn, &job.id)? {
            let same_inputs = match rec.inputs_blob {
                Some(d) if rec.inputs_uri.is_empty() => {
                    is_inline(&job.inputs_uri)
                        && aztec_prover_protocol::job::sha256(job.inputs_uri.as_bytes()) == d
                }
                _ => rec.inputs_uri == job.inputs_uri,
            };
            if rec.job_type != kind.byte() || rec.epoch != job.epoch_number || !same_inputs {
                return Err(BrokerError::InvalidJob(format!(
                    "Duplicate proving job ID {}: a job with this id and other type, epoch or inputs exists",
                    job.id
                )));
            }
            self.events.push(Event::Cached {
                id,
                ty: kind.name(self.policy.aztec_version),
            });
            return aztec_status_of_record(txn, &self.t, &rec);
        }
        self.check_epoch(job.epoch_number)?;
        let (text, blob) = self.keep_uri(txn, &job.inputs_uri)?;
        self.note_aztec_version(txn)?;
        self.insert_queued(
            txn,
            JobId::foreign(&job.id),
            kind,
            job.epoch_number,
            text,
            blob,
        )?;
        Ok(ProvingJobStatus::NotFound)
    }

    /// Records which Aztec version's numbers the store's Aztec jobs use
    /// (checked when the broker starts: see [`Queue::check_aztec_version`]).
    fn note_aztec_version(&self, txn: &mut WriteTxn<'_>) -> Result<(), BrokerError> {
        let v = self.policy.aztec_version.as_str().as_bytes();
        if txn.get(self.t.meta, b"aztec_version")? != Some(v) {
            txn.put(self.t.meta, b"aztec_version", v)?;
        }
        Ok(())
    }

    /// Refuses to start with another Aztec version than the one the
    /// store's Aztec jobs were enqueued under: their type numbers would
    /// mean other circuits.
    pub(super) fn check_aztec_version(&self, r: &impl Reader) -> Result<(), BrokerError> {
        let Some(stored) = r.get(self.t.meta, b"aztec_version")? else {
            return Ok(());
        };
        let stored = String::from_utf8_lossy(stored).to_string();
        let has_jobs = self.stats.keys().any(|(_, k)| k.is_aztec());
        if has_jobs && stored != self.policy.aztec_version.as_str() {
            return Err(BrokerError::InvalidJob(format!(
                "the store holds Aztec jobs numbered as Aztec {stored}, and PROVER_BROKER_AZTEC_VERSION is {}: set it back to {stored} until those epochs are done",
                self.policy.aztec_version
            )));
        }
        Ok(())
    }

    /// Aztec's `getProvingJob`: types nearer the root first (Aztec's
    /// priority order), then older epochs, then first come.
    pub fn aztec_lease(
        &mut self,
        txn: &mut WriteTxn<'_>,
        filter: Option<&AztecFilter>,
        agent: &str,
        now_ms: u64,
    ) -> Result<Option<AztecLease>, BrokerError> {
        let v = self.policy.aztec_version;
        let all = (0..v.type_names().len()).map(|n| n as u8);
        let kinds: Vec<Kind> = match filter {
            Some(f) if !f.allow_list.is_empty() => f
                .allow_list
                .iter()
                .copied()
                .filter(|n| v.has_type(*n))
                .map(Kind::Aztec)
                .collect(),
            _ => all.map(Kind::Aztec).collect(),
        };
        if kinds.iter().all(|k| self.queued(*k) == 0) {
            return Ok(None);
        }
        let rank = |k: Kind, epoch: Epoch, seq: u64| match k {
            Kind::Aztec(n) => (u64::from(v.priority(n)), epoch, seq),
            Kind::Ours(_) => (u64::MAX, u64::MAX, seq),
        };
        let Some((id, rec, started_at)) =
            self.take_best(txn, kinds.into_iter(), rank, agent, now_ms)?
        else {
            return Ok(None);
        };
        let Kind::Aztec(n) = kind_of(&rec)? else {
            return Err(corrupt(format!("job {id} in Aztec's queue is ours")));
        };
        let raw = id
            .foreign_raw()
            .ok_or_else(|| corrupt(format!("Aztec job {id} without its prefix")))?;
        Ok(Some(AztecLease {
            job: AztecJob {
                id: raw.to_string(),
                job_type: n,
                epoch_number: rec.epoch,
                inputs_uri: stored_text(txn, &self.t, &rec.inputs_uri, rec.inputs_blob)?,
            },
            time: started_at,
        }))
    }

    /// Aztec's `reportProvingJobSuccess`: accepted whatever the lease (also
    /// for a job queued again); ignored for unknown or settled jobs, which
    /// get no next job; otherwise the next job the filter admits.
    pub fn aztec_success(
        &mut self,
        txn: &mut WriteTxn<'_>,
        raw: &str,
        uri: &str,
        next: Option<&AztecFilter>,
        agent: &str,
        now_ms: u64,
    ) -> Result<Option<AztecLease>, BrokerError> {
        let Some((id, mut rec)) = self.aztec_record(txn, raw)? else {
            return Ok(None);
        };
        match rec.state {
            JobState::Fulfilled { .. } | JobState::Rejected { .. } => return Ok(None),
            JobState::Queued => {
                self.lease_queued(txn, &id, &mut rec, agent, now_ms, now_ms)?;
            }
            JobState::InProgress { .. } => {}
        }
        let (text, blob) = self.keep_uri(txn, uri)?;
        self.fulfil(txn, &id, rec, text, blob)?;
        self.aztec_lease(txn, next, agent, now_ms)
    }

    /// Aztec's `reportProvingJobError`: with `retry`, queued again until the
    /// retry limit (the next job is chosen first, so the same agent does
    /// not get it straight back), otherwise rejected with `reason`.
    #[allow(clippy::too_many_arguments)]
    pub fn aztec_error(
        &mut self,
        txn: &mut WriteTxn<'_>,
        raw: &str,
        reason: &str,
        retry: bool,
        next: Option<&AztecFilter>,
        agent: &str,
        now_ms: u64,
    ) -> Result<Option<AztecLease>, BrokerError> {
        let Some((id, mut rec)) = self.aztec_record(txn, raw)? else {
            return Ok(None);
        };
        match rec.state {
            JobState::Fulfilled { .. } | JobState::Rejected { .. } => {
                return self.aztec_lease(txn, next, agent, now_ms);
            }
            JobState::Queued => {
                self.lease_queued(txn, &id, &mut rec, agent, now_ms, now_ms)?;
            }
            JobState::InProgress { .. } => {}
        }
        let following = self.aztec_lease(txn, next, agent, now_ms)?;
        let holder = self
            .leases
            .get(&id)
            .map_or_else(|| agent.to_string(), |l| l.agent.clone());
        self.fail_attempt(txn, &id, rec, reason, retry, holder)?;
        Ok(following)
    }

    /// Aztec's `reportProvingJobProgress`. A heartbeat for a job that is
    /// unknown, settled, or held by an agent that took it earlier gets the
    /// next job (the agent drops this one); an older or the same lease
    /// renews the lease (the older agent keeps the job); a job the broker
    /// had queued again is taken back out for this agent.
    pub fn aztec_progress(
        &mut self,
        txn: &mut WriteTxn<'_>,
        raw: &str,
        started_at: u64,
        next: Option<&AztecFilter>,
        agent: &str,
        now_ms: u64,
    ) -> Result<Option<AztecLease>, BrokerError> {
        let Some((id, mut rec)) = self.aztec_record(txn, raw)? else {
            return self.aztec_lease(txn, next, agent, now_ms);
        };
        match rec.state {
            JobState::Fulfilled { .. } | JobState::Rejected { .. } => {
                self.aztec_lease(txn, next, agent, now_ms)
            }
            JobState::Queued => {
                self.lease_queued(txn, &id, &mut rec, agent, started_at, now_ms)?;
                Ok(None)
            }
            JobState::InProgress { .. } => {
                let timeout = self.policy.job_timeout_ms;
                match self.leases.get(&id).cloned() {
                    Some(l) if started_at > l.started_at => {
                        self.aztec_lease(txn, next, agent, now_ms)
                    }
                    held => {
                        let renewed = Lease {
                            started_at,
                            deadline_ms: now_ms + timeout,
                            agent: held.map_or_else(|| agent.to_string(), |l| l.agent),
                        };
                        self.set_lease(&id, renewed);
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Aztec's `cancelProvingJob`: an unsettled job is rejected with reason
    /// `Aborted`; unknown and settled jobs are left alone.
    pub fn aztec_cancel(&mut self, txn: &mut WriteTxn<'_>, raw: &str) -> Result<(), BrokerError> {
        match self.aztec_record(txn, raw)? {
            Some((id, rec)) => self.cancel_record(txn, &id, rec, "Aborted"),
            None => Ok(()),
        }
    }

    /// Aztec's `getCompletedJobs`: the Aztec jobs settled since the last
    /// call, in order, then those of `ids` that are settled (an id may come
    /// twice, as from Aztec's broker).
    pub fn aztec_completed(
        &mut self,
        r: &impl Reader,
        ids: &[String],
    ) -> Result<Vec<String>, BrokerError> {
        let mut settled = Vec::new();
        for raw in ids {
            if let Some((_, rec)) = self.aztec_record(r, raw)?
                && matches!(
                    rec.state,
                    JobState::Fulfilled { .. } | JobState::Rejected { .. }
                )
            {
                settled.push(raw.clone());
            }
        }
        let feed = &mut self.feeds[1];
        let items = std::mem::take(&mut feed.items);
        let mut out: Vec<String> = items
            .iter()
            .filter_map(|id| id.foreign_raw().map(str::to_string))
            .collect();
        feed.taken.extend(items);
        out.extend(settled);
        Ok(out)
    }
}

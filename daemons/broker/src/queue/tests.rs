//! Engine tests: the broker's rules, without threads or sockets.

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    q: Queue,
}

fn policy() -> Policy {
    Policy {
        job_timeout_ms: 1_000,
        // Three attempts: the first and two more.
        max_retries: 3,
        keep_epochs: 1,
        max_epochs_ahead: 10,
        max_blob_bytes: 1 << 16,
        aztec_version: AztecVersion::V4_1_2,
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (store, t) = open_store(&path, 1 << 26).unwrap();
    let (q, _) = Queue::recover(&store, t, policy()).unwrap();
    Fixture {
        _dir: dir,
        path,
        store,
        q,
    }
}

impl Fixture {
    /// Runs one operation in a transaction and commits it, like the writer does.
    fn run<R>(
        &mut self,
        f: impl FnOnce(&mut Queue, &mut WriteTxn<'_>) -> Result<R, BrokerError>,
    ) -> Result<R, BrokerError> {
        let mut txn = self.store.write().unwrap();
        let r = {
            let mut nested = txn.nested().unwrap();
            let r = f(&mut self.q, &mut nested);
            if r.is_ok() {
                nested.commit().unwrap();
            }
            r
        };
        self.q.flush_stats(&mut txn).unwrap();
        txn.commit().unwrap();
        r
    }

    fn enqueue(&mut self, epoch: Epoch, t: JobType, inputs: &[u8]) -> JobId {
        let req = request(epoch, t, inputs);
        self.run(|q, txn| q.enqueue(txn, &req)).unwrap();
        JobId::for_inputs(epoch, t, inputs)
    }

    fn lease(&mut self, allow: &[JobType], now: u64) -> Option<GetProvingJobResponse> {
        let f = ProvingJobFilter {
            allow_list: allow.to_vec(),
        };
        self.run(|q, txn| q.lease(txn, &f, "agent-1", now)).unwrap()
    }

    fn status(&self, id: &JobId) -> ProvingJobStatus {
        status_of(&self.store.read().unwrap(), &self.q.t, id).unwrap()
    }

    fn reopen(self) -> (Fixture, usize) {
        let Fixture {
            _dir,
            path,
            store,
            q,
        } = self;
        drop(q);
        drop(store);
        let (store, t) = open_store(&path, 1 << 26).unwrap();
        let (q, requeued) = Queue::recover(&store, t, policy()).unwrap();
        (
            Fixture {
                _dir,
                path,
                store,
                q,
            },
            requeued,
        )
    }
}

fn request(epoch: Epoch, t: JobType, inputs: &[u8]) -> EnqueueRequest {
    EnqueueRequest {
        id: None,
        job_type: t,
        epoch_number: epoch,
        inputs_uri: ProofUri::inline(inputs),
    }
}

#[test]
fn enqueue_is_idempotent_and_returns_the_current_status() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::BaseRollup, b"tx1");
    assert_eq!(f.status(&id), ProvingJobStatus::InQueue);
    let again = f
        .run(|q, txn| q.enqueue(txn, &request(1, JobType::BaseRollup, b"tx1")))
        .unwrap();
    assert_eq!(again, ProvingJobStatus::InQueue);
    assert_eq!(f.q.stats().totals().queued, 1);

    let lease = f.lease(&[], 10).unwrap();
    f.run(|q, txn| q.report_success(txn, &id, lease.time, &ProofUri::inline(b"proof")))
        .unwrap();
    let settled = f
        .run(|q, txn| q.enqueue(txn, &request(1, JobType::BaseRollup, b"tx1")))
        .unwrap();
    assert!(
        matches!(settled, ProvingJobStatus::Fulfilled { .. }),
        "{settled:?}"
    );
}

#[test]
fn inline_inputs_are_stored_as_a_blob_and_readable() {
    let mut f = fixture();
    f.enqueue(1, JobType::BaseParity, b"messages");
    let job = f.lease(&[], 1).unwrap().job;
    assert!(job.inputs_uri.as_str().starts_with("blob:"));
    let bytes = read_blob(&f.store.read().unwrap(), &f.q.t, &job.inputs_uri).unwrap();
    assert_eq!(bytes, b"messages");
}

#[test]
fn an_id_that_does_not_match_the_inputs_is_refused() {
    let mut f = fixture();
    let mut req = request(1, JobType::BaseRollup, b"tx1");
    req.id = Some(JobId::for_inputs(1, JobType::BaseRollup, b"other"));
    let err = f.run(|q, txn| q.enqueue(txn, &req)).unwrap_err();
    assert!(matches!(err, BrokerError::InvalidJob(_)), "{err}");
    assert_eq!(f.q.stats().totals().queued, 0);
}

#[test]
fn a_blob_uri_the_broker_does_not_hold_is_refused() {
    let mut f = fixture();
    let req = EnqueueRequest {
        id: None,
        job_type: JobType::BaseRollup,
        epoch_number: 1,
        inputs_uri: ProofUri::blob(&[7; 32]),
    };
    assert!(matches!(
        f.run(|q, txn| q.enqueue(txn, &req)),
        Err(BrokerError::BlobNotFound(_))
    ));
}

#[test]
fn oversized_inputs_are_refused() {
    let mut f = fixture();
    let big = vec![0u8; (1 << 16) + 1];
    let err = f
        .run(|q, txn| q.enqueue(txn, &request(1, JobType::BaseRollup, &big)))
        .unwrap_err();
    assert!(matches!(err, BrokerError::TooLarge { .. }), "{err}");
}

#[test]
fn older_epochs_are_served_first_then_types_nearer_the_root_then_fifo() {
    let mut f = fixture();
    let b2 = f.enqueue(2, JobType::BaseRollup, b"b2");
    let m1 = f.enqueue(1, JobType::MergeRollup, b"m1");
    let b1a = f.enqueue(1, JobType::BaseRollup, b"b1a");
    let b1b = f.enqueue(1, JobType::BaseRollup, b"b1b");
    let r1 = f.enqueue(1, JobType::BlockRootRollup, b"r1");
    let order: Vec<JobId> = (0..5)
        .map(|i| f.lease(&[], 100 + i).unwrap().job.id)
        .collect();
    assert_eq!(order, vec![r1, m1, b1a, b1b, b2]);
    assert!(f.lease(&[], 200).is_none());
}

#[test]
fn the_allow_list_limits_what_an_agent_gets() {
    let mut f = fixture();
    f.enqueue(1, JobType::BaseRollup, b"b");
    let p = f.enqueue(1, JobType::BaseParity, b"p");
    assert!(f.lease(&[JobType::RootRollup], 1).is_none());
    assert_eq!(f.lease(&[JobType::BaseParity], 1).unwrap().job.id, p);
    assert_eq!(f.lease(&[JobType::BaseParity], 1), None);
}

#[test]
fn leased_job_returns_to_queue_after_timeout() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::BaseRollup, b"tx");
    let lease = f.lease(&[], 1_000).unwrap();
    assert_eq!(f.status(&id), ProvingJobStatus::InProgress);
    assert!(!f.run(|q, txn| q.expire_leases(txn, 1_999)).unwrap());
    assert!(f.run(|q, txn| q.expire_leases(txn, 2_000)).unwrap());
    assert_eq!(f.status(&id), ProvingJobStatus::InQueue);
    assert_eq!(f.q.stats().timeouts, 1);
    // The old holder's report is refused; a new lease works.
    let late = f.run(|q, txn| q.report_success(txn, &id, lease.time, &ProofUri::inline(b"p")));
    assert!(
        matches!(late, Err(BrokerError::StaleLease { .. })),
        "{late:?}"
    );
    let again = f.lease(&[], 3_000).unwrap();
    assert_ne!(again.time, lease.time);
    f.run(|q, txn| q.report_success(txn, &id, again.time, &ProofUri::inline(b"p")))
        .unwrap();
}

#[test]
fn heartbeats_keep_a_lease_alive() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::BaseRollup, b"tx");
    let lease = f.lease(&[], 1_000).unwrap();
    f.run(|q, txn| q.heartbeat(txn, &id, lease.time, 1_900))
        .unwrap();
    assert!(!f.run(|q, txn| q.expire_leases(txn, 2_500)).unwrap());
    assert!(f.run(|q, txn| q.expire_leases(txn, 2_900)).unwrap());
    let stale = f.run(|q, txn| q.heartbeat(txn, &id, lease.time, 3_000));
    assert!(
        matches!(stale, Err(BrokerError::StaleLease { .. })),
        "{stale:?}"
    );
}

#[test]
fn errors_retry_up_to_the_limit_then_the_job_fails_with_the_last_reason() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::MergeRollup, b"m");
    for attempt in 0..3u64 {
        let l = f.lease(&[], 10 + attempt).unwrap();
        f.run(|q, txn| q.report_error(txn, &id, l.time, &format!("boom {attempt}"), true))
            .unwrap();
    }
    assert_eq!(
        f.status(&id),
        ProvingJobStatus::Rejected {
            reason: "boom 2".into()
        }
    );
    assert!(f.lease(&[], 100).is_none());
}

#[test]
fn a_non_retryable_error_fails_the_job_at_once() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::MergeRollup, b"m");
    let l = f.lease(&[], 10).unwrap();
    f.run(|q, txn| q.report_error(txn, &id, l.time, "corrupt inputs", false))
        .unwrap();
    assert_eq!(
        f.status(&id),
        ProvingJobStatus::Rejected {
            reason: "corrupt inputs".into()
        }
    );
}

#[test]
fn a_duplicate_success_report_is_refused_and_changes_nothing() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::BaseRollup, b"tx");
    let l = f.lease(&[], 10).unwrap();
    f.run(|q, txn| q.report_success(txn, &id, l.time, &ProofUri::inline(b"first")))
        .unwrap();
    let before = f.status(&id);
    let dup = f.run(|q, txn| q.report_success(txn, &id, l.time, &ProofUri::inline(b"second")));
    assert!(
        matches!(dup, Err(BrokerError::AlreadySettled { .. })),
        "{dup:?}"
    );
    assert_eq!(f.status(&id), before);
    assert_eq!(f.q.stats().totals().fulfilled, 1);
}

#[test]
fn reports_for_unknown_jobs_are_refused() {
    let mut f = fixture();
    let ghost = JobId::for_inputs(1, JobType::BaseRollup, b"ghost");
    let r = f.run(|q, txn| q.report_success(txn, &ghost, 1, &ProofUri::inline(b"p")));
    assert!(matches!(r, Err(BrokerError::JobNotFound(_))));
    assert_eq!(f.status(&ghost), ProvingJobStatus::NotFound);
}

#[test]
fn cancel_rejects_queued_and_leased_jobs_and_leaves_settled_ones() {
    let mut f = fixture();
    let a = f.enqueue(1, JobType::BaseRollup, b"a");
    let b = f.enqueue(1, JobType::BaseRollup, b"b");
    let lb = f.lease(&[], 1).unwrap();
    assert_eq!(lb.job.id, a);
    f.run(|q, txn| q.cancel(txn, &a)).unwrap();
    f.run(|q, txn| q.cancel(txn, &b)).unwrap();
    assert_eq!(
        f.status(&a),
        ProvingJobStatus::Rejected {
            reason: "cancelled".into()
        }
    );
    assert_eq!(
        f.status(&b),
        ProvingJobStatus::Rejected {
            reason: "cancelled".into()
        }
    );
    assert!(f.lease(&[], 2).is_none());
    let late = f.run(|q, txn| q.report_success(txn, &a, lb.time, &ProofUri::inline(b"p")));
    assert!(matches!(late, Err(BrokerError::AlreadySettled { .. })));
    let t = f.q.stats().totals();
    assert_eq!((t.queued, t.in_progress, t.rejected), (0, 0, 2));
}

#[test]
fn cancel_epoch_cancels_only_that_epoch() {
    let mut f = fixture();
    f.enqueue(1, JobType::BaseRollup, b"a");
    f.enqueue(1, JobType::MergeRollup, b"b");
    let keep = f.enqueue(2, JobType::BaseRollup, b"c");
    assert_eq!(f.run(|q, txn| q.cancel_epoch(txn, 1)).unwrap(), 2);
    assert_eq!(f.lease(&[], 5).unwrap().job.id, keep);
}

#[test]
fn completed_reports_each_settled_job_once_plus_asked_ids() {
    let mut f = fixture();
    let a = f.enqueue(1, JobType::BaseRollup, b"a");
    let l = f.lease(&[], 1).unwrap();
    f.run(|q, txn| q.report_success(txn, &a, l.time, &ProofUri::inline(b"p")))
        .unwrap();
    let r = f.store.read().unwrap();
    assert_eq!(f.q.completed(&r, &[]).unwrap(), vec![a.clone()]);
    assert!(f.q.completed(&r, &[]).unwrap().is_empty());
    assert_eq!(
        f.q.completed(&r, std::slice::from_ref(&a)).unwrap(),
        vec![a]
    );
}

#[test]
fn after_restart_leased_jobs_are_queued_again_and_results_are_kept() {
    let mut f = fixture();
    let done = f.enqueue(1, JobType::BaseRollup, b"done");
    let leased = f.enqueue(1, JobType::BaseRollup, b"leased");
    let queued = f.enqueue(1, JobType::BaseRollup, b"queued");
    let l1 = f.lease(&[], 1).unwrap();
    f.run(|q, txn| q.report_success(txn, &done, l1.time, &ProofUri::inline(b"proof-bytes")))
        .unwrap();
    let l2 = f.lease(&[], 2).unwrap();
    assert_eq!(l2.job.id, leased);

    let (mut f, requeued) = f.reopen();
    assert_eq!(requeued, 1);
    assert_eq!(f.status(&leased), ProvingJobStatus::InQueue);
    assert_eq!(f.status(&queued), ProvingJobStatus::InQueue);
    let ProvingJobStatus::Fulfilled { value, agent } = f.status(&done) else {
        panic!("result lost")
    };
    assert_eq!(agent.as_deref(), Some("agent-1"), "who proved it is kept");
    assert_eq!(
        read_blob(&f.store.read().unwrap(), &f.q.t, &value).unwrap(),
        b"proof-bytes"
    );
    let t = f.q.stats().totals();
    assert_eq!((t.queued, t.in_progress, t.fulfilled), (2, 0, 1));
    // The pre-restart lease is dead; the job is served again, in its old place.
    let stale = f.run(|q, txn| q.report_success(txn, &leased, l2.time, &ProofUri::inline(b"p")));
    assert!(matches!(stale, Err(BrokerError::StaleLease { .. })));
    assert_eq!(f.lease(&[], 10).unwrap().job.id, leased);
}

#[test]
fn epochs_outside_the_retention_window_are_deleted_with_their_blobs() {
    let mut f = fixture();
    let old = f.enqueue(1, JobType::BaseRollup, b"old");
    let l = f.lease(&[], 1).unwrap();
    f.run(|q, txn| q.report_success(txn, &old, l.time, &ProofUri::inline(b"old-proof")))
        .unwrap();
    let ProvingJobStatus::Fulfilled { value, .. } = f.status(&old) else {
        panic!()
    };
    let prove = |f: &mut Fixture, epoch: u64, what: &[u8], now: u64| {
        let id = f.enqueue(epoch, JobType::BaseRollup, what);
        let l = f.lease(&[], now).unwrap();
        f.run(|q, txn| q.report_success(txn, &id, l.time, &ProofUri::inline(b"proof")))
            .unwrap();
    };
    prove(&mut f, 2, b"mid", 2);
    assert_eq!(
        f.run(|q, txn| q.clean_old_epochs(txn, 100)).unwrap(),
        0,
        "epoch 1 is within 1 of 2"
    );
    // Enqueued alone, a newer epoch moves nothing: only a proven job does.
    f.enqueue(3, JobType::BaseRollup, b"new");
    assert_eq!(f.run(|q, txn| q.clean_old_epochs(txn, 100)).unwrap(), 0);
    let l = f.lease(&[], 3).unwrap();
    let new = l.job.id.clone();
    f.run(|q, txn| q.report_success(txn, &new, l.time, &ProofUri::inline(b"new-proof")))
        .unwrap();
    assert_eq!(f.run(|q, txn| q.clean_old_epochs(txn, 100)).unwrap(), 1);
    assert_eq!(f.status(&old), ProvingJobStatus::NotFound);
    assert!(matches!(
        read_blob(&f.store.read().unwrap(), &f.q.t, &value),
        Err(BrokerError::BlobNotFound(_))
    ));
    assert!(!f.q.stats().epochs.contains_key(&1));
    // And jobs for such an old epoch are refused.
    let r = f.run(|q, txn| q.enqueue(txn, &request(1, JobType::BaseRollup, b"late")));
    assert!(matches!(r, Err(BrokerError::InvalidJob(_))), "{r:?}");
}

#[test]
fn shared_blobs_live_until_their_last_job_is_deleted() {
    let mut f = fixture();
    f.enqueue(1, JobType::BaseRollup, b"same");
    f.enqueue(1, JobType::MergeRollup, b"same");
    let uri = ProofUri::blob_of(b"same");
    // Epoch 3 proven: epoch 1 falls out of the window.
    let x = f.enqueue(3, JobType::RootRollup, b"x");
    let l = f.lease(&[JobType::RootRollup], 1).unwrap();
    assert_eq!(l.job.id, x);
    f.run(|q, txn| q.report_success(txn, &x, l.time, &ProofUri::inline(b"p")))
        .unwrap();
    f.run(|q, txn| q.clean_old_epochs(txn, 1)).unwrap();
    assert!(read_blob(&f.store.read().unwrap(), &f.q.t, &uri).is_ok());
    f.run(|q, txn| q.clean_old_epochs(txn, 1)).unwrap();
    assert!(read_blob(&f.store.read().unwrap(), &f.q.t, &uri).is_err());
}

#[test]
fn counters_survive_a_restart() {
    let mut f = fixture();
    for i in 0..5u8 {
        f.enqueue(4, JobType::BaseRollup, &[i]);
    }
    let before = f.q.stats();
    let (f, _) = f.reopen();
    assert_eq!(f.q.stats().epochs, before.epochs);
}

#[test]
fn a_refused_result_sends_the_job_back_until_the_retry_limit() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::BaseRollup, b"job");
    let prove = |f: &mut Fixture, proof: &[u8], now: u64| {
        let l = f.lease(&[], now).unwrap();
        assert_eq!(l.job.id, id);
        f.run(|q, txn| q.report_success(txn, &id, l.time, &ProofUri::inline(proof)))
            .unwrap();
        let ProvingJobStatus::Fulfilled { value, agent } = f.status(&id) else {
            panic!("not fulfilled")
        };
        assert_eq!(agent.as_deref(), Some("agent-1"));
        value
    };
    let bad = prove(&mut f, b"bad-1", 1);
    // Refusing another value (an older result) changes nothing.
    let other = ProofUri::inline(b"something else");
    let s = f
        .run(|q, txn| q.refuse_result(txn, &id, &other, "no"))
        .unwrap();
    assert!(matches!(s, ProvingJobStatus::Fulfilled { .. }));
    // Refusing the current result queues the job again and drops the blob.
    let s = f
        .run(|q, txn| q.refuse_result(txn, &id, &bad, "does not verify"))
        .unwrap();
    assert_eq!(s, ProvingJobStatus::InQueue);
    assert!(read_blob(&f.store.read().unwrap(), &f.q.t, &bad).is_err());
    let t = f.q.stats().totals();
    assert_eq!((t.queued, t.in_progress, t.fulfilled), (1, 0, 0));
    // Repeating it (a restarted producer) is a no-op.
    let s = f
        .run(|q, txn| q.refuse_result(txn, &id, &bad, "does not verify"))
        .unwrap();
    assert_eq!(s, ProvingJobStatus::InQueue);
    // Two retries allowed: the third refusal rejects the job for good.
    let bad = prove(&mut f, b"bad-2", 2);
    f.run(|q, txn| q.refuse_result(txn, &id, &bad, "again"))
        .unwrap();
    let bad = prove(&mut f, b"bad-3", 3);
    let s = f
        .run(|q, txn| q.refuse_result(txn, &id, &bad, "third"))
        .unwrap();
    let ProvingJobStatus::Rejected { reason } = s else {
        panic!("{s:?}")
    };
    assert!(
        reason.contains("result refused by the producer: third"),
        "{reason}"
    );
    let t = f.q.stats().totals();
    assert_eq!((t.queued, t.fulfilled, t.rejected), (0, 0, 1));
}

/// `max_retries` is the number of attempts a job gets (Aztec's meaning): at
/// 1 the first failed attempt rejects it, at 2 the second does.
#[test]
fn max_retries_counts_every_attempt_as_aztec_does() {
    for attempts in [1u32, 2, 3] {
        let mut f = fixture();
        f.q.set_policy(Policy {
            max_retries: attempts,
            ..policy()
        });
        let id = f.enqueue(1, JobType::MergeRollup, b"m");
        for k in 1..=attempts {
            let l = f.lease(&[], 10 + k as u64).unwrap();
            f.run(|q, txn| q.report_error(txn, &id, l.time, &format!("boom {k}"), true))
                .unwrap();
            let s = f.status(&id);
            if k < attempts {
                assert_eq!(
                    s,
                    ProvingJobStatus::InQueue,
                    "{attempts} attempts, failure {k}"
                );
            } else {
                assert_eq!(
                    s,
                    ProvingJobStatus::Rejected {
                        reason: format!("boom {k}")
                    },
                    "{attempts} attempts: the last failure rejects"
                );
            }
        }
    }
}

/// One request from anyone on the port must not wipe the queue: an epoch far
/// ahead (2^53 + 1, u64::MAX) is refused, and an epoch enqueued but not
/// proven does not move the retention window, so the real epoch's jobs,
/// and the lease an agent holds on one, stay.
#[test]
fn a_far_future_epoch_is_refused_and_an_unproven_one_deletes_nothing() {
    let mut f = fixture();
    let real = f.enqueue(5, JobType::BaseRollup, b"real");
    let held = f.enqueue(5, JobType::MergeRollup, b"held");
    let l = f.lease(&[JobType::MergeRollup], 1).unwrap();
    assert_eq!(l.job.id, held);
    for far in [(1u64 << 53) + 1, u64::MAX, 5 + 11] {
        let r = f.run(|q, txn| q.enqueue(txn, &request(far, JobType::BaseRollup, b"evil")));
        assert!(
            matches!(&r, Err(BrokerError::InvalidJob(e)) if e.contains("ahead of the newest epoch 5")),
            "epoch {far}: {r:?}"
        );
    }
    // Within the bound, accepted, but not proven: nothing moves.
    f.enqueue(15, JobType::BaseRollup, b"later");
    assert_eq!(f.run(|q, txn| q.clean_old_epochs(txn, 100)).unwrap(), 0);
    assert_eq!(f.status(&real), ProvingJobStatus::InQueue);
    f.run(|q, txn| q.report_success(txn, &held, l.time, &ProofUri::inline(b"p")))
        .expect("the lease is still good");
    // The real next epoch is still welcome, also after a restart.
    let (mut f, _) = f.reopen();
    f.enqueue(6, JobType::BaseRollup, b"next");
}

/// Results the producer could not read back (an outside reference such as
/// `file://` or an upper-case `DATA:` URI, empty data) are refused when
/// reported, not stored as fulfilled; the lease stays for a good result.
#[test]
fn results_nobody_could_read_back_are_refused_at_report_time() {
    let mut f = fixture();
    let id = f.enqueue(1, JobType::BaseRollup, b"job");
    let l = f.lease(&[], 1).unwrap();
    for bad in [
        "file:///etc/passwd".to_string(),
        "DATA:application/octet-stream;base64,AAAA".to_string(),
        ProofUri::inline(b"").as_str().to_string(),
    ] {
        let uri: ProofUri =
            serde_json::from_value(serde_json::Value::String(bad.clone())).expect("a URI");
        let r = f.run(|q, txn| q.report_success(txn, &id, l.time, &uri));
        assert!(matches!(r, Err(BrokerError::InvalidJob(_))), "{bad}: {r:?}");
        assert_eq!(f.status(&id), ProvingJobStatus::InProgress, "{bad}");
    }
    f.run(|q, txn| q.report_success(txn, &id, l.time, &ProofUri::inline(b"proof")))
        .expect("a readable result");
}

/// A batch the store did not keep is undone in memory, and only it: a lease
/// granted before stays held with its deadline, the completed feed keeps
/// what nobody received, the counters are as the store has them.
#[test]
fn a_batch_the_store_did_not_keep_is_undone_in_memory_only() {
    let mut f = fixture();
    let held = f.enqueue(1, JobType::BaseRollup, b"held");
    let done = f.enqueue(1, JobType::BaseRollup, b"done");
    let other = f.enqueue(1, JobType::BaseRollup, b"other");
    let l_held = f.lease(&[], 1_000).unwrap();
    let l_done = f.lease(&[], 1_000).unwrap();
    f.run(|q, txn| q.report_success(txn, &done, l_done.time, &ProofUri::inline(b"p")))
        .unwrap();
    f.q.settle();
    let stats = f.q.stats();
    // The batch: a heartbeat of the held lease, a new lease, the held job
    // proven, the feed taken, the policy changed; then its transaction is
    // dropped (a failed commit) and memory rolled back.
    let before = f.q.checkpoint();
    {
        let mut txn = f.store.write().unwrap();
        f.q.heartbeat(&txn, &held, l_held.time, 1_500).unwrap();
        let any = ProvingJobFilter { allow_list: vec![] };
        let l_other =
            f.q.lease(&mut txn, &any, "agent-2", 1_500)
                .unwrap()
                .unwrap();
        assert_eq!(l_other.job.id, other);
        f.q.report_success(&mut txn, &held, l_held.time, &ProofUri::inline(b"q"))
            .unwrap();
        assert_eq!(
            f.q.completed(&txn, &[]).unwrap(),
            vec![done.clone(), held.clone()]
        );
        let mut p = f.q.policy().clone();
        p.job_timeout_ms = 5;
        f.q.set_policy(p);
        f.q.flush_stats(&mut txn).unwrap();
    }
    f.q.roll_back(before);
    f.q.settle();
    assert_eq!(f.q.stats(), stats);
    assert_eq!(f.q.policy().job_timeout_ms, policy().job_timeout_ms);
    assert_eq!(f.q.lease_count(), 1);
    assert_eq!(f.status(&held), ProvingJobStatus::InProgress);
    assert_eq!(f.status(&other), ProvingJobStatus::InQueue);
    // The held lease keeps its first deadline (the heartbeat was undone) and
    // its holder can still heartbeat and report.
    assert!(!f.run(|q, txn| q.expire_leases(txn, 1_999)).unwrap());
    f.run(|q, txn| q.heartbeat(txn, &held, l_held.time, 1_999))
        .unwrap();
    f.run(|q, txn| q.report_success(txn, &held, l_held.time, &ProofUri::inline(b"q")))
        .unwrap();
    // The feed still holds `done`, which nobody received.
    let r = f.store.read().unwrap();
    assert_eq!(f.q.completed(&r, &[]).unwrap(), vec![done, held]);
    // The next lease is `other`, as it would have been.
    drop(r);
    assert_eq!(f.lease(&[], 2_000).unwrap().job.id, other);
}

// ---- Aztec's API (queue/aztec.rs) ----

use aztec_prover_protocol::aztec::{AztecFilter, AztecJob, AztecLease};

/// An Aztec job as their facade sends it: its own id, a type number, and
/// inputs inline in a `data:` URI of their inline proof store.
fn aztec_job(epoch: Epoch, ty: u8, body: &str) -> AztecJob {
    AztecJob {
        id: format!(
            "{epoch}:{}:{body}",
            AztecVersion::V4_1_2.type_name(ty).unwrap()
        ),
        job_type: ty,
        epoch_number: epoch,
        inputs_uri: format!("data:application/json;charset=utf-8,%7B%22in%22%3A%22{body}%22%7D"),
    }
}

impl Fixture {
    fn aztec_enqueue(&mut self, job: &AztecJob) -> Result<ProvingJobStatus, BrokerError> {
        self.run(|q, txn| q.aztec_enqueue(txn, job))
    }

    fn aztec_lease(&mut self, allow: &[u8], now: u64) -> Option<AztecLease> {
        let f = AztecFilter {
            allow_list: allow.to_vec(),
        };
        self.run(|q, txn| q.aztec_lease(txn, Some(&f), "az", now))
            .unwrap()
    }

    fn aztec_status(&self, raw: &str) -> ProvingJobStatus {
        aztec_status(&self.store.read().unwrap(), &self.q.t, raw).unwrap()
    }
}

#[test]
fn aztec_enqueue_answers_the_status_before_and_refuses_a_changed_duplicate() {
    let mut f = fixture();
    let job = aztec_job(3, 16, "a");
    assert_eq!(f.aztec_enqueue(&job).unwrap(), ProvingJobStatus::NotFound);
    assert_eq!(f.aztec_enqueue(&job).unwrap(), ProvingJobStatus::InQueue);
    let mut changed = job.clone();
    changed.inputs_uri.push('x');
    let e = f.aztec_enqueue(&changed).unwrap_err();
    assert!(e.to_string().contains("Duplicate proving job ID"), "{e}");
    changed = job.clone();
    changed.job_type = 17;
    assert!(f.aztec_enqueue(&changed).is_err());
    // Unknown type numbers and empty ids are refused, nothing stored.
    let mut bad = aztec_job(3, 16, "b");
    bad.job_type = 18;
    assert!(f.aztec_enqueue(&bad).is_err());
    bad = aztec_job(3, 16, "b");
    bad.id.clear();
    assert!(f.aztec_enqueue(&bad).is_err());
    let s = f.q.stats();
    assert_eq!(s.totals().queued, 1);
    assert_eq!(s.aztec[&3]["PARITY_BASE"].queued, 1);
    assert!(s.epochs.is_empty(), "Aztec jobs are not counted as ours");
}

#[test]
fn aztec_ids_and_inline_uris_come_back_byte_for_byte() {
    let mut f = fixture();
    let mut job = aztec_job(2, 2, "tx");
    job.id = "2:PRIVATE_TX_BASE_ROLLUP:0xAB/é".into();
    f.aztec_enqueue(&job).unwrap();
    let lease = f.aztec_lease(&[], 10).unwrap();
    assert_eq!(lease.job, job);
    let proof = "data:application/json;charset=utf-8,%7B%22proof%22%3A1%7D";
    let next = f
        .run(|q, txn| q.aztec_success(txn, &job.id, proof, None, "az", 11))
        .unwrap();
    assert!(next.is_none());
    assert_eq!(
        f.aztec_status(&job.id),
        ProvingJobStatus::Fulfilled {
            value: ProofUri::from_text(proof),
            agent: None
        }
    );
    // An outside reference is kept as it is.
    let mut ext = aztec_job(2, 3, "ext");
    ext.inputs_uri = "gs://bucket/inputs/1".into();
    f.aztec_enqueue(&ext).unwrap();
    assert_eq!(
        f.aztec_lease(&[3], 12).unwrap().job.inputs_uri,
        ext.inputs_uri
    );
    // Our API never sees Aztec's jobs, nor Aztec's ours.
    f.enqueue(2, JobType::BaseRollup, b"ours");
    assert!(f.aztec_lease(&[], 13).is_none());
    assert_eq!(f.lease(&[], 14).unwrap().job.job_type, JobType::BaseRollup);
    assert_eq!(f.aztec_status("nope"), ProvingJobStatus::NotFound);
}

#[test]
fn aztec_jobs_are_served_root_first_then_oldest_epoch() {
    let mut f = fixture();
    for job in [
        aztec_job(1, 16, "parity"),
        aztec_job(2, 15, "root2"),
        aztec_job(1, 2, "base"),
        aztec_job(1, 15, "root1"),
    ] {
        f.aztec_enqueue(&job).unwrap();
    }
    let order: Vec<String> = (0..4)
        .map(|i| f.aztec_lease(&[], 10 + i).unwrap().job.id)
        .collect();
    assert_eq!(
        order,
        [
            "1:ROOT_ROLLUP:root1",
            "2:ROOT_ROLLUP:root2",
            "1:PRIVATE_TX_BASE_ROLLUP:base",
            "1:PARITY_BASE:parity"
        ]
    );
}

#[test]
fn aztec_reports_need_no_lease_and_late_or_repeated_ones_are_harmless() {
    let mut f = fixture();
    let a = aztec_job(1, 16, "a");
    let b = aztec_job(1, 16, "b");
    f.aztec_enqueue(&a).unwrap();
    f.aztec_enqueue(&b).unwrap();
    // A success for a job still queued (its agent's lease expired, or the
    // broker restarted) is accepted; the next job comes with it.
    let all = AztecFilter::default();
    let next = f
        .run(|q, txn| q.aztec_success(txn, &a.id, "data:,p", Some(&all), "az", 10))
        .unwrap()
        .unwrap();
    assert_eq!(next.job.id, b.id);
    // A second success is ignored and gets no next job; unknown ids too.
    assert!(
        f.run(|q, txn| q.aztec_success(txn, &a.id, "data:,other", Some(&all), "az", 11))
            .unwrap()
            .is_none()
    );
    assert!(
        f.run(|q, txn| q.aztec_success(txn, "unknown", "data:,p", Some(&all), "az", 11))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        f.aztec_status(&a.id),
        ProvingJobStatus::Fulfilled {
            value: ProofUri::from_text("data:,p"),
            agent: None
        }
    );
    // Completed notices: those since the last call, then the asked-for
    // settled ones, repeats and all.
    let done = f
        .run(|q, txn| q.aztec_completed(txn, &[a.id.clone(), b.id.clone()]))
        .unwrap();
    assert_eq!(done, vec![a.id.clone(), a.id.clone()]);
    let done = f.run(|q, txn| q.aztec_completed(txn, &[])).unwrap();
    assert!(done.is_empty());
    // Our feed is untouched by Aztec's jobs.
    assert!(f.run(|q, txn| q.completed(txn, &[])).unwrap().is_empty());
}

#[test]
fn aztec_heartbeats_keep_the_older_agent_and_redirect_the_newer() {
    let mut f = fixture();
    let a = aztec_job(1, 16, "a");
    let b = aztec_job(1, 16, "b");
    f.aztec_enqueue(&a).unwrap();
    f.aztec_enqueue(&b).unwrap();
    let first = f.aztec_lease(&[], 100).unwrap();
    assert_eq!(first.job.id, a.id);
    // Its heartbeat renews the lease: nothing to switch to.
    let all = AztecFilter::default();
    assert!(
        f.run(|q, txn| q.aztec_progress(txn, &a.id, first.time, Some(&all), "az", 500))
            .unwrap()
            .is_none()
    );
    // A later lease stamp on the same job (another agent) is told to take
    // another job; an earlier one takes the job over.
    let other = f
        .run(|q, txn| q.aztec_progress(txn, &a.id, first.time + 1, Some(&all), "az2", 600))
        .unwrap()
        .unwrap();
    assert_eq!(other.job.id, b.id);
    assert!(
        f.run(|q, txn| q.aztec_progress(txn, &a.id, first.time - 50, Some(&all), "az3", 700))
            .unwrap()
            .is_none()
    );
    // A heartbeat for a job queued again takes it back out of the queue.
    let c = aztec_job(1, 16, "c");
    f.aztec_enqueue(&c).unwrap();
    assert!(
        f.run(|q, txn| q.aztec_progress(txn, &c.id, 42, Some(&all), "az", 800))
            .unwrap()
            .is_none()
    );
    assert_eq!(f.aztec_status(&c.id), ProvingJobStatus::InProgress);
    assert!(f.aztec_lease(&[], 900).is_none());
    // Unknown or settled: the next job (none left here).
    assert!(
        f.run(|q, txn| q.aztec_progress(txn, "unknown", 1, Some(&all), "az", 900))
            .unwrap()
            .is_none()
    );
}

#[test]
fn aztec_errors_retry_then_reject_and_cancel_aborts() {
    let mut f = fixture();
    let a = aztec_job(1, 16, "a");
    f.aztec_enqueue(&a).unwrap();
    for attempt in 0..3u64 {
        let lease = f.aztec_lease(&[], 10 + attempt).unwrap();
        assert_eq!(lease.job.id, a.id);
        f.run(|q, txn| q.aztec_error(txn, &a.id, "boom", true, None, "az", 20 + attempt))
            .unwrap();
    }
    assert_eq!(
        f.aztec_status(&a.id),
        ProvingJobStatus::Rejected {
            reason: "boom".into()
        }
    );
    let b = aztec_job(1, 16, "b");
    f.aztec_enqueue(&b).unwrap();
    f.run(|q, txn| q.aztec_cancel(txn, &b.id)).unwrap();
    f.run(|q, txn| q.aztec_cancel(txn, "unknown")).unwrap();
    assert_eq!(
        f.aztec_status(&b.id),
        ProvingJobStatus::Rejected {
            reason: "Aborted".into()
        }
    );
    let s = f.q.stats();
    assert_eq!(s.aztec[&1]["PARITY_BASE"].rejected, 2);
    assert_eq!(s.totals().queued + s.totals().in_progress, 0);
}

#[test]
fn aztec_jobs_survive_a_restart_and_a_lease_held_then_is_queued_again() {
    let mut f = fixture();
    let a = aztec_job(4, 15, "root");
    f.aztec_enqueue(&a).unwrap();
    f.aztec_lease(&[], 10).unwrap();
    let (mut f, requeued) = f.reopen();
    assert_eq!(requeued, 1);
    assert_eq!(f.aztec_status(&a.id), ProvingJobStatus::InQueue);
    // The agent that had it carries on: its success is taken.
    f.run(|q, txn| q.aztec_success(txn, &a.id, "data:,p", None, "az", 20))
        .unwrap();
    assert!(f.aztec_status(&a.id).is_settled());
    assert_eq!(f.q.stats().aztec[&4]["ROOT_ROLLUP"].fulfilled, 1);
}

#[test]
fn a_store_of_aztec_jobs_under_another_version_is_refused_at_start() {
    let mut f = fixture();
    f.aztec_enqueue(&aztec_job(1, 16, "a")).unwrap();
    // As if the jobs had been enqueued by a broker speaking another version.
    {
        let mut txn = f.store.write().unwrap();
        txn.put(f.q.t.meta, b"aztec_version", b"9.9.9").unwrap();
        txn.commit().unwrap();
    }
    let Fixture {
        _dir,
        path,
        store,
        q,
        ..
    } = f;
    drop(q);
    drop(store);
    let (store, t) = open_store(&path, 1 << 26).unwrap();
    let Err(e) = Queue::recover(&store, t, policy()) else {
        panic!("a broker with another Aztec version started over the store");
    };
    assert!(e.to_string().contains("9.9.9"), "{e}");
}

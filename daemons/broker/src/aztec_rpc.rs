//! The Aztec-compatible JSON-RPC API: the calls of Aztec's own prover node
//! and agents (`@aztec/prover-client`), served beside ours on the same port
//! and routed by their namespaced names (`proverBroker_getProvingJob`,
//! `provingJobProducer_*`, `provingJobConsumer_*`). Translates parameters
//! and answers to Aztec's shapes and error codes; the rules live in the
//! engine (`queue/aztec.rs`). `daemons/protocol/aztec-api.md` is the
//! reference.

use std::net::IpAddr;

use aztec_prover_common::front_door::{ANSWER_WAIT, AnswerBudget, AnswerSlot};
use aztec_prover_common::rpc::{PeerAddr, error};
use aztec_prover_protocol::aztec::{
    AztecFilter, AztecJob, AztecVersion, CALL_FAILED, INVALID_PARAMS,
};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, RpcModule};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::queue::BrokerError;
use crate::writer::Broker;

/// Every method under each name it is called by: the whole broker's
/// namespace and the side's own.
const METHODS: [(&str, [&str; 2]); 8] = [
    (
        "enqueueProvingJob",
        [
            "proverBroker_enqueueProvingJob",
            "provingJobProducer_enqueueProvingJob",
        ],
    ),
    (
        "getProvingJobStatus",
        [
            "proverBroker_getProvingJobStatus",
            "provingJobProducer_getProvingJobStatus",
        ],
    ),
    (
        "cancelProvingJob",
        [
            "proverBroker_cancelProvingJob",
            "provingJobProducer_cancelProvingJob",
        ],
    ),
    (
        "getCompletedJobs",
        [
            "proverBroker_getCompletedJobs",
            "provingJobProducer_getCompletedJobs",
        ],
    ),
    (
        "getProvingJob",
        [
            "proverBroker_getProvingJob",
            "provingJobConsumer_getProvingJob",
        ],
    ),
    (
        "reportProvingJobSuccess",
        [
            "proverBroker_reportProvingJobSuccess",
            "provingJobConsumer_reportProvingJobSuccess",
        ],
    ),
    (
        "reportProvingJobError",
        [
            "proverBroker_reportProvingJobError",
            "provingJobConsumer_reportProvingJobError",
        ],
    ),
    (
        "reportProvingJobProgress",
        [
            "proverBroker_reportProvingJobProgress",
            "provingJobConsumer_reportProvingJobProgress",
        ],
    ),
];

/// Method name prefixes of this API, for the front door's HTTP 400 on a
/// failed single request (Aztec's convention).
pub const PREFIXES: &[&str] = &[
    "proverBroker_",
    "provingJobProducer_",
    "provingJobConsumer_",
];

/// Most ids one `getCompletedJobs` may ask about (Aztec's facade asks
/// about 1000 at a time).
const MAX_IDS: usize = 10_000;

/// Longest error text kept from an agent.
const MAX_REASON_CHARS: usize = 4096;

/// Answers this large or larger reserve their memory in the answer budget
/// while they are sent (inline inputs and proofs travel in answers).
const LARGE_ANSWER: usize = 64 << 10;

/// The API's state: the broker, the version whose type numbers it speaks,
/// and the memory budget for large answers it shares with our API.
pub struct AztecApi {
    broker: Broker,
    version: AztecVersion,
    answers: AnswerBudget,
}

/// The Aztec-compatible methods, to merge into the broker's module.
pub fn module(broker: Broker, version: AztecVersion, answers: AnswerBudget) -> RpcModule<AztecApi> {
    let mut module = RpcModule::new(AztecApi {
        broker,
        version,
        answers,
    });
    for (method, names) in METHODS {
        for name in names {
            // Names are unique by construction; a clash would be a bug here.
            let registered = module.register_async_method(name, move |params, api, ext| {
                let params = params.into_owned();
                async move {
                    let answer = api.call(method, params, &ext).await?;
                    api.reserve(&answer, &ext).await?;
                    Ok::<Value, ErrorObjectOwned>(answer)
                }
            });
            debug_assert!(registered.is_ok(), "{name} registered twice");
        }
    }
    module
}

/// A parameter that fails Aztec's schema.
fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    error(INVALID_PARAMS, message)
}

/// A call the broker refused, as Aztec's server answers a thrown error.
fn failed(e: BrokerError) -> ErrorObjectOwned {
    if matches!(e, BrokerError::Storage(_) | BrokerError::Corrupt(_)) {
        tracing::error!("{e}");
    }
    error(CALL_FAILED, e.to_string())
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ErrorObjectOwned> {
    serde_json::to_value(v).map_err(|e| error(CALL_FAILED, e.to_string()))
}

/// Positional parameters, read in order.
struct Args<'a> {
    seq: jsonrpsee::types::params::ParamsSequence<'a>,
    position: usize,
}

impl<'a> Args<'a> {
    fn new(params: &'a Params<'static>) -> Args<'a> {
        Args {
            seq: params.sequence(),
            position: 0,
        }
    }

    fn next<T: DeserializeOwned>(&mut self, what: &str) -> Result<T, ErrorObjectOwned> {
        self.position += 1;
        self.seq.next::<T>().map_err(|e| {
            invalid(format!(
                "parameter {} ({what}): {}",
                self.position - 1,
                e.message()
            ))
        })
    }

    fn optional<T: DeserializeOwned>(&mut self, what: &str) -> Result<Option<T>, ErrorObjectOwned> {
        self.position += 1;
        self.seq.optional_next::<T>().map_err(|e| {
            invalid(format!(
                "parameter {} ({what}): {}",
                self.position - 1,
                e.message()
            ))
        })
    }
}

impl AztecApi {
    /// Holds memory in the answer budget for a large answer until the door
    /// has sent it: the URIs in it are a job's inline inputs or proof.
    async fn reserve(&self, answer: &Value, ext: &Extensions) -> Result<(), ErrorObjectOwned> {
        let uri_len = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map_or(0, str::len);
        let len =
            uri_len(answer, "value") + answer.get("job").map_or(0, |job| uri_len(job, "inputsUri"));
        if len < LARGE_ANSWER {
            return Ok(());
        }
        // The answer as a value and as text.
        let bytes = len.saturating_mul(2).saturating_add(1024);
        let reservation = self.answers.reserve(bytes, ANSWER_WAIT).await.ok_or_else(|| {
            error(
                CALL_FAILED,
                format!(
                    "too many large answers are being sent at once; no room for {len} bytes within {} s, try again",
                    ANSWER_WAIT.as_secs()
                ),
            )
        })?;
        if let Some(slot) = ext.get::<AnswerSlot>() {
            slot.hold(reservation);
        }
        Ok(())
    }

    /// Checks a filter's type numbers against the version's table.
    fn filter(&self, args: &mut Args<'_>) -> Result<Option<AztecFilter>, ErrorObjectOwned> {
        let f: Option<AztecFilter> = args.optional("filter")?;
        if let Some(f) = &f
            && let Some(bad) = f.allow_list.iter().find(|n| !self.version.has_type(**n))
        {
            return Err(invalid(format!(
                "allowList: {bad} is not a job type of Aztec {}",
                self.version
            )));
        }
        Ok(f)
    }

    async fn call(
        &self,
        method: &'static str,
        params: Params<'static>,
        ext: &Extensions,
    ) -> Result<Value, ErrorObjectOwned> {
        let mut args = Args::new(&params);
        let agent = agent_name(ext.get::<PeerAddr>().map(|p| p.0.ip()));
        let b = &self.broker;
        match method {
            "enqueueProvingJob" => {
                let job: AztecJob = args.next("job")?;
                to_value(b.aztec_enqueue(job).await.map_err(failed)?)
            }
            "getProvingJobStatus" => {
                let id: String = args.next("id")?;
                to_value(b.aztec_status(&id).map_err(failed)?)
            }
            "cancelProvingJob" => {
                let id: String = args.next("id")?;
                b.aztec_cancel(id).await.map_err(failed)?;
                Ok(Value::Null)
            }
            "getCompletedJobs" => {
                let ids: Vec<String> = args.next("ids")?;
                if ids.len() > MAX_IDS {
                    return Err(invalid(format!(
                        "ids: {} ids, at most {MAX_IDS} a call",
                        ids.len()
                    )));
                }
                to_value(b.aztec_completed(ids).await.map_err(failed)?)
            }
            "getProvingJob" => {
                let filter = self.filter(&mut args)?;
                to_value(b.aztec_lease(filter, agent).await.map_err(failed)?)
            }
            "reportProvingJobSuccess" => {
                let id: String = args.next("id")?;
                let uri: String = args.next("proofUri")?;
                let filter = self.filter(&mut args)?;
                to_value(
                    b.aztec_success(id, uri, filter, agent)
                        .await
                        .map_err(failed)?,
                )
            }
            "reportProvingJobError" => {
                let id: String = args.next("id")?;
                let reason: String = args.next("err")?;
                let retry: Option<bool> = args.optional("retry")?;
                let filter = self.filter(&mut args)?;
                let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
                to_value(
                    b.aztec_error(id, reason, retry.unwrap_or(false), filter, agent)
                        .await
                        .map_err(failed)?,
                )
            }
            "reportProvingJobProgress" => {
                let id: String = args.next("id")?;
                let started_at: u64 = args.next("startedAt")?;
                let filter = self.filter(&mut args)?;
                to_value(
                    b.aztec_progress(id, started_at, filter, agent)
                        .await
                        .map_err(failed)?,
                )
            }
            other => Err(error(-32601, format!("Method not found: {other}"))),
        }
    }
}

/// How an Aztec agent appears in logs and job records: Aztec's agents send
/// no name, so by the address they call from.
fn agent_name(ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("aztec agent at {ip}"),
        None => "aztec agent".into(),
    }
}

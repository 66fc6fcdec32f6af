//! The node's JSON-RPC API (read-only): what it is doing, for operators and
//! dashboards. Served on `AZTEC_PORT`, or on the socket systemd passes
//! (`aztec-prover-node.socket`); `GET /` answers a health string. Changes
//! (pausing quotes) go over D-Bus, where the bus policy says who may.

use jsonrpsee::RpcModule;
use jsonrpsee::core::RegisterMethodError;

use crate::status::StatusBoard;

/// `proverNode_getStatus`: the node's [`crate::status::NodeStatus`].
pub const GET_STATUS: &str = "proverNode_getStatus";
/// `proverNode_getJobs`: every epoch proving job, as `{uuid, status, epochNumber, ...}`.
pub const GET_JOBS: &str = "proverNode_getJobs";

/// The JSON-RPC methods over `state`.
pub fn module(state: StatusBoard) -> Result<RpcModule<StatusBoard>, RegisterMethodError> {
    let mut m = RpcModule::new(state);
    m.register_method(GET_STATUS, |_, s, _| {
        serde_json::to_value(s.snapshot()).unwrap_or_default()
    })?;
    m.register_method(GET_JOBS, |_, s, _| s.jobs())?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn methods_answer_from_the_shared_state() {
        let state = StatusBoard::new();
        state.claimed(2, 5, 9);
        let m = module(state.clone()).unwrap();
        let (jobs, _) = m
            .raw_json_request(
                r#"{"jsonrpc":"2.0","id":1,"method":"proverNode_getJobs","params":[]}"#,
                1,
            )
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(jobs.get()).unwrap();
        assert_eq!(v["result"][0]["status"], "initialized", "{v}");
        assert_eq!(v["result"][0]["epochNumber"], 2, "{v}");
        state.set_paused(true);
        let (status, _) = m
            .raw_json_request(
                r#"{"jsonrpc":"2.0","id":2,"method":"proverNode_getStatus"}"#,
                1,
            )
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(status.get()).unwrap();
        assert_eq!(v["result"]["paused"], true, "{v}");
        assert_eq!(v["result"]["claimedEpochs"][0], 2, "{v}");
    }
}

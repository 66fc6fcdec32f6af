//! `aztec-prover bench world-state`: re-executing blocks against the node's
//! world state in LMDB (a fork per block, committed in one transaction)
//! against the same blocks in memory (the reference), in the same run; and
//! what a restart costs: opening the kept state against re-executing the
//! chain from genesis, which is what a node without it would do.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aztec_prover_rollup::plan::{BlockSpec, plan_epoch};
use aztec_prover_rollup::world::{World, synthetic_tx};
use aztec_zk::Felt;
use aztec_zk::RollupParams;
use rand::SeedableRng;

use aztec_prover_node::world_state::WorldState;

/// What to measure.
#[derive(Debug, Clone)]
pub struct WorldStateBenchOptions {
    /// Blocks to re-execute.
    pub blocks: usize,
    /// Sizes.
    pub params: RollupParams,
    /// Their preset's name.
    pub params_name: String,
    /// Where the LMDB store goes (`None`: a temporary directory).
    pub dir: Option<PathBuf>,
    /// One JSON object instead of the table.
    pub json: bool,
}

/// The figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorldStateRow {
    /// Sizes preset.
    pub params: String,
    /// Blocks re-executed.
    pub blocks: usize,
    /// Txs in them.
    pub txs: usize,
    /// Blocks per second in memory (the reference).
    pub memory_blocks_per_s: f64,
    /// Blocks per second through LMDB, each block kept in one transaction.
    pub lmdb_blocks_per_s: f64,
    /// `lmdb / memory`.
    pub ratio: f64,
    /// Opening the kept state (a restart).
    pub reopen_ms: f64,
    /// Re-executing every block from genesis in memory (a restart without it).
    pub replay_from_genesis_ms: f64,
    /// The store on disk.
    pub disk_mib: f64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs the benchmark and prints its figures.
pub fn run(opts: &WorldStateBenchOptions) -> Result<WorldStateRow, String> {
    let p = opts.params.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // The traffic, made up front (not timed): full blocks of synthetic txs.
    let mut scratch = World::genesis(p.clone());
    let mut specs = Vec::with_capacity(opts.blocks);
    for b in 0..opts.blocks as u64 {
        let mut txs = Vec::with_capacity(p.txs_per_block());
        for _ in 0..p.txs_per_block() {
            let tx = synthetic_tx(&scratch, &mut rng).map_err(|e| e.to_string())?;
            scratch.apply_tx(&tx).map_err(|e| e.to_string())?;
            txs.push(tx);
        }
        let messages = (0..p.messages_per_block() as u64)
            .map(|i| Felt::from_u64(b * 1_000 + i + 1))
            .collect();
        specs.push(BlockSpec {
            txs,
            messages,
            slot: b + 1,
        });
    }
    let txs = specs.iter().map(|s| s.txs.len()).sum();
    eprintln!(
        "re-executing {} blocks of {} txs ({} sizes), in memory and in LMDB",
        opts.blocks,
        p.txs_per_block(),
        opts.params_name
    );

    let started = Instant::now();
    let mut memory = World::genesis(p.clone());
    for spec in &specs {
        plan_epoch(&mut memory, 0, Felt::ZERO, std::slice::from_ref(spec))
            .map_err(|e| e.to_string())?;
    }
    let in_memory = started.elapsed();

    let tmp = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let dir = opts
        .dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf())
        .join("world-state");
    if dir.exists() {
        return Err(format!("{} exists: give an empty directory", dir.display()));
    }
    let mut ws = WorldState::open(&dir, &p).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for (n, spec) in specs.iter().enumerate() {
        let changes = {
            let base = ws.snapshot().map_err(|e| e.to_string())?;
            let mut fork = base.fork();
            plan_epoch(&mut fork, 0, Felt::ZERO, std::slice::from_ref(spec))
                .map_err(|e| e.to_string())?;
            fork.into_changes()
        };
        ws.commit(&changes, n as u64 + 1)
            .map_err(|e| e.to_string())?;
    }
    let in_lmdb = started.elapsed();
    let kept = ws.snapshot().map_err(|e| e.to_string())?.block_state();
    if kept != memory.block_state() {
        return Err("LMDB and memory disagree on the state after the blocks".into());
    }
    drop(ws);
    let started = Instant::now();
    let reopened = WorldState::open(&dir, &p).map_err(|e| e.to_string())?;
    let reopen = started.elapsed();
    if reopened.block() != opts.blocks as u64 {
        return Err(format!(
            "reopened at block {}, expected {}",
            reopened.block(),
            opts.blocks
        ));
    }
    let disk = std::fs::metadata(dir.join("data.mdb"))
        .map(|m| m.len())
        .unwrap_or(0);
    let n = opts.blocks.max(1) as f64;
    let row = WorldStateRow {
        params: opts.params_name.clone(),
        blocks: opts.blocks,
        txs,
        memory_blocks_per_s: n / secs(in_memory).max(1e-9),
        lmdb_blocks_per_s: n / secs(in_lmdb).max(1e-9),
        ratio: secs(in_memory) / secs(in_lmdb).max(1e-9),
        reopen_ms: secs(reopen) * 1e3,
        replay_from_genesis_ms: secs(in_memory) * 1e3,
        disk_mib: disk as f64 / (1 << 20) as f64,
    };
    if opts.json {
        println!("{}", serde_json::to_string(&row).unwrap_or_default());
    } else {
        println!(
            "{:<12} {:>7} {:>6} {:>14} {:>14} {:>7} {:>11} {:>16} {:>9}",
            "params",
            "blocks",
            "txs",
            "memory blk/s",
            "LMDB blk/s",
            "ratio",
            "reopen ms",
            "replay all ms",
            "disk MiB"
        );
        println!(
            "{:<12} {:>7} {:>6} {:>14.1} {:>14.1} {:>7.2} {:>11.2} {:>16.0} {:>9.1}",
            row.params,
            row.blocks,
            row.txs,
            row.memory_blocks_per_s,
            row.lmdb_blocks_per_s,
            row.ratio,
            row.reopen_ms,
            row.replay_from_genesis_ms,
            row.disk_mib
        );
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_runs_and_both_sides_agree() {
        let row = run(&WorldStateBenchOptions {
            blocks: 3,
            params: RollupParams::test(),
            params_name: "test".into(),
            dir: None,
            json: true,
        })
        .unwrap();
        assert_eq!((row.blocks, row.txs), (3, 12));
        assert!(row.disk_mib > 0.0);
    }
}

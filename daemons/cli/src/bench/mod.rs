//! `aztec-prover bench`: benchmarks that print figures against a reference
//! measured in the same run. The broker's, the world state's and the
//! gossip's live here;
//! the kernels' and the prover's are in `aztec_backend_abi::bench` and
//! `aztec_prover_rollup::bench` (feature `bench`), so that the small binaries carried
//! to a GPU machine can run them without the CLI.

pub mod broker;
pub mod epoch;
pub mod gossip;
pub mod world_state;

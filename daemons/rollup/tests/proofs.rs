//! Every circuit proves on the CPU backend (loaded as a library, as agents
//! do) and verifies with ark-groth16 and with our verifier; invalid
//! witnesses, broken links, tampered proofs and inputs are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ark_bn254::{Bn254, Fr};
use ark_ff::{One, UniformRand};
use ark_groth16::Groth16;
use aztec_backend_abi::Backend;
use aztec_prover_rollup::plan::{BlockSpec, EpochPlan, plan_epoch};
use aztec_prover_rollup::world::{World, synthetic_tx};
use aztec_zk::circuits::links::check_children;
use aztec_zk::circuits::{CircuitId, Inputs};
use aztec_zk::groth16::verify::{Item, verify, verify_batch};
use aztec_zk::groth16::{
    ArkProvingKey, Proof, ProveWay, ProverKey, proof_from_bytes, proof_to_bytes, prove,
    prove_assignment_with,
};
use aztec_zk::keys::{self, KeyKind};
use aztec_zk::synth::{SynthError, assign, simulate};
use aztec_zk::{Felt, RollupParams};
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Key {
    ark: ArkProvingKey,
    ours: ProverKey,
}

fn params() -> RollupParams {
    RollupParams::test()
}

/// The keys of circuit `c` (made on first use from a fixed seed; each test
/// process makes only those it needs).
fn key(c: CircuitId) -> &'static Key {
    static KEYS: OnceLock<Mutex<HashMap<CircuitId, &'static Key>>> = OnceLock::new();
    let mut map = KEYS.get_or_init(Default::default).lock().unwrap();
    map.entry(c).or_insert_with(|| {
        let p = params();
        let g = keys::generate(c, &p, &mut keys::seeded_rng("tests", c)).unwrap();
        let ours = ProverKey::new(c, p, &g.pk, Arc::new(g.matrices)).unwrap();
        Box::leak(Box::new(Key { ark: g.pk, ours }))
    })
}

fn backend() -> Backend {
    Backend::load("cpu").expect("the CPU backend is built next to the tests")
}

/// An epoch of `blocks` blocks of `txs` synthetic transactions and a few messages each.
fn epoch(blocks: usize, txs: usize, seed: u64) -> (World, EpochPlan) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut world = World::genesis(params());
    let mut specs = Vec::new();
    let mut scratch = world.clone();
    for b in 0..blocks {
        let mut block_txs = Vec::new();
        for _ in 0..txs {
            let tx = synthetic_tx(&scratch, &mut rng).unwrap();
            scratch.apply_tx(&tx).unwrap();
            block_txs.push(tx);
        }
        let messages = (0..3)
            .map(|i| Felt::from_u64(1000 * b as u64 + i))
            .collect();
        specs.push(BlockSpec {
            txs: block_txs,
            messages,
            slot: 10 + b as u64,
        });
    }
    let plan = plan_epoch(&mut world, 7, Felt::from_u64(0xabc), &specs).unwrap();
    (world, plan)
}

fn check_links(plan: &EpochPlan, publics: &[Vec<Felt>]) {
    for (i, job) in plan.jobs.iter().enumerate() {
        let children: Vec<(CircuitId, &[Felt])> = job
            .children
            .iter()
            .map(|&c| (plan.jobs[c].circuit(), publics[c].as_slice()))
            .collect();
        check_children(job.circuit(), &publics[i], &children)
            .unwrap_or_else(|e| panic!("job {i}: {e}"));
    }
}

/// The inputs of a base rollup (from a one-block epoch of two txs).
fn a_base_rollup() -> Inputs {
    let (_, plan) = epoch(1, 2, 5);
    plan.jobs
        .into_iter()
        .find(|j| j.circuit() == CircuitId::BaseRollup)
        .unwrap()
        .inputs
}

#[test]
fn an_epoch_of_every_circuit_proves_links_and_verifies() {
    let (_, plan) = epoch(3, 3, 1);
    for c in CircuitId::ALL {
        assert!(plan.count(c) > 0, "the plan has no {c}");
    }
    let be = backend();
    let mut rng = StdRng::seed_from_u64(2);
    let mut proofs = Vec::new();
    let mut publics = Vec::new();
    for job in &plan.jobs {
        let c = job.circuit();
        let out =
            prove(&be, &key(c).ours, &job.inputs, &mut rng).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(
            out.public_inputs,
            simulate(&params(), &job.inputs).unwrap(),
            "{c}: simulation agrees"
        );
        let x: Vec<Fr> = out.public_inputs.iter().map(|f| f.0).collect();
        let pvk = ark_groth16::prepare_verifying_key(&key(c).ours.vk);
        assert!(
            Groth16::<Bn254>::verify_proof(&pvk, &out.proof, &x).unwrap(),
            "{c}: ark-groth16 accepts our proof"
        );
        assert!(
            verify(&key(c).ours.vk, &out.public_inputs, &out.proof).unwrap(),
            "{c}: our verifier accepts it"
        );
        proofs.push(out.proof);
        publics.push(out.public_inputs);
    }
    check_links(&plan, &publics);
    // The root's public inputs describe the epoch.
    let root = &publics[plan.root];
    assert_eq!(root[8], Felt::from_u64(7));
    assert_eq!(root[10], plan.start.archive_root);
    assert_eq!(root[11], plan.end.archive_root);
    assert_eq!((root[12].to_u64(), root[13].to_u64()), (Some(1), Some(3)));

    let items: Vec<Item<'_>> = plan
        .jobs
        .iter()
        .zip(&proofs)
        .zip(&publics)
        .map(|((j, proof), inputs)| Item {
            vk: &key(j.circuit()).ours.vk,
            inputs,
            proof,
        })
        .collect();
    assert!(
        verify_batch(&items, &mut rng).unwrap(),
        "the whole epoch verifies in one batch"
    );
    // One tampered public input anywhere sinks the batch.
    let mut bad_inputs = publics[3].clone();
    bad_inputs[0] = Felt(bad_inputs[0].0 + Fr::one());
    let mut tampered = items.clone();
    tampered[3].inputs = &bad_inputs;
    assert!(!verify_batch(&tampered, &mut rng).unwrap());
    // So does one proof swapped for another.
    let mut swapped = items.clone();
    swapped[0].proof = &proofs[1];
    assert!(!verify_batch(&swapped, &mut rng).unwrap());
}

/// Every way a proof can use its backend gives the same proof: a GPU
/// backend's G2 MSM beside its G1 MSMs (two MSMs in one library at once),
/// and the QAP's vectors kept in the backend between its NTTs, its
/// pointwise step and the H MSM, or sent back and forth.
#[test]
fn every_way_of_proving_gives_the_same_proof() {
    let (c, inputs) = (CircuitId::BaseRollup, a_base_rollup());
    let a = assign(&params(), &inputs).unwrap();
    let (r, s) = (Fr::from(11u64), Fr::from(13u64));
    let be = backend();
    let prove_as = |g2_beside, kept_vectors| {
        let way = ProveWay {
            g2_beside,
            kept_vectors,
        };
        prove_assignment_with(&be, &key(c).ours, &a, r, s, way)
            .unwrap()
            .0
    };
    let plain = prove_as(false, false);
    for (beside, kept) in [(true, false), (false, true), (true, true)] {
        assert_eq!(
            prove_as(beside, kept),
            plain,
            "G2 beside: {beside}, kept vectors: {kept}"
        );
    }
    let publics = simulate(&params(), &inputs).unwrap();
    assert!(verify(&key(c).ours.vk, &publics, &plain).unwrap());
}

#[test]
fn single_block_epochs_use_the_single_root() {
    let (_, plan) = epoch(1, 1, 3);
    let Inputs::RootRollup(r) = &plan.jobs[plan.root].inputs else {
        panic!("no root")
    };
    assert!(r.single);
    assert_eq!(plan.count(CircuitId::BlockMerge), 0);
    let be = backend();
    let out = prove(
        &be,
        &key(CircuitId::RootRollup).ours,
        &plan.jobs[plan.root].inputs,
        &mut StdRng::seed_from_u64(4),
    )
    .unwrap();
    assert!(
        verify(
            &key(CircuitId::RootRollup).ours.vk,
            &out.public_inputs,
            &out.proof
        )
        .unwrap()
    );
}

#[test]
fn our_verifier_accepts_ark_groth16_proofs_and_rejects_tampered_ones() {
    let (c, inputs) = (CircuitId::BaseRollup, a_base_rollup());
    let mut rng = StdRng::seed_from_u64(6);
    let proof = Groth16::<Bn254>::create_random_proof_with_reduction(
        aztec_zk::circuits::Circuit {
            params: &params(),
            inputs: &inputs,
        },
        &key(c).ark,
        &mut rng,
    )
    .unwrap();
    let inputs = simulate(&params(), &inputs).unwrap();
    let vk = &key(c).ours.vk;
    assert!(verify(vk, &inputs, &proof).unwrap());

    // Tampered proof bytes either fail to decode or fail to verify.
    let bytes = proof_to_bytes(&proof);
    assert_eq!(proof_from_bytes(&bytes).unwrap(), proof);
    let mut refused = 0;
    for i in [0usize, 20, 40, 70, 100, 127] {
        let mut b = bytes.clone();
        b[i] ^= 0x04;
        match proof_from_bytes(&b) {
            Err(_) => refused += 1,
            Ok(p) => assert!(
                !verify(vk, &inputs, &p).unwrap(),
                "flipping byte {i} still verified"
            ),
        }
    }
    assert!(
        refused > 0,
        "some flips make points that are not on the curve"
    );
    assert!(proof_from_bytes(&bytes[..100]).is_err());

    // A rerandomized-looking fake: valid points, wrong relation.
    let fake = Proof {
        a: proof.a,
        b: proof.b,
        c: (proof.c * Fr::rand(&mut rng)).into(),
    };
    assert!(!verify(vk, &inputs, &fake).unwrap());
    // Wrong number of public inputs is an error, not a false.
    assert!(verify(vk, &inputs[..2], &proof).is_err());
}

fn expect_unsatisfied(r: Result<Vec<Felt>, SynthError>, what: &str) {
    match r {
        Err(SynthError::Unsatisfied { .. }) => {}
        other => panic!("{what}: expected an unsatisfied constraint, got {other:?}"),
    }
}

#[test]
fn invalid_witnesses_are_refused_at_synthesis() {
    let (_, plan) = epoch(2, 2, 7);
    let p = params();
    let be = backend();
    let mut rng = StdRng::seed_from_u64(8);
    let base = plan
        .jobs
        .iter()
        .find(|j| j.circuit() == CircuitId::BaseRollup)
        .unwrap()
        .inputs
        .clone();
    let Inputs::BaseRollup(base) = base else {
        unreachable!()
    };

    // A wrong start root.
    let mut bad = base.clone();
    bad.start.note_root = Felt(bad.start.note_root.0 + Fr::one());
    expect_unsatisfied(
        simulate(&p, &Inputs::BaseRollup(bad.clone())),
        "wrong note root",
    );
    match prove(
        &be,
        &key(CircuitId::BaseRollup).ours,
        &Inputs::BaseRollup(bad),
        &mut rng,
    ) {
        Err(aztec_zk::groth16::ProveError::Synth(SynthError::Unsatisfied { .. })) => {}
        other => panic!(
            "the prover must refuse a wrong root, got {:?}",
            other.map(|o| o.public_inputs)
        ),
    }

    // A double nullifier: the second tx spends the first one's nullifier,
    // with the witness a cheating sequencer would build (the low leaf of the
    // value itself).
    let mut world = World::genesis(p.clone());
    let tx = synthetic_tx(&world, &mut rng).unwrap();
    world.apply_tx(&tx).unwrap();
    let mut again = synthetic_tx(&world, &mut rng).unwrap();
    again.nullifiers[0] = tx.nullifiers[0];
    assert!(
        world.apply_tx(&again).is_err(),
        "the world state refuses a double spend"
    );
    let mut cheat = world.clone();
    let mut fresh = again.clone();
    fresh.nullifiers[0] = Felt(tx.nullifiers[0].0 + Fr::one());
    let (mut inputs, _) = cheat.apply_tx(&fresh).unwrap();
    inputs.tx.nullifiers[0] = tx.nullifiers[0];
    expect_unsatisfied(
        simulate(&p, &Inputs::BaseRollup(inputs)),
        "double nullifier",
    );

    // Two nullifiers equal within one tx.
    let mut dup = synthetic_tx(&world, &mut rng).unwrap();
    dup.nullifiers[1] = dup.nullifiers[0];
    assert!(world.clone().apply_tx(&dup).is_err());

    // A merge whose children do not link.
    let merge = plan
        .jobs
        .iter()
        .find(|j| j.circuit() == CircuitId::MergeRollup)
        .unwrap()
        .inputs
        .clone();
    let Inputs::MergeRollup(mut m) = merge else {
        unreachable!()
    };
    m.right.start = Felt(m.right.start.0 + Fr::one());
    expect_unsatisfied(simulate(&p, &Inputs::MergeRollup(m)), "broken merge link");

    // A block root whose left range does not start at the block's start state.
    let br = plan
        .jobs
        .iter()
        .find(|j| j.circuit() == CircuitId::BlockRoot)
        .unwrap()
        .inputs
        .clone();
    let Inputs::BlockRoot(mut b) = br else {
        unreachable!()
    };
    b.left.start = b.left.end;
    expect_unsatisfied(simulate(&p, &Inputs::BlockRoot(b)), "block root link");

    // A root over blocks that are not consecutive.
    let root = plan.jobs[plan.root].inputs.clone();
    let Inputs::RootRollup(mut r) = root else {
        unreachable!()
    };
    r.right.start = r.left.start;
    expect_unsatisfied(simulate(&p, &Inputs::RootRollup(r)), "root link");

    // Inputs of the wrong size are a shape error naming the field.
    let mut short = base.clone();
    short.note_siblings.pop();
    let e = simulate(&p, &Inputs::BaseRollup(short)).unwrap_err();
    assert!(e.to_string().contains("note_siblings"), "{e}");
    // Inputs for another circuit than the key's.
    assert!(
        prove(
            &be,
            &key(CircuitId::MergeRollup).ours,
            &Inputs::BaseRollup(base),
            &mut rng
        )
        .is_err()
    );
}

#[test]
fn key_files_round_trip_and_refuse_the_wrong_circuit_sizes_or_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = params();
    let c = CircuitId::MergeRollup;
    let g = keys::generate(c, &p, &mut keys::seeded_rng("files", c)).unwrap();
    keys::write_keys(dir.path(), c, &p, &g, true).unwrap();
    assert_eq!(keys::read_params(dir.path()).unwrap(), p);
    let (h, pk) = keys::load_prover_key(dir.path(), c, &p).unwrap();
    assert!(h.insecure);
    let (_, vk) = keys::load_verifying_key(dir.path(), c, &p).unwrap();
    assert_eq!(vk, g.pk.vk);
    assert_eq!(pk.num_constraints(), g.matrices.num_constraints);

    // The same seed gives the same keys; another seed other keys.
    let again = keys::generate(c, &p, &mut keys::seeded_rng("files", c)).unwrap();
    assert_eq!(again.pk.vk, g.pk.vk);
    let other = keys::generate(c, &p, &mut keys::seeded_rng("other", c)).unwrap();
    assert_ne!(other.pk.vk, g.pk.vk);

    let err = |r: Result<(keys::KeyHeader, aztec_zk::groth16::VerifyingKey), keys::KeyError>| {
        r.unwrap_err().to_string()
    };
    // Wrong circuit: the merge key presented as the block merge key.
    std::fs::copy(
        keys::key_path(dir.path(), c, KeyKind::Verifying),
        keys::key_path(dir.path(), CircuitId::BlockMerge, KeyKind::Verifying),
    )
    .unwrap();
    let e = err(keys::load_verifying_key(
        dir.path(),
        CircuitId::BlockMerge,
        &p,
    ));
    assert!(
        e.contains("key for circuit merge-rollup, expected block-merge-rollup"),
        "{e}"
    );
    // Wrong sizes.
    let e = err(keys::load_verifying_key(
        dir.path(),
        c,
        &RollupParams::devnet(),
    ));
    assert!(e.contains("other sizes"), "{e}");
    // A proving key where a verifying key is expected.
    let vk_path = keys::key_path(dir.path(), c, KeyKind::Verifying);
    let good = std::fs::read(&vk_path).unwrap();
    std::fs::copy(keys::key_path(dir.path(), c, KeyKind::Proving), &vk_path).unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("expected"));
    // Truncated.
    std::fs::write(&vk_path, &good[..good.len() - 10]).unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("truncated"));
    std::fs::write(&vk_path, &good[..20]).unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("truncated"));
    // Corrupt payload.
    let mut bad = good.clone();
    let last = bad.len() - 5;
    bad[last] ^= 1;
    std::fs::write(&vk_path, &bad).unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("checksum"));
    // Not a key at all.
    std::fs::write(&vk_path, b"hello").unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("truncated"));
    std::fs::write(&vk_path, vec![7u8; 200]).unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("bad magic"));
    // Missing.
    std::fs::remove_file(&vk_path).unwrap();
    assert!(err(keys::load_verifying_key(dir.path(), c, &p)).contains("No such file"));
}

//! The tree gadgets of `aztec_zk` (Merkle appends, indexed-tree inserts)
//! against the native trees of the world state: same roots, and the
//! constraints refuse what the trees refuse.

// A test's helpers panic to fail the test, as the tests themselves may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The merkle gadgets against the native trees.
mod merkle {
    use ark_bn254::Fr;
    use ark_r1cs_std::R1CSVar;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_r1cs_std::fields::fp::FpVar;
    use ark_relations::r1cs::ConstraintSystem;
    use aztec_prover_rollup::world::store::{MemStore, Tree};
    use aztec_prover_rollup::world::trees::{node, path_from, set_leaf};
    use aztec_zk::merkle::*;

    const T: Tree = Tree::Notes;

    fn path(s: &MemStore, depth: u32, level: u32, index: u64) -> Vec<Fr> {
        path_from(s, T, depth, level, index)
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect()
    }

    #[test]
    fn subtree_append_gadget_matches_native_tree() {
        let depth = 6;
        let mut t = MemStore::default();
        for i in 0..4 {
            set_leaf(&mut t, T, depth, i, Fr::from(i + 1)).unwrap();
        }
        let leaves = [Fr::from(10u64), Fr::from(11u64)];
        let next = 4u64;
        let siblings = path(&t, depth, 1, next >> 1);
        let old_root = node(&t, T, depth, 0).unwrap();
        let mut new_root_native = old_root;
        for (j, l) in leaves.iter().enumerate() {
            new_root_native = set_leaf(&mut t, T, depth, next + j as u64, *l).unwrap();
        }
        let cs = ConstraintSystem::<Fr>::new_ref();
        let root = FpVar::new_witness(cs.clone(), || Ok(old_root)).unwrap();
        let nextv = FpVar::new_witness(cs.clone(), || Ok(Fr::from(next))).unwrap();
        let lv = witness_vec(&cs, &leaves).unwrap();
        let sub = subtree_root_var(&lv).unwrap();
        let sib = witness_vec(&cs, &siblings).unwrap();
        let (new_root, new_next) =
            append_subtree_var(cs.clone(), depth, &root, &nextv, next, 1, &sub, &sib).unwrap();
        assert_eq!(new_root.value().unwrap(), new_root_native);
        assert_eq!(new_next.value().unwrap(), Fr::from(6u64));
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn appending_at_an_occupied_position_is_unsatisfiable() {
        let depth = 4;
        let mut t = MemStore::default();
        let root_value = set_leaf(&mut t, T, depth, 0, Fr::from(1u64)).unwrap();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let root = FpVar::new_witness(cs.clone(), || Ok(root_value)).unwrap();
        let nextv = FpVar::new_witness(cs.clone(), || Ok(Fr::from(0u64))).unwrap();
        let sub = FpVar::new_witness(cs.clone(), || Ok(Fr::from(2u64))).unwrap();
        let sib = witness_vec(&cs, &path(&t, depth, 0, 0)).unwrap();
        let _ = append_subtree_var(cs.clone(), depth, &root, &nextv, 0, 0, &sub, &sib).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }
}

/// The indexed gadgets against the native trees.
mod indexed {
    use ark_bn254::Fr;
    use ark_ff::Zero;
    use ark_r1cs_std::R1CSVar;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_r1cs_std::fields::fp::FpVar;
    use ark_relations::r1cs::ConstraintSystem;
    use aztec_prover_rollup::world::store::{MemStore, Tree};
    use aztec_prover_rollup::world::trees::{init_nullifiers, insert_nullifier, node};
    use aztec_zk::Felt;
    use aztec_zk::indexed::*;

    /// A nullifier tree of depth 8 in memory, with its next free leaf.
    #[derive(Clone)]
    struct Nullifiers(MemStore, u64);

    impl Nullifiers {
        fn new() -> Nullifiers {
            let mut s = MemStore::default();
            init_nullifiers(&mut s, 8).unwrap();
            Nullifiers(s, 1)
        }
        fn root(&self) -> Fr {
            node(&self.0, Tree::Nullifiers, 8, 0).unwrap()
        }
        fn insert(&mut self, v: Fr) -> Result<InsertWitness, String> {
            let w = insert_nullifier(&mut self.0, 8, self.1, v).map_err(|e| e.to_string())?;
            self.1 += 1;
            Ok(w)
        }
    }

    fn run(tree_before: &Nullifiers, v: Fr, w: &InsertWitness) -> (bool, Fr, Fr) {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let root = FpVar::new_witness(cs.clone(), || Ok(tree_before.root())).unwrap();
        let next = FpVar::new_witness(cs.clone(), || Ok(Fr::from(tree_before.1))).unwrap();
        let vv = FpVar::new_witness(cs.clone(), || Ok(v)).unwrap();
        let (r, n) = insert_var(&cs, 8, &root, &next, tree_before.1, &vv, w).unwrap();
        (
            cs.is_satisfied().unwrap(),
            r.value().unwrap(),
            n.value().unwrap(),
        )
    }

    #[test]
    fn insertions_in_any_order_match_the_native_tree() {
        let mut t = Nullifiers::new();
        for v in [50u64, 10, 70, 60, 5] {
            let before = t.clone();
            let w = t.insert(Fr::from(v)).unwrap();
            let (ok, root, next) = run(&before, Fr::from(v), &w);
            assert!(ok, "insert {v}");
            assert_eq!(root, t.root());
            assert_eq!(next, Fr::from(t.1));
        }
    }

    #[test]
    fn a_double_nullifier_cannot_be_inserted() {
        let mut t = Nullifiers::new();
        t.insert(Fr::from(10u64)).unwrap();
        assert_eq!(
            t.insert(Fr::from(10u64)),
            Err(InsertError::Duplicate(Felt::from_u64(10).to_hex()).to_string())
        );
        // A prover who forges a witness with the low leaf of 10 itself fails the bracket check.
        let before = t.clone();
        let mut forged_tree = t.clone();
        let mut w = forged_tree.insert(Fr::from(11u64)).unwrap();
        w.low_leaf.next_value = Felt::from_u64(10);
        let (ok, _, _) = run(&before, Fr::from(10u64), &w);
        assert!(!ok);
    }

    #[test]
    fn zero_is_an_unused_slot() {
        let t = Nullifiers::new();
        let (ok, root, next) = run(&t, Fr::zero(), &InsertWitness::unused(8));
        assert!(ok);
        assert_eq!(root, t.root());
        assert_eq!(next, Fr::from(1u64));
    }
}

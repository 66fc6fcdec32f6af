//! How proofs link: what each circuit outputs and which of its children's
//! outputs it restates, read from public inputs. A parent proof is only
//! meaningful together with children whose outputs equal what it restates;
//! the node (and tests) check that with [`check_children`].

use super::CircuitId;
use crate::felt::Felt;
use crate::roots::RollupOutput;

fn out(p: &[Felt], i: [usize; 4]) -> Option<RollupOutput> {
    Some(RollupOutput {
        start: *p.get(i[0])?,
        end: *p.get(i[1])?,
        effects: *p.get(i[2])?,
        fee: *p.get(i[3])?,
    })
}

/// What a proof outputs to its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A message subtree root (parities).
    Parity(Felt),
    /// A range (base, merge, block root, block merge).
    Range(RollupOutput),
    /// The epoch (root): nothing consumes it but L1.
    Epoch,
}

/// What a proof of `circuit` with public inputs `p` outputs.
pub fn output(circuit: CircuitId, p: &[Felt]) -> Option<Output> {
    Some(match circuit {
        CircuitId::BaseParity | CircuitId::RootParity => Output::Parity(*p.last()?),
        CircuitId::BaseRollup => Output::Range(out(p, [0, 1, 2, 3])?),
        CircuitId::MergeRollup | CircuitId::BlockMerge => Output::Range(out(p, [0, 2, 7, 8])?),
        CircuitId::BlockRoot => Output::Range(out(p, [0, 1, 10, 11])?),
        CircuitId::RootRollup => Output::Epoch,
    })
}

/// The children's outputs a proof restates, in child order.
pub fn restated(circuit: CircuitId, p: &[Felt]) -> Option<Vec<Output>> {
    Some(match circuit {
        CircuitId::BaseParity | CircuitId::BaseRollup => vec![],
        CircuitId::RootParity => p
            .get(..p.len().checked_sub(1)?)?
            .iter()
            .map(|r| Output::Parity(*r))
            .collect(),
        CircuitId::MergeRollup | CircuitId::BlockMerge => {
            vec![
                Output::Range(out(p, [0, 1, 3, 4])?),
                Output::Range(out(p, [1, 2, 5, 6])?),
            ]
        }
        CircuitId::BlockRoot => vec![
            Output::Parity(*p.get(9)?),
            Output::Range(out(p, [2, 3, 5, 6])?),
            Output::Range(out(p, [3, 4, 7, 8])?),
        ],
        CircuitId::RootRollup => {
            let single = p.get(7)?.to_u64()? == 1;
            let mut v = vec![Output::Range(out(p, [0, 1, 3, 4])?)];
            if !single {
                v.push(Output::Range(out(p, [1, 2, 5, 6])?));
            }
            v
        }
    })
}

/// Checks a parent's restated outputs against its children's proofs
/// (`children`: circuit and public inputs, in order: for a block root the
/// root parity first, then the two ranges).
pub fn check_children(
    parent: CircuitId,
    parent_inputs: &[Felt],
    children: &[(CircuitId, &[Felt])],
) -> Result<(), String> {
    let want = restated(parent, parent_inputs)
        .ok_or_else(|| format!("{parent}: too few public inputs"))?;
    if want.len() != children.len() {
        return Err(format!(
            "{parent} restates {} children, {} given",
            want.len(),
            children.len()
        ));
    }
    for (k, ((c, p), w)) in children.iter().zip(&want).enumerate() {
        let got = output(*c, p).ok_or_else(|| format!("child {k} ({c}): too few public inputs"))?;
        if &got != w {
            return Err(format!(
                "{parent}: child {k} ({c}) outputs {got:?}, the parent restates {w:?}"
            ));
        }
    }
    Ok(())
}

//! `Felt`: an Fr element with a stable wire form (32 bytes little-endian in
//! binary formats, `0x`-prefixed big-endian hex in JSON), used in every job
//! input and output.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A scalar field element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Felt(pub Fr);

impl Felt {
    /// Zero.
    pub const ZERO: Felt = Felt(ark_ff::MontFp!("0"));

    /// 32 bytes little-endian, canonical.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.into_bigint().to_bytes_le());
        out
    }

    /// From 32 bytes little-endian; `None` unless canonical (below r).
    pub fn from_bytes(b: &[u8; 32]) -> Option<Felt> {
        let mut limbs = [0u64; 4];
        for (i, l) in limbs.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *l = u64::from_le_bytes(w);
        }
        Fr::from_bigint(ark_ff::BigInt(limbs)).map(Felt)
    }

    /// From a small integer.
    pub fn from_u64(v: u64) -> Felt {
        Felt(Fr::from(v))
    }

    /// The value as an integer, if it fits in 64 bits.
    pub fn to_u64(&self) -> Option<u64> {
        let b = self.0.into_bigint();
        (b.0[1] == 0 && b.0[2] == 0 && b.0[3] == 0).then_some(b.0[0])
    }

    /// Big-endian hex with `0x`.
    pub fn to_hex(&self) -> String {
        let mut b = self.to_bytes();
        b.reverse();
        format!("0x{}", hex::encode(b))
    }

    /// Parses `0x` big-endian hex (up to 64 digits).
    pub fn from_hex(s: &str) -> Option<Felt> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        if digits.is_empty() || digits.len() > 64 {
            return None;
        }
        let padded = format!("{digits:0>64}");
        let mut b: [u8; 32] = hex::decode(padded).ok()?.try_into().ok()?;
        b.reverse();
        Felt::from_bytes(&b)
    }
}

impl From<Fr> for Felt {
    fn from(x: Fr) -> Felt {
        Felt(x)
    }
}

impl Serialize for Felt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.to_bytes().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Felt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Felt, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Felt::from_hex(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a field element")))
        } else {
            let b = <[u8; 32]>::deserialize(d)?;
            Felt::from_bytes(&b)
                .ok_or_else(|| serde::de::Error::custom("value is not below the field modulus"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn felts_round_trip_in_both_forms() {
        let x = Felt(Fr::from(123456789u64) * Fr::from(987654321u64));
        let j = serde_json::to_string(&x).unwrap();
        assert_eq!(serde_json::from_str::<Felt>(&j).unwrap(), x);
        let b = postcard::to_stdvec(&x).unwrap();
        assert_eq!(postcard::from_bytes::<Felt>(&b).unwrap(), x);
        assert_eq!(Felt::from_u64(7).to_u64(), Some(7));
        assert!(Felt::from_bytes(&[0xff; 32]).is_none());
        assert!(serde_json::from_str::<Felt>("\"0xzz\"").is_err());
    }
}

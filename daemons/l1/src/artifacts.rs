//! The committed compiled contracts, and how to tell that they are stale.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The contracts' source folder in the source tree.
pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

/// One artifact: its name and JSON text.
pub const ALL: [(&str, &str); 5] = [
    ("FeeToken", include_str!("../artifacts/FeeToken.json")),
    (
        "ProofCommitmentEscrow",
        include_str!("../artifacts/ProofCommitmentEscrow.json"),
    ),
    ("Rollup", include_str!("../artifacts/Rollup.json")),
    (
        "Groth16EpochVerifier",
        include_str!("../artifacts/Groth16EpochVerifier.json"),
    ),
    (
        "MockEpochVerifier",
        include_str!("../artifacts/MockEpochVerifier.json"),
    ),
];

/// The compiler settings `compile.js` hashes with the sources; keep the two equal.
const SETTINGS_JSON: &str = r#"{"optimizer":{"enabled":true,"runs":200},"viaIR":true,"evmVersion":"cancun","outputSelection":{"*":{"*":["abi","evm.bytecode.object","evm.deployedBytecode.object"]}}}"#;

/// The digest `compile.js` records: sha256 over every `.sol` file's name
/// and bytes (sorted by name) and the compiler settings.
pub fn sources_digest(dir: &Path) -> std::io::Result<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sol"))
        .collect();
    names.sort();
    let mut h = Sha256::new();
    for n in &names {
        h.update(n.as_bytes());
        h.update([0]);
        h.update(std::fs::read(dir.join(n))?);
        h.update([0]);
    }
    h.update(SETTINGS_JSON.as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// The digest recorded in an artifact.
pub fn recorded_digest(artifact_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(artifact_json).ok()?;
    Some(v.get("sourcesSha256")?.as_str()?.to_string())
}

/// Names of artifacts that were not built from the sources as they are now.
pub fn stale_artifacts() -> std::io::Result<Vec<&'static str>> {
    let now = sources_digest(&contracts_dir())?;
    Ok(ALL
        .iter()
        .filter(|(_, json)| recorded_digest(json).as_deref() != Some(now.as_str()))
        .map(|(name, _)| *name)
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn artifacts_match_their_sources() {
        let stale = super::stale_artifacts().unwrap_or_else(|e| panic!("reading contracts/: {e}"));
        assert!(
            stale.is_empty(),
            "artifacts {stale:?} are stale: run `node daemons/l1/compile.js` and commit daemons/l1/artifacts/"
        );
    }

    /// The committed bytes are what solc-js makes of the sources today.
    #[test]
    fn recompiling_with_solc_js_gives_the_committed_artifacts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("node")
            .arg("compile.js")
            .arg("--check")
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("node is needed (packaging/dev-setup.sh installs it): {e}"));
        assert!(
            out.status.success(),
            "compile.js --check failed (solc-js comes from `npm ci --prefix daemons/l1`):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

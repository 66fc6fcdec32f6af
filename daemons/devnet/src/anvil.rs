//! Finding and starting anvil, the L1 devnet node (npm
//! `@foundry-rs/anvil-linux-amd64`, installed by the README's set-up).

use std::path::{Path, PathBuf};

use alloy::node_bindings::{Anvil, AnvilInstance};

/// Where anvil is looked for, in order: `$ANVIL_PATH`, `anvil` on `$PATH`,
/// the npm package under `daemons/l1/node_modules` of this source tree,
/// and `/usr/lib/aztec-prover/node_modules`.
pub fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("ANVIL_PATH") {
        v.push(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        v.extend(std::env::split_paths(&path).map(|d| d.join("anvil")));
    }
    let npm = Path::new("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    v.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../l1")
            .join(npm),
    );
    v.push(Path::new("/usr/lib/aztec-prover").join(npm));
    v
}

/// The first anvil binary found, or an error naming every place searched.
pub fn find() -> Result<PathBuf, String> {
    let all = candidates();
    all.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "anvil not found; searched {}. Install it with `npm install --prefix daemons/l1` \
             (packaging/dev-setup.sh does) or set ANVIL_PATH",
            all.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Starts anvil on `port` (0: any free port), mining a block every
/// `block_time` seconds so that L1 time follows the clock, with Ethereum's
/// per-transaction gas cap (EIP-7825, 16,777,216 since Osaka) enforced. With
/// `state`, the chain is loaded from and saved to that file, so a restart
/// keeps it.
pub fn spawn(port: u16, block_time: u64, state: Option<&Path>) -> Result<AnvilInstance, String> {
    let bin = find()?;
    let port = if port == 0 { free_port()? } else { port };
    let mut a = Anvil::new().path(&bin).port(port).args([
        "--block-time",
        &block_time.to_string(),
        "--enable-tx-gas-limit",
    ]);
    if let Some(s) = state {
        a = a.arg("--state").arg(s);
    }
    let mut anvil = a
        .keep_stdout()
        .try_spawn()
        .map_err(|e| format!("starting {} on port {port}: {e}", bin.display()))?;
    // anvil logs every request to stdout: keep reading it (at trace level)
    // so that it never blocks on a full pipe nor dies of a closed one.
    if let Some(out) = anvil.child_mut().stdout.take() {
        std::thread::Builder::new()
            .name("anvil-stdout".into())
            .spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    tracing::trace!(target: "anvil", "{line}");
                }
            })
            .map_err(|e| format!("reading anvil's output: {e}"))?;
    }
    Ok(anvil)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

#!/usr/bin/env node
// Compiles contracts/*.sol with solc-js into artifacts/<Contract>.json.
//
//   node compile.js          write the artifacts
//   node compile.js --check  compile and fail if a committed artifact differs
//
// Each artifact records the sha256 of every source it was built from, so a
// Rust test can tell a stale artifact without running the compiler.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const solc = require('solc');

const here = __dirname;
const srcDir = path.join(here, 'contracts');
const outDir = path.join(here, 'artifacts');
// The contracts the Rust side deploys or calls.
const WANTED = ['FeeToken', 'ProofCommitmentEscrow', 'Rollup', 'Groth16EpochVerifier', 'MockEpochVerifier'];
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  viaIR: true,
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function sourcesDigest(files) {
  const h = crypto.createHash('sha256');
  for (const f of files) {
    h.update(f + '\0');
    h.update(fs.readFileSync(path.join(srcDir, f)));
    h.update('\0');
  }
  h.update(JSON.stringify(SETTINGS));
  return h.digest('hex');
}

function main() {
  const check = process.argv.includes('--check');
  const files = fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort();
  const sources = {};
  for (const f of files) sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
  const started = Date.now();
  const out = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources, settings: SETTINGS })));
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  for (const e of out.errors || []) process.stderr.write(e.formattedMessage + '\n');
  if (errors.length > 0) process.exit(1);
  const digest = sourcesDigest(files);
  let stale = 0;
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of WANTED) {
    const file = Object.keys(out.contracts).find((f) => out.contracts[f][name]);
    if (!file) throw new Error(`contract ${name} not found in the sources`);
    const c = out.contracts[file][name];
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: `solc-js ${solc.version()}`,
      sourcesSha256: digest,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    const text = JSON.stringify(artifact, null, 2) + '\n';
    const target = path.join(outDir, `${name}.json`);
    if (check) {
      const old = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
      if (old !== text) {
        process.stderr.write(`stale: ${path.relative(here, target)} differs from what ${file} compiles to\n`);
        stale++;
      }
    } else {
      fs.writeFileSync(target, text);
      process.stdout.write(`wrote ${path.relative(here, target)} (${(c.evm.bytecode.object.length / 2)} bytes of code)\n`);
    }
  }
  process.stdout.write(`compiled ${files.length} sources with solc ${solc.version()} in ${Date.now() - started} ms\n`);
  if (stale > 0) {
    process.stderr.write('run `node daemons/l1/compile.js` and commit the artifacts\n');
    process.exit(1);
  }
}

main();

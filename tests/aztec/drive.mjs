// Aztec's own prover client (@aztec/prover-client 4.1.2: its broker
// clients, its ProvingAgent, and the BrokerCircuitProverFacade its node's
// orchestrator enqueues through) driving a broker. tests/aztec.rs runs it.
//
//   node drive.mjs api   <url> <type names, comma-separated> <priority, comma-separated>
//       every method of Aztec's broker client, in its three namespaces, against <url>;
//       checks the type table our broker uses against Aztec's own enum; ends with "API OK"
//   node drive.mjs run   <url> <jobs> <agents> [prove ms]
//       the facade enqueues <jobs> jobs, <agents> Aztec agents prove them with a
//       stand-in circuit prover; prints "progress <settled>" and ends with "RUN OK ..."
//   node drive.mjs serve-theirs
//       Aztec's own broker (in memory) over HTTP; prints "LISTENING <port>"
//
// Only pure-JS modules are loaded: the package index pulls in the native
// @aztec/bb.js, which needs a newer libstdc++ than Debian 12 has.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

const here = (p) => new URL(`./node_modules/${p}`, import.meta.url).href;
const broker = (p) => here(`@aztec/prover-client/dest/proving_broker/${p}`);

const rpc = await import(broker('rpc.js'));
const { ProvingAgent } = await import(broker('proving_agent.js'));
const { BrokerCircuitProverFacade } = await import(broker('broker_prover_facade.js'));
const { ProvingRequestType } = await import(here('@aztec/stdlib/dest/proofs/proving_request_type.js'));

// The URI form of Aztec's InlineProofStore (data: URI of percent-encoded
// JSON), without its per-circuit schemas: the stand-in inputs here are not
// real circuit inputs.
const PREFIX = 'data:application/json;charset=utf-8,';
class PlainInlineProofStore {
  encode(obj) {
    return Promise.resolve(PREFIX + encodeURIComponent(JSON.stringify(obj)));
  }
  decode(uri) {
    if (!uri.startsWith(PREFIX)) throw new Error(`not an inline URI: ${uri.slice(0, 60)}`);
    return Promise.resolve(JSON.parse(decodeURIComponent(uri.slice(PREFIX.length))));
  }
  saveProofInput(_id, type, inputs) { return this.encode({ type, inputs }); }
  saveProofOutput(_id, type, result) { return this.encode({ type, result }); }
  getProofInput(uri) { return this.decode(uri); }
  getProofOutput(uri) { return this.decode(uri); }
}

// A circuit prover that answers every get...Proof with fixed bytes (and the
// input's tag, so that each result can be matched to its job), after
// `delayMs`, counting how often each job was proven.
function standInProver(delayMs, provings) {
  return new Proxy({}, {
    get(_target, name) {
      if (typeof name !== 'string' || !name.startsWith('get')) return undefined;
      return async (inputs, signal) => {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        if (signal?.aborted) throw new Error('aborted');
        provings.set(inputs.tag, (provings.get(inputs.tag) ?? 0) + 1);
        return { proof: 'AAECAwQFBgcICQ==', tag: inputs.tag };
      };
    },
  });
}

function jobId(epoch, type, inputs) {
  const hash = createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
  return `${epoch}:${ProvingRequestType[type]}:${hash}`;
}

async function rawPost(url, body) {
  const resp = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: resp.status, json: await resp.json() };
}

async function api(url, names, priority) {
  // The broker's table is Aztec's own enum and priority order.
  names.forEach((name, n) => assert.equal(ProvingRequestType[name], n, `type ${name}`));
  assert.equal(Object.keys(ProvingRequestType).filter((k) => isNaN(Number(k))).length, names.length);
  const { PROOF_TYPES_IN_PRIORITY_ORDER } = await import(broker('proving_broker.js'));
  assert.deepEqual(priority, PROOF_TYPES_IN_PRIORITY_ORDER);

  const client = rpc.createProvingJobBrokerClient(url);
  const producer = rpc.createProvingJobProducerClient(url);
  const consumer = rpc.createProvingJobConsumerClient(url);
  const store = new PlainInlineProofStore();
  const T = ProvingRequestType;
  const make = async (epoch, type, tag) => {
    const inputs = { tag };
    return { id: jobId(epoch, type, inputs), type, epochNumber: epoch, inputsUri: await store.saveProofInput('', type, inputs) };
  };
  let calls = 0;
  const call = async (what, p) => { const r = await p; calls++; return r; };

  // Producer side through the whole broker's namespace.
  const j1 = await make(1, T.PARITY_BASE, 'one');
  assert.deepEqual(await call('enqueue', client.enqueueProvingJob(j1)), { status: 'not-found' });
  assert.deepEqual(await call('enqueue again', client.enqueueProvingJob(j1)), { status: 'in-queue' });
  await assert.rejects(client.enqueueProvingJob({ ...j1, inputsUri: j1.inputsUri + 'x' }), /Duplicate proving job ID/);
  assert.deepEqual(await call('status', client.getProvingJobStatus(j1.id)), { status: 'in-queue' });
  assert.deepEqual(await call('status unknown', client.getProvingJobStatus('1:PARITY_BASE:nope')), { status: 'not-found' });

  // Consumer side: a filter that admits nothing queued, then the job.
  assert.equal(await call('get none', client.getProvingJob({ allowList: [T.ROOT_ROLLUP] })), undefined);
  const lease = await call('get', client.getProvingJob({ allowList: [T.PARITY_BASE] }));
  assert.deepEqual(lease.job, j1);
  assert.equal(typeof lease.time, 'number');
  assert.deepEqual(await call('status leased', client.getProvingJobStatus(j1.id)), { status: 'in-progress' });
  assert.equal(await call('progress', client.reportProvingJobProgress(j1.id, lease.time, { allowList: [] })), undefined);
  const proofUri = await store.saveProofOutput(j1.id, T.PARITY_BASE, { proof: 'AAEC', tag: 'one' });
  assert.equal(await call('success', client.reportProvingJobSuccess(j1.id, proofUri, { allowList: [] })), undefined);
  assert.deepEqual(await call('status fulfilled', client.getProvingJobStatus(j1.id)), { status: 'fulfilled', value: proofUri });
  assert.deepEqual(await call('enqueue settled', client.enqueueProvingJob(j1)), { status: 'fulfilled', value: proofUri });
  // Notices since the last call, then the settled ones asked for.
  assert.deepEqual(await call('completed', client.getCompletedJobs([j1.id])), [j1.id, j1.id]);
  assert.deepEqual(await call('completed again', client.getCompletedJobs([])), []);
  // A second success for a settled job is ignored.
  assert.equal(await call('success twice', client.reportProvingJobSuccess(j1.id, proofUri + 'x')), undefined);
  assert.deepEqual(await client.getProvingJobStatus(j1.id), { status: 'fulfilled', value: proofUri });

  // The side namespaces: errors with and without retry, and a success
  // that brings the next job with it.
  const j2 = await make(1, T.PRIVATE_TX_BASE_ROLLUP, 'two');
  const j3 = await make(1, T.TX_MERGE_ROLLUP, 'three');
  assert.deepEqual(await call('producer enqueue', producer.enqueueProvingJob(j2)), { status: 'not-found' });
  assert.deepEqual(await call('producer enqueue', producer.enqueueProvingJob(j3)), { status: 'not-found' });
  const first = await call('consumer get', consumer.getProvingJob());
  assert.deepEqual(first.job, j3, 'merge before base: Aztec priority');
  const next = await call('consumer success', consumer.reportProvingJobSuccess(j3.id, proofUri, { allowList: [] }));
  assert.deepEqual(next.job, j2);
  assert.equal(await call('error retry', consumer.reportProvingJobError(j2.id, 'flaky', true, { allowList: [] })), undefined);
  assert.deepEqual((await consumer.getProvingJob({ allowList: [T.PRIVATE_TX_BASE_ROLLUP] })).job, j2);
  assert.equal(await call('error final', consumer.reportProvingJobError(j2.id, 'broken inputs', false)), undefined);
  assert.deepEqual(await producer.getProvingJobStatus(j2.id), { status: 'rejected', reason: 'broken inputs' });

  const j4 = await make(2, T.ROOT_ROLLUP, 'four');
  await producer.enqueueProvingJob(j4);
  assert.equal(await call('cancel', producer.cancelProvingJob(j4.id)), undefined);
  assert.deepEqual(await producer.getProvingJobStatus(j4.id), { status: 'rejected', reason: 'Aborted' });
  assert.equal(await call('cancel unknown', producer.cancelProvingJob('2:ROOT_ROLLUP:none')), undefined);
  assert.equal(await call('progress unknown', consumer.reportProvingJobProgress('none', 1, { allowList: [] })), undefined);
  const done = await call('completed', producer.getCompletedJobs([]));
  assert.deepEqual(new Set(done), new Set([j3.id, j2.id, j4.id]));

  // A large inline input (a real base rollup's is a few hundred KiB) comes
  // back byte for byte. (Epoch 2: proving a job of epoch 3 would move the
  // retention window past epoch 1, whose jobs are read again below.)
  const big = await make(2, T.PUBLIC_VM, 'big-' + 'é%,x'.repeat(200_000));
  await producer.enqueueProvingJob(big);
  const bigLease = await consumer.getProvingJob({ allowList: [T.PUBLIC_VM] });
  assert.equal(bigLease.job.inputsUri, big.inputsUri);
  assert.equal(await consumer.reportProvingJobSuccess(big.id, big.inputsUri), undefined);
  assert.deepEqual(await producer.getProvingJobStatus(big.id), { status: 'fulfilled', value: big.inputsUri });

  // Outside Aztec's client: one request (not a batch) that fails is HTTP
  // 400 with Aztec's codes; a method of the wrong side is not found.
  const bad = await rawPost(url, { jsonrpc: '2.0', id: 1, method: 'proverBroker_getProvingJob', params: [{ allowList: [99] }] });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, -32701);
  const wrongSide = await rawPost(url, { jsonrpc: '2.0', id: 2, method: 'provingJobConsumer_enqueueProvingJob', params: [j1] });
  assert.equal(wrongSide.status, 400);
  assert.equal(wrongSide.json.error.code, -32601);
  const ok = await rawPost(url, { jsonrpc: '2.0', id: 3, method: 'provingJobProducer_getProvingJobStatus', params: [j1.id] });
  assert.equal(ok.status, 200);
  const batch = await rawPost(url, [
    { jsonrpc: '2.0', id: 4, method: 'proverBroker_getProvingJobStatus', params: [j1.id] },
    { jsonrpc: '2.0', id: 5, method: 'proverBroker_getProvingJob', params: [{ allowList: ['x'] }] },
  ]);
  assert.equal(batch.status, 200);
  assert.equal(batch.json[0].result.status, 'fulfilled');
  assert.equal(batch.json[1].error.code, -32701);
  console.log(`API OK: ${calls} calls answered as Aztec's broker answers them`);
}

// The workload: the facade enqueues `jobs` jobs of four types over two
// epochs; `agents` of Aztec's agents prove them. Returns when every job's
// promise has settled.
async function workload(url, jobs, agents, proveMs, onProgress) {
  const store = new PlainInlineProofStore();
  const provings = new Map();
  const facade = new BrokerCircuitProverFacade(rpc.createProvingJobProducerClient(url), store, undefined, 50);
  facade.start();
  const running = [];
  for (let i = 0; i < agents; i++) {
    const agent = new ProvingAgent(rpc.createProvingJobConsumerClient(url), store, standInProver(proveMs, provings), [], 50);
    agent.start();
    running.push(agent);
  }
  const types = [ProvingRequestType.PARITY_BASE, ProvingRequestType.PRIVATE_TX_BASE_ROLLUP,
    ProvingRequestType.TX_MERGE_ROLLUP, ProvingRequestType.BLOCK_ROOT_ROLLUP];
  // Fresh ids on every run: a job a broker already proved would be
  // answered from its results.
  const salt = createHash('sha256').update(`${process.pid}:${Date.now()}:${Math.random()}`).digest('hex').slice(0, 16);
  const started = Date.now();
  let settled = 0;
  const results = [];
  for (let i = 0; i < jobs; i++) {
    const inputs = { tag: `job-${i}`, salt, pad: 'x'.repeat(200) };
    const type = types[i % types.length];
    const epoch = 1 + Math.floor((2 * i) / jobs);
    results.push(
      facade.enqueueJob(jobId(epoch, type, inputs), type, inputs, epoch).then(
        (r) => { settled++; onProgress(settled); return r; },
        (e) => { settled++; onProgress(settled); throw e; },
      ),
    );
  }
  const outcomes = await Promise.allSettled(results);
  const seconds = (Date.now() - started) / 1000;
  for (const a of running) await a.stop();
  await facade.stop().catch(() => {});
  const failed = outcomes
    .map((o, i) => (o.status === 'fulfilled' && o.value?.tag === `job-${i}` ? null : `job-${i}: ${o.reason ?? JSON.stringify(o.value)}`))
    .filter((x) => x);
  const totalProvings = [...provings.values()].reduce((a, b) => a + b, 0);
  return { failed, seconds, totalProvings, provedTwice: [...provings.values()].filter((n) => n > 1).length };
}

async function run(url, jobs, agents, proveMs) {
  let last = 0;
  const r = await workload(url, jobs, agents, proveMs, (n) => {
    if (n - last >= 5 || n === jobs) { last = n; console.log(`progress ${n}`); }
  });
  if (r.failed.length > 0) {
    console.log(`RUN FAILED: ${r.failed.length} of ${jobs} jobs: ${r.failed.slice(0, 5).join('; ')}`);
    process.exit(1);
  }
  console.log(`RUN OK jobs=${jobs} agents=${agents} provings=${r.totalProvings} proved_twice=${r.provedTwice} seconds=${r.seconds.toFixed(2)} jobs_per_s=${(jobs / r.seconds).toFixed(1)}`);
}

async function serveTheirs() {
  const { ProvingBroker } = await import(broker('proving_broker.js'));
  const { InMemoryBrokerDatabase } = await import(broker('proving_broker_database/memory.js'));
  const server = await import(here('@aztec/foundation/dest/json-rpc/server/safe_json_rpc_server.js'));
  const theirs = new ProvingBroker(new InMemoryBrokerDatabase(), {
    proverBrokerJobTimeoutMs: 30_000,
    proverBrokerPollIntervalMs: 1_000,
    proverBrokerJobMaxRetries: 3,
    proverBrokerMaxEpochsToKeepResultsFor: 1,
  });
  await theirs.start();
  const rpcServer = server.createNamespacedSafeJsonRpcServer({ proverBroker: [theirs, rpc.ProvingJobBrokerSchema],
    provingJobProducer: [theirs, rpc.ProvingJobProducerSchema], provingJobConsumer: [theirs, rpc.ProvingJobConsumerSchema] });
  const http = await server.startHttpRpcServer(rpcServer, { host: '127.0.0.1', port: 0 });
  console.log(`LISTENING ${http.port}`);
}

const [mode, url, ...rest] = process.argv.slice(2);
try {
  if (mode === 'api') await api(url, rest[0].split(','), rest[1].split(',').map(Number));
  else if (mode === 'run') await run(url, Number(rest[0]), Number(rest[1]), Number(rest[2] ?? 20));
  else if (mode === 'serve-theirs') await serveTheirs();
  else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  console.log(`FAILED: ${e?.stack ?? e}`);
  process.exit(1);
}
if (mode !== 'serve-theirs') process.exit(0);

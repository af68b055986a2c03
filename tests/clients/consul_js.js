// npm consul 2.0.1 against a maregistry node, as an application uses it: register with a
// TTL check (critical until the first pass), pass, list through health and catalog, a
// watch (blocking queries) woken by a change, the TTL running out, deregister; KV set, get,
// recurse, CAS and a watched KV read woken by a set. Every step is checked here; prints
// DONE at the end (a failure exits non-zero).
// Usage: node consul_js.js HOST PORT
'use strict';
const assert = require('assert');
const Consul = require('consul');

const [host, port] = process.argv.slice(2);
const consul = new Consul({ host, port: Number(port) });
const sleep = ms => new Promise(ok => setTimeout(ok, ms));

async function eventually(what, check, limit = 30000) {
  const deadline = Date.now() + limit;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function statuses(name) {
  const entries = await consul.health.service(name);
  return entries.flatMap(e => e.Checks).filter(c => c.CheckID !== 'serfHealth').map(c => c.Status);
}

// The first change a watch of `method` with `options` emits after its first answer.
function nextChange(method, options) {
  const watch = consul.watch({ method, options: { ...options, wait: '30s' } });
  let first = true;
  const changed = new Promise((ok, fail) => {
    watch.on('change', data => {
      if (first) { first = false; return; }
      watch.end();
      ok(data);
    });
    watch.on('error', e => { watch.end(); fail(e); });
  });
  return changed;
}

async function main() {
  // npm sends PascalCase.
  await consul.agent.service.register({
    name: 'js-web', id: 'js-web-1', address: '127.0.0.1', port: 8081, tags: ['v1', 'js'],
    meta: { team: 'b' }, check: { ttl: '2s' },
  });
  assert.deepStrictEqual(await statuses('js-web'), ['critical'], 'a new TTL check starts critical');
  assert.deepStrictEqual(await consul.health.service({ service: 'js-web', passing: true }), []);

  // A watch of the passing instances, woken by the first pass.
  const woken = nextChange(consul.health.service, { service: 'js-web', passing: true });
  await sleep(300);
  await consul.agent.check.pass({ id: 'service:js-web-1', note: 'fine' });
  const entries = await woken;
  assert.deepStrictEqual(entries.map(e => e.Service.ID), ['js-web-1']);
  assert.deepStrictEqual(entries[0].Service.Tags, ['v1', 'js']);
  assert.deepStrictEqual(entries[0].Service.Meta, { team: 'b' });

  const services = await consul.catalog.service.list();
  assert.deepStrictEqual([...services['js-web']].sort(), ['js', 'v1']);
  const nodes = await consul.catalog.service.nodes('js-web');
  assert.deepStrictEqual(nodes.map(n => n.ServiceID), ['js-web-1']);
  assert.ok('js-web-1' in await consul.agent.service.list());

  await eventually('the TTL runs out', async () => (await statuses('js-web')).join() === 'critical');
  await consul.agent.service.deregister('js-web-1');
  assert.deepStrictEqual(await consul.health.service('js-web'), []);

  // KV: npm percent-encodes the slashes of a key.
  assert.strictEqual(await consul.kv.set('js/app/db', 'postgres://db'), true);
  assert.strictEqual(await consul.kv.set('js/app/user', 'admin'), true);
  const entry = await consul.kv.get('js/app/db');
  assert.strictEqual(entry.Value, 'postgres://db');
  const tree = await consul.kv.get({ key: 'js/app', recurse: true });
  assert.deepStrictEqual(tree.map(e => e.Key), ['js/app/db', 'js/app/user']);
  assert.deepStrictEqual(await consul.kv.keys({ key: 'js/', separator: '/' }), ['js/app/']);
  assert.notStrictEqual(await consul.kv.set({ key: 'js/app/db', value: 'x', cas: entry.ModifyIndex - 1 }), true,
    'a stale CAS is refused');
  assert.strictEqual(await consul.kv.set({ key: 'js/app/db', value: 'mysql://db', cas: entry.ModifyIndex }), true);
  const kvWoken = nextChange(consul.kv.get, { key: 'js/app/db' });
  await sleep(300);
  await consul.kv.set('js/app/db', 'sqlite://');
  assert.strictEqual((await kvWoken).Value, 'sqlite://');
  await consul.kv.del({ key: 'js/app', recurse: true });
  assert.strictEqual(await consul.kv.get({ key: 'js/app', recurse: true }), undefined);
  console.log('DONE');
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});

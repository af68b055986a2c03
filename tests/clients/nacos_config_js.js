// nacos (npm) 2.6.3 config clients (the v1 HTTP API and its long poll) against a
// maregistry node: A publishes, reads, overwrites, subscribes and removes; it is told of a
// change made over HTTP by the test; N lives in another namespace. Also: a missing config,
// namespace and group isolation, unicode and large content.
// Each client gets a cluster-client name of its own: NacosConfigClient otherwise shares one
// client per machine, and a second one silently uses the first one's namespace.
// Checkpoints: LISTENING once A subscribes (the test then publishes over HTTP and answers a
// line), PUSHED once A heard it; it ends with "ok".
// Usage: node nacos_config_js.js HOST:PORT DATA_ID NAMESPACE
'use strict';
const { NacosConfigClient } = require('nacos');

const [server, dataId, namespace] = process.argv.slice(2);
const GROUP = 'JS_GROUP';
const LIMIT = 30000;

class OwnClient extends NacosConfigClient {
  get clusterOptions() {
    return { name: `maregistry-test@${this.options.namespace || 'public'}@${process.pid}` };
  }
}

function client(ns) {
  return new OwnClient({ serverAddr: server, namespace: ns, requestTimeout: 20000 });
}

async function until(what, check) {
  const deadline = Date.now() + LIMIT;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`nacos js config: timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

function check(ok, what) {
  if (!ok) throw new Error(`nacos js config: ${what}`);
}

(async () => {
  const a = client('');
  const n = client(namespace);
  await a.ready();
  await n.ready();
  check(await a.getConfig(dataId, GROUP) == null, 'a missing config reads null');
  check(await a.publishSingle(dataId, GROUP, 'js: 1 ✓ 配置', { type: 'yaml' }), 'publish');
  check(await a.getConfig(dataId, GROUP) === 'js: 1 ✓ 配置', 'read back');
  check(await a.publishSingle(dataId, GROUP, 'js: 2'), 'overwrite');
  check(await a.getConfig(dataId, GROUP) === 'js: 2', 'the overwrite read back');

  const heard = [];
  a.subscribe({ dataId, group: GROUP }, content => heard.push(content));
  await until('the subscriber\'s first call', () => heard.length > 0 && heard[heard.length - 1] === 'js: 2');
  console.log('LISTENING');
  await new Promise(r => process.stdin.once('data', r));
  await until('A told of the HTTP change', () => heard[heard.length - 1] === 'from HTTP');
  console.log('PUSHED');

  check(await n.getConfig(dataId, GROUP) == null, 'another namespace does not see it');
  check(await a.getConfig(dataId, 'OTHER_GROUP') == null, 'another group does not see it');
  check(await n.publishSingle(dataId, GROUP, 'in the namespace'), 'publish in the namespace');
  check(await n.getConfig(dataId, GROUP) === 'in the namespace', 'the namespace reads its own');
  check(await a.getConfig(dataId, GROUP) === 'from HTTP', 'the public one is untouched');

  const large = '配置 ✓ line\n'.repeat(30000);
  check(await a.publishSingle(dataId, GROUP, large), 'publish large');
  check(await a.getConfig(dataId, GROUP) === large, 'large read back');
  await until('A told of the large content', () => heard[heard.length - 1] === large);

  check(await a.remove(dataId, GROUP), 'remove');
  check(await a.getConfig(dataId, GROUP) == null, 'removed');
  await until('A told of the removal', () => heard[heard.length - 1] == null);
  a.close();
  n.close();
  console.log('ok');
  process.exit(0);
})().catch(e => { console.error(e && e.stack || e); process.exit(1); });

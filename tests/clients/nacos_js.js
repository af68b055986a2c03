// nacos (npm) 2.6.3 against a maregistry node: register two instances, see both,
// heartbeat, deregister one and see one, deregister the other (the client ignores an
// empty list, so the test checks emptiness itself).
// Usage: node nacos_js.js HOST:PORT SERVICE [BEAT_WAIT_MS]
'use strict';
const { NacosNamingClient } = require('nacos');

const [server, service, beatWait] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error: console.error, log() {} };

async function until(what, check, client, limit = 20000) {
  const deadline = Date.now() + limit;
  for (;;) {
    const hosts = await client.getAllInstances(service, 'DEFAULT_GROUP', '', false);
    const seen = hosts.map(h => `${h.ip}:${h.port}`).sort();
    if (check(seen, hosts)) return hosts;
    if (Date.now() > deadline) throw new Error(`nacos js: timed out waiting for ${what}; saw ${seen}`);
    await new Promise(r => setTimeout(r, 200));
  }
}

(async () => {
  const client = new NacosNamingClient({ logger: quiet, serverList: server, namespace: 'public' });
  await client.ready();
  await client.registerInstance(service, { ip: '10.0.1.1', port: 9090, metadata: { zone: 'us-1' } });
  await client.registerInstance(service, { ip: '10.0.1.2', port: 9090 });
  const hosts = await until('both instances', s => s.join() === '10.0.1.1:9090,10.0.1.2:9090', client);
  const first = hosts.find(h => h.ip === '10.0.1.1');
  if (first.metadata.zone !== 'us-1' || first.healthy !== true || first.clusterName !== 'DEFAULT') {
    throw new Error(`nacos js: the instance came back changed: ${JSON.stringify(first)}`);
  }
  // The test looks at them through the seed API meanwhile.
  console.log('REGISTERED');
  await new Promise(r => process.stdin.once('data', r));
  // The client's first beat comes 10 s after it started; then every clientBeatInterval.
  await new Promise(r => setTimeout(r, Number(beatWait || 0)));
  await client.deregisterInstance(service, { ip: '10.0.1.1', port: 9090 });
  await until('one instance', s => s.join() === '10.0.1.2:9090', client);
  await client.deregisterInstance(service, { ip: '10.0.1.2', port: 9090 });
  client.close();
  console.log('nacos js: ok');
  process.exit(0);
})().catch(e => { console.error(e && e.stack || e); process.exit(1); });

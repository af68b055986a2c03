// eureka-js-client 4.5.0 against a maregistry node (JSON): register two instances, see
// both, heartbeat, stop one and see one, stop the other and see none.
// Usage: node eureka_js.js HOST PORT APP
'use strict';
const { Eureka } = require('eureka-js-client');

const [host, port, app] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error: console.error };

function client(ip, zone, register = true) {
  return new Eureka({
    logger: quiet,
    instance: {
      app, instanceId: `${ip}:${app}:8080`, hostName: ip, ipAddr: ip,
      port: { $: 8080, '@enabled': true }, vipAddress: app, statusPageUrl: `http://${ip}:8080/info`,
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
      metadata: { zone },
    },
    eureka: {
      host, port: Number(port), servicePath: '/eureka/apps/', heartbeatInterval: 1000,
      registryFetchInterval: 500, maxRetries: 0, registerWithEureka: register,
    },
  });
}
const start = c => new Promise((ok, fail) => c.start(e => (e ? fail(e) : ok())));
const stop = c => new Promise(ok => c.stop(() => ok()));

async function until(what, watcher, expected, limit = 20000) {
  const deadline = Date.now() + limit;
  for (;;) {
    const seen = watcher.getInstancesByAppId(app).map(i => i.ipAddr).sort().join();
    if (seen === expected) return watcher.getInstancesByAppId(app);
    if (Date.now() > deadline) throw new Error(`eureka-js-client: timed out waiting for ${what}; saw ${seen}`);
    await new Promise(r => setTimeout(r, 100));
  }
}

(async () => {
  const first = client('10.0.3.1', 'us-1');
  const second = client('10.0.3.2', 'us-2');
  const watcher = client('10.0.3.9', '', false);
  await start(first);
  await start(second);
  await start(watcher);
  const both = await until('both instances', watcher, '10.0.3.1,10.0.3.2');
  const one = both.find(i => i.ipAddr === '10.0.3.1');
  if (one.metadata.zone !== 'us-1' || one.port.$ !== 8080 || one.status !== 'UP') {
    throw new Error(`eureka-js-client: the instance came back changed: ${JSON.stringify(one)}`);
  }
  console.log('REGISTERED');
  await new Promise(r => process.stdin.once('data', r));
  await new Promise(r => setTimeout(r, 3500)); // heartbeats, every second
  await stop(second);
  await until('one instance', watcher, '10.0.3.1');
  await stop(first);
  await until('no instance', watcher, '');
  await stop(watcher);
  console.log('eureka-js-client: ok');
  process.exit(0);
})().catch(e => { console.error(e && e.stack || e); process.exit(1); });

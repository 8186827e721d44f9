// MQTT.js peer for CloudEdge broker interop tests. Usage: node mqttjs-interop.js <scenario> <port> <protocolVersion>
// Prints one JSON object (the observations) on stdout; exits non-zero on failure or after 30 s.
'use strict';
const mqtt = require('mqtt');

const [scenario, port, version] = process.argv.slice(2);
const protocolVersion = Number(version || 5);
const url = `mqtt://127.0.0.1:${port}`;
const timer = setTimeout(() => { console.error('timeout'); process.exit(2); }, 30000);

function connect(clientId, extra) {
  return mqtt.connectAsync(url, { clientId, protocolVersion, reconnectPeriod: 0, connectTimeout: 10000, ...extra });
}

function collect(client, count) {
  return new Promise((resolve) => {
    const seen = [];
    client.on('message', (topic, payload, packet) => {
      seen.push({
        topic,
        qos: packet.qos,
        retain: packet.retain,
        payloadHex: payload.toString('hex'),
        userProperties: (packet.properties && packet.properties.userProperties) || null,
        subscriptionIdentifier: (packet.properties && packet.properties.subscriptionIdentifier) || null,
      });
      if (seen.length === count) resolve(seen);
    });
  });
}

async function roundtrip() {
  const sub = await connect('js-sub');
  const granted = await sub.subscribeAsync({ 'js/#': { qos: 2 } }, protocolVersion === 5 ? { properties: { subscriptionIdentifier: 7 } } : {});
  const pub = await connect('js-pub');
  const received = collect(sub, 3);
  const v5 = protocolVersion === 5;
  await pub.publishAsync('js/qos0', Buffer.from([0, 1, 2, 255]), { qos: 0, ...(v5 ? { properties: { userProperties: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } } } : {}) });
  await pub.publishAsync('js/qos1', Buffer.from('one'), { qos: 1 });
  await pub.publishAsync('js/qos2', Buffer.from('two'), { qos: 2 });
  const messages = (await received).sort((a, b) => a.topic.localeCompare(b.topic));
  await pub.endAsync();
  await sub.endAsync();
  return { granted: granted.map((g) => g.qos), messages };
}

async function topicAlias() {
  const sub = await connect('js-alias-sub', { properties: { topicAliasMaximum: 5 } });
  await sub.subscribeAsync('alias/#', { qos: 1 });
  const pub = await connect('js-alias-pub', { autoAssignTopicAlias: true });
  const received = collect(sub, 3);
  for (const payload of ['a', 'b', 'c']) {
    await pub.publishAsync('alias/very/long/topic/name', Buffer.from(payload), { qos: 1 });
  }
  const messages = await received;
  await pub.endAsync();
  await sub.endAsync();
  return { messages };
}

async function persistentSession() {
  const options = { clean: false, properties: { sessionExpiryInterval: 300 } };
  const first = await connect('js-durable', protocolVersion === 5 ? options : { clean: false });
  await first.subscribeAsync('durable/t', { qos: 1 });
  await first.endAsync();
  const pub = await connect('js-durable-pub');
  await pub.publishAsync('durable/t', Buffer.from('kept while offline'), { qos: 1 });
  await pub.endAsync();
  const second = mqtt.connect(url, { clientId: 'js-durable', protocolVersion, reconnectPeriod: 0, ...(protocolVersion === 5 ? options : { clean: false }) });
  const sessionPresent = new Promise((resolve) => second.once('connect', (ack) => resolve(ack.sessionPresent)));
  const received = collect(second, 1);
  const result = { sessionPresent: await sessionPresent, messages: await received };
  await second.endAsync();
  return result;
}

const scenarios = { roundtrip, topicAlias, persistentSession };
scenarios[scenario]()
  .then((result) => { clearTimeout(timer); process.stdout.write(JSON.stringify(result)); process.exit(0); })
  .catch((err) => { console.error(err && err.stack || String(err)); process.exit(1); });

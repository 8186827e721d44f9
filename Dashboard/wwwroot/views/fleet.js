// Fleet overview: gateways, devices online and offline (live from /live/status), the device table,
// and the live alert feed (/live/alerts) with each alert's trace id.
import { getAll, ApiError } from '../api.js';
import { LiveStream, RecentItems } from '../live.js';
import { el, clear, thead, coalesce, connectionBadge, formatDateTime, formatNumber, formatTime, message, traceId } from '../dom.js';

const maxAlertRows = 200;
const refreshEvery = 15000;

export function fleetView(root) {
  const devices = new Map();
  const shownAlerts = new RecentItems();
  let gateways = [];
  const abort = new AbortController();

  const counts = {
    online: el('strong', { dataset: { testid: 'devices-online' } }, '—'),
    offline: el('strong', { dataset: { testid: 'devices-offline' } }, '—'),
    total: el('strong', { dataset: { testid: 'devices-total' } }, '—'),
    gateways: el('strong', { dataset: { testid: 'gateways-total' } }, '—'),
  };
  const alertBody = el('tbody', { dataset: { testid: 'alert-feed' } });
  const alertEmpty = el('tr', { class: 'empty' }, el('td', { colspan: 7 }, 'Waiting for alerts…'));
  alertBody.append(alertEmpty);
  const gatewayBody = el('tbody');
  const deviceBody = el('tbody');
  const gatewayNote = el('div');
  const deviceNote = el('div');

  root.append(
    el('h1', {}, 'Fleet'),
    el('section', { class: 'cards', 'aria-label': 'Fleet counts' },
      card('Devices online', counts.online, 'online'),
      card('Devices offline', counts.offline, 'offline'),
      card('Devices', counts.total),
      card('Gateways', counts.gateways)),
    el('section', { class: 'card', 'aria-labelledby': 'alerts-title' },
      el('h2', { id: 'alerts-title' }, 'Live alerts'),
      el('div', { class: 'scroll' },
        el('table', { dataset: { testid: 'alert-table' } },
          thead(['Time', 'Device', 'Kind', 'Value', 'Score', 'Model', 'Trace id'], ['Value', 'Score']),
          alertBody))),
    el('section', { class: 'card', 'aria-labelledby': 'gateways-title' },
      el('h2', { id: 'gateways-title' }, 'Gateways'),
      gatewayNote,
      el('div', { class: 'scroll' },
        el('table', {},
          thead(['Gateway', 'Devices', 'Last uplink', 'Applied', 'Rejected', 'Dropped', 'Model desired', 'Model reported'], ['Devices', 'Applied', 'Rejected', 'Dropped']),
          gatewayBody))),
    el('section', { class: 'card', 'aria-labelledby': 'devices-title' },
      el('h2', { id: 'devices-title' }, 'Devices'),
      deviceNote,
      el('div', { class: 'scroll' },
        el('table', { dataset: { testid: 'device-table' } },
          thead(['Device', 'Kind', 'Gateway', 'Connection', 'Last seen', 'Latest mean', 'Alerts'], ['Latest mean', 'Alerts']),
          deviceBody))));

  const renderDevices = coalesce(() => {
    const sorted = [...devices.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    const online = sorted.filter(d => d.connection === 'Online').length;
    counts.online.textContent = String(online);
    counts.offline.textContent = String(sorted.filter(d => d.connection === 'Offline').length);
    counts.total.textContent = String(sorted.length);
    clear(deviceBody).append(...sorted.map(deviceRow));
    if (sorted.length === 0) deviceBody.append(el('tr', { class: 'empty' }, el('td', { colspan: 7 }, 'No devices registered.')));
  });

  const renderGateways = coalesce(() => {
    counts.gateways.textContent = String(gateways.length);
    clear(gatewayBody).append(...gateways.map(gatewayRow));
    if (gateways.length === 0) gatewayBody.append(el('tr', { class: 'empty' }, el('td', { colspan: 8 }, 'No gateways yet.')));
  });

  async function load() {
    const [deviceList, gatewayList] = await Promise.allSettled([getAll('/devices', abort.signal), getAll('/gateways', abort.signal)]);
    if (deviceList.status === 'fulfilled') {
      clear(deviceNote);
      for (const device of deviceList.value) merge(device);
      renderDevices();
    } else {
      clear(deviceNote).append(problem(deviceList.reason));
    }
    if (gatewayList.status === 'fulfilled') {
      clear(gatewayNote);
      gateways = gatewayList.value.sort((a, b) => a.gatewayId.localeCompare(b.gatewayId));
      renderGateways();
    } else {
      clear(gatewayNote).append(problem(gatewayList.reason));
    }
  }

  // A REST view replaces what it knows, but never moves an alert count back below what the feed added.
  function merge(device) {
    const known = devices.get(device.deviceId);
    if (known && (known.alerts?.total ?? 0) > (device.alerts?.total ?? 0)) device.alerts = known.alerts;
    devices.set(device.deviceId, device);
  }

  function onStatus(_, event) {
    const device = devices.get(event.deviceId);
    if (!device) {
      // A gateway's own change (its model) or a device registered after the last read.
      load().catch(() => {});
      return;
    }
    if (event.status) {
      device.connection = event.status.connection ?? device.connection;
      device.lastSeen = event.status.lastSeen ?? device.lastSeen;
    }
    renderDevices();
  }

  function onAlert(_, event) {
    const alert = event.alert;
    if (!alert || !shownAlerts.add(alert.itemId)) return;
    alertEmpty.remove();
    alertBody.prepend(alertRow(event, alert));
    while (alertBody.rows.length > maxAlertRows) alertBody.lastElementChild.remove();
    const device = devices.get(event.deviceId);
    if (device) {
      // The REST view already counted alerts up to the device's highest seq from that gateway.
      const seen = device.highestSeq?.[alert.gatewayId] ?? -1;
      if (alert.seq > seen) {
        device.highestSeq = { ...device.highestSeq, [alert.gatewayId]: alert.seq };
        device.alerts = { ...device.alerts, total: (device.alerts?.total ?? 0) + 1, lastAt: alert.at, lastKind: alert.kind };
        device.latestAlert = alert;
        renderDevices();
      }
    }
  }

  const streams = [
    new LiveStream('status', '/status', { replay: 0, onEvent: onStatus }),
    new LiveStream('alerts', '/alerts', { replay: 50, onEvent: onAlert }),
  ];
  load().catch(() => {}).finally(() => { for (const stream of streams) stream.start(); });
  // Latest means and new gateways arrive through REST: the fleet streams carry status and alerts only.
  const refresh = setInterval(() => load().catch(() => {}), refreshEvery);

  return () => {
    abort.abort();
    clearInterval(refresh);
    for (const stream of streams) stream.close();
  };
}

function card(label, value, tone = '') {
  return el('div', { class: `card stat ${tone}` }, el('span', { class: 'label' }, label), value);
}

function problem(error) {
  return message(error instanceof ApiError ? `Could not load: ${error.message}` : 'Could not load.', 'error');
}

function deviceRow(device) {
  return el('tr', { dataset: { testid: 'device-row', deviceId: device.deviceId } },
    el('th', { scope: 'row' }, el('a', { href: `#/devices/${encodeURIComponent(device.deviceId)}` }, device.deviceId)),
    el('td', {}, device.kind),
    el('td', {}, device.gatewayId),
    el('td', {}, connectionBadge(device.connection)),
    el('td', {}, formatDateTime(device.lastSeen)),
    el('td', { class: 'num' }, formatNumber(device.latestSummary?.mean)),
    el('td', { class: 'num', dataset: { testid: 'device-alerts' } }, String(device.alerts?.total ?? 0)));
}

function gatewayRow(gateway) {
  const health = gateway.health ?? {};
  const drops = health.drops ?? {};
  const dropped = (drops.summaries ?? 0) + (drops.alerts ?? 0) + (drops.readings ?? 0);
  const desired = gateway.desired?.model;
  const reported = gateway.reported?.model;
  return el('tr', { dataset: { testid: 'gateway-row', gatewayId: gateway.gatewayId } },
    el('th', { scope: 'row' }, gateway.gatewayId),
    el('td', { class: 'num' }, String(gateway.devices?.length ?? gateway.deviceIds?.length ?? 0)),
    el('td', {}, formatDateTime(health.lastUplinkAt)),
    el('td', { class: 'num' }, String(health.applied ?? 0)),
    el('td', { class: 'num' }, String(health.rejected ?? 0)),
    el('td', { class: 'num', title: drops.lastReason ? `last: ${drops.lastReason}` : null }, String(dropped)),
    el('td', { dataset: { testid: 'gateway-model-desired' } }, desired ? `${desired.name} ${desired.version}` : '—'),
    el('td', { dataset: { testid: 'gateway-model-reported' } },
      reported ? `${reported.name} ${reported.version} (${reported.status ?? '?'})` : '—',
      reported?.error ? el('span', { class: 'error' }, ` ${reported.error}`) : null));
}

function alertRow(event, alert) {
  const deviceId = event.deviceId ?? '';
  return el('tr', { class: 'arrived', dataset: { testid: 'alert-row', deviceId, seq: String(event.seq), itemId: alert.itemId ?? '' } },
    el('td', {}, el('time', { datetime: alert.at }, formatTime(alert.at))),
    el('td', {}, el('a', { href: `#/devices/${encodeURIComponent(deviceId)}` }, deviceId)),
    el('td', {}, alert.kind),
    el('td', { class: 'num' }, formatNumber(alert.value)),
    el('td', { class: 'num' }, formatNumber(alert.score, 3)),
    el('td', { dataset: { testid: 'alert-model' } }, alert.modelVersion ?? '—'),
    el('td', {}, traceId(alert.traceId ?? event.traceId)));
}

// One device: a live Chart.js chart of window summaries (min, mean, max over windowEnd) with anomaly
// markers, its model version, twin desired and reported properties, and recent alerts with trace ids.
import { getJson, ApiError } from '../api.js';
import { LiveStream, RecentItems } from '../live.js';
import { el, clear, thead, coalesce, connectionBadge, formatDateTime, formatNumber, formatTime, message, traceId } from '../dom.js';

const maxPoints = 500;
const maxAlertRows = 50;
const twinRefreshEvery = 15000;
const colors = { max: '#d9480f', mean: '#1f6feb', min: '#2b8a3e', anomaly: '#c92a2a', anomalyWindow: '#f59f00' };

export function deviceView(root, deviceId) {
  const abort = new AbortController();
  const summariesByKind = new Map();
  const alerts = [];
  const shownAlerts = new RecentItems();
  let device = null;
  let shownKind = null;
  // The version that scored the newest window or alert: newer than the twin's last REST read.
  let liveModelVersion = null;

  const title = el('h1', {}, 'Device ', el('span', { class: 'mono' }, deviceId));
  const badge = el('span');
  const facts = el('dl', { class: 'facts' });
  const note = el('div');
  const kindPicker = el('select', { id: 'summary-kind', 'aria-label': 'Summary kind', hidden: true });
  const canvas = el('canvas', { dataset: { testid: 'summary-chart' }, role: 'img', 'aria-label': `Window summaries of ${deviceId}: minimum, mean and maximum over time, anomalies marked` });
  const chartNote = el('p', { class: 'hint', dataset: { testid: 'summary-count' } }, 'Waiting for summaries…');
  const desired = el('div', { dataset: { testid: 'twin-desired' } });
  const reported = el('div', { dataset: { testid: 'twin-reported' } });
  const alertBody = el('tbody', { dataset: { testid: 'device-alerts' } });

  root.append(
    el('p', { class: 'crumbs' }, el('a', { href: '#/' }, 'Fleet'), ' / ', deviceId),
    el('div', { class: 'title-row' }, title, badge),
    note,
    el('section', { class: 'card', 'aria-label': 'Device facts' }, facts),
    el('section', { class: 'card', 'aria-labelledby': 'chart-title' },
      el('div', { class: 'title-row' }, el('h2', { id: 'chart-title' }, 'Window summaries'), kindPicker),
      el('div', { class: 'chart-box' }, canvas),
      chartNote),
    el('div', { class: 'columns' },
      el('section', { class: 'card', 'aria-labelledby': 'desired-title' }, el('h2', { id: 'desired-title' }, 'Twin: desired'), desired),
      el('section', { class: 'card', 'aria-labelledby': 'reported-title' }, el('h2', { id: 'reported-title' }, 'Twin: reported'), reported)),
    el('section', { class: 'card', 'aria-labelledby': 'device-alerts-title' },
      el('h2', { id: 'device-alerts-title' }, 'Recent alerts'),
      el('div', { class: 'scroll' },
        el('table', {},
          thead(['Time', 'Kind', 'Value', 'Score', 'Threshold', 'Model', 'Trace id'], ['Value', 'Score', 'Threshold']),
          alertBody))));

  const chart = createChart(canvas);
  kindPicker.addEventListener('change', () => { shownKind = kindPicker.value; renderChart(); });

  const renderChart = coalesce(() => {
    const kinds = [...summariesByKind.keys()].sort();
    if (!shownKind || !summariesByKind.has(shownKind)) {
      shownKind = device && summariesByKind.has(device.kind) ? device.kind : kinds[0] ?? null;
    }
    kindPicker.hidden = kinds.length < 2;
    // Rebuilt only when the kinds change, so an open picker is not closed under the user's pointer.
    if (kindPicker.options.length !== kinds.length) {
      clear(kindPicker).append(...kinds.map(kind => el('option', { value: kind }, kind)));
    }
    kindPicker.value = shownKind ?? '';
    const points = summariesByKind.get(shownKind) ?? [];
    const [max, mean, min, anomalies] = chart.data.datasets;
    max.data = points.map(s => ({ x: s.x, y: s.max }));
    mean.data = points.map(s => ({ x: s.x, y: s.mean }));
    min.data = points.map(s => ({ x: s.x, y: s.min }));
    // Windows that held anomalous readings are ringed on the mean line; alerts are marked where they happened.
    mean.pointRadius = points.map(s => (s.anomalyCount > 0 ? 5 : 0));
    mean.pointBackgroundColor = colors.anomalyWindow;
    anomalies.data = alerts
      .filter(a => !shownKind || a.kind === shownKind)
      .map(a => ({ x: Date.parse(a.at), y: a.value }))
      .filter(p => Number.isFinite(p.x) && Number.isFinite(p.y));
    chart.update('none');
    chartNote.textContent = points.length
      ? `${points.length} windows of ${shownKind}; last window ended ${formatTime(points.at(-1).windowEnd)}; ${anomalies.data.length} alerts marked.`
      : 'Waiting for summaries…';
  });

  const renderDevice = coalesce(() => {
    if (!device) return;
    clear(badge).append(connectionBadge(device.connection));
    const modelVersion = liveModelVersion ?? device.latestSummary?.modelVersion ?? device.latestAlert?.modelVersion ?? device.reported?.values?.modelVersion;
    clear(facts).append(...[
      fact('Kind', device.kind), fact('Hardware model', device.model), fact('Gateway', device.gatewayId),
      fact('Owner', device.ownerId), fact('Last seen', formatDateTime(device.lastSeen)),
      fact('Model version', el('span', { dataset: { testid: 'model-version' } }, String(modelVersion ?? '—'))),
      fact('Alerts', String(device.alerts?.total ?? 0)), fact('Registered', formatDateTime(device.registeredAt)),
    ].flat());
    clear(desired).append(properties(device.desired));
    clear(reported).append(properties(device.reported));
  });

  function addSummary(summary) {
    const x = Date.parse(summary.windowEnd);
    if (!Number.isFinite(x)) return;
    const list = summariesByKind.get(summary.kind) ?? [];
    summariesByKind.set(summary.kind, list);
    const point = { x, windowEnd: summary.windowEnd, min: summary.min, mean: summary.mean, max: summary.max, anomalyCount: summary.anomalyCount ?? 0 };
    // Windows normally arrive in order; a late one is put in its place, a repeated one replaces the first.
    let at = list.length;
    while (at > 0 && list[at - 1].x > x) at--;
    if (at > 0 && list[at - 1].x === x) list[at - 1] = point;
    else list.splice(at, 0, point);
    if (list.length > maxPoints) list.splice(0, list.length - maxPoints);
    renderChart();
  }

  function addAlert(alert, event) {
    // The twin (REST) already counted alerts up to its highest seq from that gateway.
    if (device && alert.seq > (device.highestSeq?.[alert.gatewayId] ?? -1)) {
      device.highestSeq = { ...device.highestSeq, [alert.gatewayId]: alert.seq };
      device.alerts = { ...device.alerts, total: (device.alerts?.total ?? 0) + 1 };
      renderDevice();
    }
    alerts.push(alert);
    if (alerts.length > maxPoints) alerts.shift();
    alertBody.prepend(el('tr', { dataset: { testid: 'device-alert-row', seq: String(event.seq), itemId: alert.itemId ?? '' } },
      el('td', {}, el('time', { datetime: alert.at }, formatTime(alert.at))),
      el('td', {}, alert.kind),
      el('td', { class: 'num' }, formatNumber(alert.value)),
      el('td', { class: 'num' }, formatNumber(alert.score, 3)),
      el('td', { class: 'num' }, formatNumber(alert.threshold, 3)),
      el('td', {}, alert.modelVersion ?? '—'),
      el('td', {}, traceId(alert.traceId ?? event.traceId))));
    while (alertBody.rows.length > maxAlertRows) alertBody.lastElementChild.remove();
    renderChart();
  }

  async function loadDevice() {
    try {
      device = await getJson(`/devices/${encodeURIComponent(deviceId)}`, abort.signal);
      clear(note);
      renderDevice();
      renderChart();
    } catch (error) {
      if (error.name === 'AbortError') return;
      clear(note).append(message(error instanceof ApiError && error.status === 404
        ? `No device '${deviceId}'.` : `Could not load the device: ${error.message}`, 'error'));
    }
  }

  const twinRefresh = coalesce(() => loadDevice());
  const stream = new LiveStream(`device ${deviceId}`, `/devices/${encodeURIComponent(deviceId)}`, {
    replay: 200,
    onEvent: (type, event) => {
      if (event.summary) addSummary(event.summary);
      if (event.alert && shownAlerts.add(event.alert.itemId)) addAlert(event.alert, event);
      const version = event.summary?.modelVersion ?? event.alert?.modelVersion ?? event.status?.modelVersion;
      if (version && version !== liveModelVersion) {
        liveModelVersion = version;
        renderDevice();
      }
      if (event.status && device) {
        device.connection = event.status.connection ?? device.connection;
        device.lastSeen = event.status.lastSeen ?? device.lastSeen;
        renderDevice();
        // A status change often comes with reported properties (model version): fetch the twin again.
        twinRefresh();
      }
    },
  });
  loadDevice().finally(() => stream.start());
  const refresh = setInterval(loadDevice, twinRefreshEvery);

  return () => {
    abort.abort();
    clearInterval(refresh);
    stream.close();
    chart.destroy();
  };
}

function createChart(canvas) {
  const line = (label, color) => ({
    label, borderColor: color, backgroundColor: color, data: [], pointRadius: 0, borderWidth: 2, tension: 0,
  });
  return new window.Chart(canvas, {
    type: 'line',
    data: {
      datasets: [
        line('max', colors.max),
        line('mean', colors.mean),
        line('min', colors.min),
        { type: 'scatter', label: 'anomaly alert', data: [], pointStyle: 'triangle', pointRadius: 7, borderColor: colors.anomaly, backgroundColor: colors.anomaly },
      ],
    },
    options: {
      animation: false,
      parsing: false,
      normalized: true,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: { type: 'linear', ticks: { maxTicksLimit: 8, callback: value => formatTime(value) }, title: { display: true, text: 'window end' } },
        y: { title: { display: true, text: 'value' } },
      },
      plugins: {
        legend: { position: 'bottom' },
        tooltip: { callbacks: { title: items => (items.length ? formatDateTime(items[0].parsed.x) : '') } },
      },
    },
  });
}

function fact(label, value) {
  return [el('dt', {}, label), el('dd', {}, value ?? '—')];
}

function properties(set) {
  const values = Object.entries(set?.values ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return el('div', {},
    el('p', { class: 'hint' }, `version ${set?.version ?? 0}, updated ${formatDateTime(set?.updatedAt)}`),
    values.length === 0
      ? el('p', { class: 'hint' }, 'No properties.')
      : el('table', { class: 'props' },
        el('tbody', {}, values.map(([name, value]) => el('tr', { dataset: { testid: 'twin-property', name } },
          el('th', { scope: 'row', class: 'mono' }, name),
          el('td', { class: 'mono' }, JSON.stringify(value)))))));
}

// Orders of one user, live from /live/users/{userId}/orders: rows appear and change status as the
// order events arrive. An admin picks the user; anyone else sees their own orders.
import { getAll, ApiError } from '../api.js';
import { LiveStream } from '../live.js';
import * as session from '../session.js';
import { el, clear, thead, formatDateTime, formatMoney, message, traceId } from '../dom.js';

const maxRows = 500;

export function ordersView(root, requestedUser) {
  const abort = new AbortController();
  const who = session.claims();
  const userId = requestedUser || (who?.isAdmin ? '' : who?.subject ?? '');
  const orders = new Map();
  let stream = null;

  const picker = el('select', { id: 'order-user', dataset: { testid: 'order-user' } });
  const note = el('div');
  const body = el('tbody', { dataset: { testid: 'order-feed' } });
  const lastEvent = el('p', { class: 'hint', dataset: { testid: 'order-last-event' } }, '');

  root.append(
    el('h1', {}, 'Orders'),
    el('div', { class: 'toolbar' },
      el('label', { for: 'order-user' }, 'User'),
      picker),
    note,
    el('section', { class: 'card', 'aria-labelledby': 'orders-title' },
      el('h2', { id: 'orders-title' }, userId ? `Orders of ${userId}` : 'Pick a user'),
      lastEvent,
      el('div', { class: 'scroll' },
        el('table', {},
          thead(['Order', 'Status', 'Lines', 'Total', 'Updated', 'Version', 'Last trace id'], ['Lines', 'Total', 'Version']),
          body))));

  picker.addEventListener('change', () => {
    location.hash = picker.value ? `#/orders/${encodeURIComponent(picker.value)}` : '#/orders';
  });

  function upsert(order, trace) {
    const known = orders.get(order.orderId);
    // Events and the REST page can cross: keep whichever view of the order is newer.
    if (known && known.order.version > order.version) return;
    const row = orderRow(order, trace ?? known?.trace);
    orders.set(order.orderId, { order, trace: trace ?? known?.trace, row });
    if (known) known.row.replaceWith(row);
    else body.prepend(row);
    body.querySelector('tr.empty')?.remove();
    while (body.rows.length > maxRows) body.lastElementChild.remove();
  }

  async function loadUsers() {
    if (!who?.isAdmin) {
      picker.append(el('option', { value: userId }, userId));
      picker.disabled = true;
      return;
    }
    picker.append(el('option', { value: '' }, '— choose —'));
    try {
      const users = await getAll('/users', abort.signal);
      picker.append(...users.map(user => el('option', { value: user.userId, selected: user.userId === userId },
        user.displayName ? `${user.userId} (${user.displayName})` : user.userId)));
    } catch (error) {
      if (error.name !== 'AbortError') clear(note).append(message(`Could not list users: ${error.message}`, 'error'));
    }
    if (userId && ![...picker.options].some(option => option.value === userId)) {
      picker.append(el('option', { value: userId, selected: true }, userId));
    }
  }

  async function loadOrders() {
    if (!userId) return;
    try {
      const list = await getAll(`/orders?userId=${encodeURIComponent(userId)}`, abort.signal);
      list.sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
      for (const order of list) upsert(order);
      if (list.length === 0 && body.rows.length === 0) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 7 }, 'No orders yet.')));
    } catch (error) {
      if (error.name === 'AbortError') return;
      clear(note).append(message(error instanceof ApiError && error.status === 404
        ? `No user '${userId}'.` : `Could not load orders: ${error.message}`, 'error'));
    }
  }

  loadUsers();
  if (userId) {
    stream = new LiveStream(`orders ${userId}`, `/users/${encodeURIComponent(userId)}/orders`, {
      onEvent: (type, event) => {
        if (type !== 'order' || !event.order) return;
        upsert(event.order, event.traceId);
        lastEvent.textContent = `Last event: ${event.change ?? 'change'} of ${event.order.orderId} at ${formatDateTime(event.at)}`;
      },
    });
    // The stream opens first so nothing between the page load and the subscription is missed.
    stream.start();
    loadOrders();
  }

  return () => {
    abort.abort();
    stream?.close();
  };
}

function orderRow(order, trace) {
  const status = String(order.status);
  return el('tr', { class: 'arrived', dataset: { testid: 'order-row', orderId: order.orderId, status } },
    el('th', { scope: 'row', class: 'mono' }, order.orderId),
    el('td', {}, el('span', { class: `badge order-${status.toLowerCase()}`, dataset: { testid: 'order-status' } }, status)),
    el('td', { class: 'num' }, String(order.lines?.length ?? 0)),
    el('td', { class: 'num' }, formatMoney(order.total)),
    el('td', {}, formatDateTime(order.updatedAt)),
    el('td', { class: 'num' }, String(order.version ?? '')),
    el('td', {}, trace ? traceId(trace) : '—'));
}

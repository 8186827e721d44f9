// The dashboard's entry: hash routes (#/, #/devices/{id}, #/orders[/{userId}]) over one <main>.
import * as session from './session.js';
import { el, clear } from './dom.js';
import { fleetView } from './views/fleet.js';
import { deviceView } from './views/device.js';
import { ordersView } from './views/orders.js';

const view = document.getElementById('view');
let dispose = () => {};

function route() {
  const path = location.hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: 'fleet', render: root => fleetView(root) };
  if (parts[0] === 'devices' && parts.length === 2) return { page: 'fleet', render: root => deviceView(root, parts[1]) };
  if (parts[0] === 'orders' && parts.length <= 2) return { page: 'orders', render: root => ordersView(root, parts[1]) };
  return { page: '', render: root => { root.append(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/' }, 'Back to the fleet'))); return () => {}; } };
}

function show() {
  dispose();
  dispose = () => {};
  clear(view);
  const claims = session.claims();
  document.getElementById('who').textContent = claims ? `${claims.subject}${claims.isAdmin ? ' (admin)' : ''}` : '';
  document.getElementById('sign-out').hidden = !claims;
  if (!session.token()) {
    session.showForm('');
    return;
  }
  document.getElementById('token-panel').hidden = true;
  const { page, render } = route();
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  dispose = render(view);
}

session.adoptTokenFromFragment();
session.wireForm();
session.onChange(show);
addEventListener('hashchange', () => {
  // A token pasted into the address bar later is adopted the same way as at load.
  if (location.hash.startsWith('#token=')) {
    session.adoptTokenFromFragment();
    return;
  }
  show();
});
show();

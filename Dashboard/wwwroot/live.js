// One server-sent event stream under /api/v1/live with its status chip in the header.
// The browser's EventSource reconnects by itself and sends Last-Event-ID, so the server resumes where
// the page left off; events seen twice (a replay overlapping a resume) are dropped by seq, and events
// published twice (after a crash) by their item id with RecentItems.
import * as session from './session.js';
import { el } from './dom.js';

const eventTypes = ['summary', 'alert', 'status', 'order'];
const retryDelays = [1000, 2000, 5000, 10000, 15000];

export class LiveStream {
  /**
   * @param {string} name label of the status chip
   * @param {string} path under /api/v1/live, e.g. '/alerts'
   * @param {{ replay?: number, onEvent: (type: string, data: object) => void }} options
   */
  constructor(name, path, { replay = 0, onEvent }) {
    this.name = name;
    this.path = path;
    this.replay = replay;
    this.onEvent = onEvent;
    this.lastSeq = -1;
    this.source = null;
    this.retryTimer = 0;
    this.failures = 0;
    this.closed = false;
    this.chip = el('li', { class: 'stream', dataset: { testid: 'stream-status', stream: name } });
    document.getElementById('streams').append(this.chip);
  }

  start() {
    this.connect();
    return this;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.source?.close();
    this.chip.remove();
  }

  connect() {
    const token = session.token();
    if (this.closed || !token) return;
    const query = new URLSearchParams({ access_token: token });
    // A fresh EventSource carries no Last-Event-ID: a page that already saw events resumes by query.
    if (this.lastSeq >= 0) query.set('lastEventId', String(this.lastSeq));
    else if (this.replay > 0) query.set('replay', String(this.replay));
    this.setState('connecting');
    const source = new EventSource(`/api/v1/live${this.path}?${query}`);
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.setState('live');
    };
    for (const type of eventTypes) {
      source.addEventListener(type, event => this.receive(type, event));
    }
    source.addEventListener('error', event => {
      if (event instanceof MessageEvent && typeof event.data === 'string') {
        // The server's own 'error' event (slow_consumer, ...): it drops the connection next, and the
        // browser resumes from the last id.
        this.serverError(event.data);
        return;
      }
      this.connectionError(source);
    });
  }

  receive(type, event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      console.warn(`live ${this.name}: an event that is not JSON was ignored`);
      return;
    }
    const seq = Number(event.lastEventId || data.seq);
    if (Number.isFinite(seq)) {
      if (seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    this.onEvent(type, data);
  }

  serverError(text) {
    let code = 'error';
    try {
      code = JSON.parse(text).code ?? code;
    } catch {
      // Keep the generic code: the text is only shown.
    }
    this.setState('reconnecting', code);
  }

  async connectionError(source) {
    if (this.closed || source !== this.source) return;
    if (source.readyState === EventSource.CONNECTING) {
      this.setState('reconnecting');
      return;
    }
    // CLOSED: the server answered with something other than a stream, and the browser gives up.
    // EventSource does not tell the status, so ask the same URL once and let the answer decide.
    source.close();
    const status = await answerStatus(source.url);
    if (this.closed) return;
    if (status === 401) {
      this.setState('refused');
      session.refuse('The silo refused the token (expired or invalid). Paste a new one.');
      return;
    }
    if (status === 403 || status === 404) {
      this.setState(status === 403 ? 'forbidden' : 'not found');
      return;
    }
    if (status === 400) {
      // The id to resume from is no longer known (the silo's data was reset): start over with a replay.
      this.lastSeq = -1;
    }
    const delay = retryDelays[Math.min(this.failures, retryDelays.length - 1)];
    this.failures += 1;
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  setState(state, detail = '') {
    this.chip.dataset.state = state;
    this.chip.replaceChildren(el('span', { class: 'dot', 'aria-hidden': 'true' }), `${this.name}: ${state}${detail ? ` (${detail})` : ''}`);
  }
}

/**
 * Item ids (a summary's or alert's itemId) seen lately. After a Silo crash the platform may publish an
 * event again under a new seq (docs/live.md): the item id tells the repeat, which must not show twice.
 */
export class RecentItems {
  constructor(limit = 2000) {
    this.limit = limit;
    this.ids = new Set();
  }

  /** False when the id was already seen. */
  add(id) {
    if (id === undefined || id === null) return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

/** The HTTP status a stream URL answers now (0: no answer); the body is not read. */
async function answerStatus(url) {
  const abort = new AbortController();
  try {
    const response = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
    return response.status;
  } catch {
    return 0;
  } finally {
    abort.abort();
  }
}

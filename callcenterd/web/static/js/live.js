// The live event stream: authenticate, apply events, reconnect with resume.
//
// After a lost connection (a daemon restart, a network cut) the socket is opened again with the
// last event id seen: the daemon replays what was missed, or says `resync_required` (the id is
// from an earlier run, or too old), and the board then reloads its state over REST.

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;
const AUTH_CLOSE_CODES = new Set([4001, 4003]);

export class LiveEvents {
  /**
   * handlers: onEvent(event), onResync(), onState('connecting' | 'live' | 'offline'),
   * onAuthLost(code).
   */
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.lastId = null;
    this.socket = null;
    this.retryMs = RETRY_FIRST_MS;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, 'bye');
    this.socket = null;
  }

  connect() {
    this.handlers.onState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/ws/events`);
    this.socket = socket;
    socket.addEventListener('open', () => {
      const hello = { type: 'auth', token: this.token };
      if (this.lastId !== null) hello.last_event_id = this.lastId;
      socket.send(JSON.stringify(hello));
    });
    socket.addEventListener('message', (message) => this.receive(message.data));
    socket.addEventListener('close', (closed) => this.closed(socket, closed.code));
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === 'auth_ok') {
      this.retryMs = RETRY_FIRST_MS;
      const first = this.lastId === null && !frame.data?.renewed;
      if (first) this.lastId = frame.data?.last_event_id ?? 0;
      this.handlers.onState('live', first);
    } else if (frame.type === 'resync_required') {
      this.lastId = frame.data?.newest_event_id ?? this.lastId;
      this.handlers.onResync();
    } else if (typeof frame.id === 'number') {
      this.lastId = frame.id;
      this.handlers.onEvent(frame);
    }
  }

  closed(socket, code) {
    if (socket !== this.socket || this.stopped) return;
    this.socket = null;
    if (AUTH_CLOSE_CODES.has(code)) {
      this.handlers.onAuthLost(code);
      return;
    }
    this.handlers.onState('offline');
    this.timer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}

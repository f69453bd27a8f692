// The wallboard: what is happening now, kept live by the event stream.
//
// State is loaded over REST once (and again after a resync), then every event updates it.
// Timers tick in the page (from the server's time stamps); the day's figures come from the
// dashboard endpoints, refreshed on a timer and after calls end, never more often than
// KPI_MIN_GAP_MS (two requests each: well under the dashboard limit of 60 a minute).
import { h, fill } from './dom.js';
import { t } from './i18n.js';
import { duration, clockTime, percent } from './format.js';
import { hourlyChart } from './chart.js';
import { can } from './roles.js';
import { CallControls } from './call_controls.js';

// Wait-time colours: green below 30 s, amber from 30 s, red from 60 s.
export const WAIT_AMBER_SECONDS = 30;
export const WAIT_RED_SECONDS = 60;
const KPI_MIN_GAP_MS = 10_000;
const KPI_PERIOD_MS = 30_000;
const RELOAD_DELAY_MS = 700;
const MISSED_SHOWN = 12;
const SEES_EVERY_CALL = new Set(['admin', 'manager']);
// Calls whose hold, consultation and supervision are read from their record after a (re)load:
// two requests each, so a board with many calls does not spend its rate limit on them.
const DETAILS_LOADED = 20;

export function waitLevel(seconds) {
  if (seconds >= WAIT_RED_SECONDS) return 'red';
  if (seconds >= WAIT_AMBER_SECONDS) return 'amber';
  return 'green';
}

/** Runs `task` at most once per `gapMs`; requests in between are merged into one. */
class Throttle {
  constructor(task, gapMs) {
    this.task = task;
    this.gapMs = gapMs;
    this.last = 0;
    this.timer = null;
  }

  request() {
    if (this.timer !== null) return;
    const wait = Math.max(0, this.last + this.gapMs - Date.now());
    this.timer = setTimeout(() => this.run(), wait);
  }

  async run() {
    this.last = Date.now();
    try {
      await this.task();
    } catch (error) {
      if (error.retryAfter) this.last = Date.now() + error.retryAfter * 1000 - this.gapMs;
    } finally {
      this.timer = null;
    }
  }

  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}

function stamp(iso) {
  const value = Date.parse(iso ?? '');
  return Number.isNaN(value) ? null : value;
}

/** An operator as the board keeps it, from GET /api/operators/ (or /api/auth/me). */
function operatorFrom(item) {
  return {
    id: item.id,
    name: item.name,
    extension: item.extension,
    status: item.status,
    reason: item.presence_reason,
    detail: item.status_reason,
    since: stamp(item.last_activity),
  };
}

/** Hold and an attended transfer under way, from a call's timeline (GET /api/calls/{id}). */
export function liveState(events) {
  const state = { held: false, heldSince: null, consult: null };
  for (const entry of events ?? []) {
    if (entry.kind === 'held') Object.assign(state, { held: true, heldSince: stamp(entry.at) });
    else if (entry.kind === 'unheld') Object.assign(state, { held: false, heldSince: null });
    else if (entry.kind === 'transfer_started' && entry.data?.mode === 'attended') {
      state.consult = { targetId: entry.data.target_id };
    } else if (entry.kind === 'transferred' || entry.kind === 'transfer_failed') state.consult = null;
  }
  return state;
}

function sessionFrom(data) {
  return {
    id: data.session_id,
    callId: data.call_id,
    supervisorId: data.supervisor_id,
    mode: data.mode,
    state: data.state,
  };
}

function section(name, titleKey, ...extra) {
  return h('section', { class: `panel panel-${name}`, dataset: { section: name } },
    h('h2', {}, t(titleKey), ...extra),
    h('div', { class: 'panel-body' }));
}

export class Board {
  constructor(api, notify, dialogs) {
    this.api = api;
    this.notify = notify;
    this.dialogs = dialogs;
    this.role = api.user.role;
    // The user's own operator (an operator sets their status with it), or null.
    this.myOperator = api.user.operator ? operatorFrom(api.user.operator) : null;
    this.pauseReasons = [];
    this.sessions = new Map(); // supervision sessions, by id
    this.controls = new CallControls(this);
    this.calls = new Map();
    this.operators = new Map();
    this.queues = new Map();
    this.callbacks = [];
    this.missed = [];
    this.stats = null;
    this.analytics = null;
    this.root = null;
    this.reloads = new Map();
    this.figures = new Throttle(() => this.loadFigures(), KPI_MIN_GAP_MS);
    this.period = null;
    this.ticker = null;
  }

  // --- life ------------------------------------------------------------------------------
  start() {
    this.ticker = setInterval(() => this.tick(), 1000);
    if (can.seeFigures(this.role)) {
      this.period = setInterval(() => this.figures.request(), KPI_PERIOD_MS);
    }
  }

  stop() {
    clearInterval(this.ticker);
    clearInterval(this.period);
    this.figures.cancel();
    for (const timer of this.reloads.values()) clearTimeout(timer);
  }

  /** Everything over REST: at start and after a resync. */
  async reload() {
    const loads = [this.loadCalls(), this.loadCallbacks(), this.loadMissed(), this.loadPauseReasons()];
    if (can.seeFigures(this.role)) loads.push(this.loadOperators(), this.loadQueues());
    await Promise.allSettled(loads);
    this.sessions.clear();
    await this.loadLiveDetails([...this.calls.values()]);
    if (can.seeFigures(this.role)) await this.figures.run();
    this.render();
  }

  later(name, load) {
    if (this.reloads.has(name)) return;
    this.reloads.set(name, setTimeout(async () => {
      this.reloads.delete(name);
      try {
        await load();
      } catch {
        return; // shown as stale; the next event or resync loads it again
      }
      this.render();
    }, RELOAD_DELAY_MS));
  }

  // --- REST ------------------------------------------------------------------------------
  async loadCalls() {
    const [incoming, answered] = await Promise.all([
      this.api.get('/calls/?status=incoming&limit=200'),
      this.api.get('/calls/?status=answered&limit=200'),
    ]);
    const before = this.calls;
    this.calls = new Map();
    for (const item of [...incoming.items, ...answered.items]) {
      const known = before.get(item.id);
      this.calls.set(item.id, {
        held: false,
        heldSince: null,
        consult: null,
        // Hold and consultation are not in the list: kept from the events seen.
        ...(known ? { held: known.held, heldSince: known.heldSince, consult: known.consult } : {}),
        id: item.id,
        number: item.caller_number,
        queueId: item.queue_id,
        operatorId: item.operator_id,
        status: item.status === 'answered' ? 'answered' : 'waiting',
        since: stamp(item.status === 'answered' ? item.answer_time : item.start_time),
      });
    }
  }

  /** Hold, consultation and supervision of calls in progress, from their records. */
  async loadLiveDetails(calls) {
    const talking = calls.filter((call) => call.status === 'answered').slice(0, DETAILS_LOADED);
    await Promise.allSettled(talking.map(async (call) => {
      const record = await this.api.get(`/calls/${call.id}`);
      Object.assign(call, liveState(record.events));
      if (!can.superviseCalls(this.role)) return;
      const sessions = await this.api.get(`/calls/${call.id}/supervisions`);
      for (const session of sessions.filter((found) => found.state !== 'ended')) {
        this.sessionChanged({ ...session, session_id: session.id });
      }
    }));
  }

  async loadPauseReasons() {
    if (this.pauseReasons.length) return;
    this.pauseReasons = (await this.api.get('/operators/pause-reasons')).reasons;
  }

  async loadOperators() {
    const found = await this.api.get('/operators/');
    this.operators = new Map(found.map((item) => [item.id, operatorFrom(item)]));
  }

  async loadQueues() {
    const found = await this.api.get('/queues/');
    const before = this.queues;
    this.queues = new Map(found.filter((queue) => queue.is_active).map((queue) => [queue.id, {
      live: null,
      ...before.get(queue.id),
      id: queue.id,
      name: queue.name,
      waiting: queue.waiting_calls,
    }]));
  }

  async loadCallbacks() {
    const found = await this.api.get('/callbacks/?limit=100');
    this.callbacks = found.items.filter((item) => ['pending', 'dialing'].includes(item.status));
  }

  async loadMissed() {
    const found = await this.api.get(`/calls/?status=missed&limit=${MISSED_SHOWN}`);
    this.missed = found.items;
  }

  async loadFigures() {
    const [stats, analytics] = await Promise.all([
      this.api.get('/dashboard/stats?period=today'),
      this.api.get('/dashboard/call-analytics?period=today'),
    ]);
    this.stats = stats;
    this.analytics = analytics;
    this.renderFigures();
  }

  // --- events ----------------------------------------------------------------------------
  apply(event) {
    const data = event.data ?? {};
    const call = this.calls.get(data.call_id);
    switch (event.type) {
      case 'call_started':
        this.calls.set(data.call_id, {
          id: data.call_id, number: data.caller_number, queueId: null, operatorId: null,
          status: 'waiting', since: stamp(data.timestamp), held: false, heldSince: null, consult: null,
        });
        break;
      case 'call_queued':
        if (call) Object.assign(call, { queueId: data.queue_id, status: 'waiting' });
        break;
      case 'call_ringing':
        // A consultation rings its target while the caller stays (held) with the operator.
        if (call && !call.consult) Object.assign(call, { status: 'ringing', operatorId: data.operator_id });
        break;
      case 'call_answered':
        if (call) {
          Object.assign(call, { status: 'answered', operatorId: data.operator_id, since: stamp(data.answer_time) });
        } else this.later('calls', () => this.loadCalls());
        this.figures.request();
        break;
      case 'call_ended':
        this.calls.delete(data.call_id);
        for (const session of this.sessionsOf(data.call_id)) this.sessions.delete(session.id);
        if (data.status === 'missed') this.later('missed', () => this.loadMissed());
        this.figures.request();
        break;
      case 'call_held':
        if (call) Object.assign(call, { held: true, heldSince: stamp(data.timestamp) });
        break;
      case 'call_unheld':
        if (call) Object.assign(call, { held: false, heldSince: null });
        break;
      case 'call_transfer_started':
        // The consultation's call_ringing may come first: the call is still the operator's.
        if (call && data.mode === 'attended') {
          Object.assign(call, { consult: { targetId: data.target_id }, status: 'answered', operatorId: data.operator_id });
        }
        break;
      case 'call_transferred':
      case 'call_transfer_failed':
        this.transferOver(call, event.type, data);
        break;
      case 'supervision_started':
      case 'supervision_changed':
        this.sessionChanged(data);
        break;
      case 'supervision_ended':
        this.sessionEnded(data.session_id);
        break;
      case 'operator_status_changed':
        this.operatorChanged(data);
        break;
      case 'operator_logged_in':
        if (can.seeFigures(this.role)) this.later('operators', () => this.loadOperators());
        break;
      case 'queue_stats':
        this.queueFigures(data.queues ?? []);
        break;
      default:
        if (event.type.startsWith('callback_')) this.later('callbacks', () => this.loadCallbacks());
        return;
    }
    this.render();
  }

  transferOver(call, type, data) {
    if (call) call.consult = null;
    if (type === 'call_transfer_failed' && data.reason !== 'cancelled' && call) {
      this.notify(t('board.transfer_failed', { number: call.number, reason: t(`transfer.failed.${data.reason}`, {}, data.reason) }), 'error');
    }
    this.later('calls', () => this.loadCalls());
  }

  sessionChanged(data) {
    this.sessions.set(data.session_id, sessionFrom(data));
    this.render();
  }

  sessionEnded(sessionId) {
    this.sessions.delete(sessionId);
    this.render();
  }

  sessionsOf(callId) {
    return [...this.sessions.values()].filter((session) => session.callId === callId);
  }

  operatorChanged(data) {
    if (this.myOperator && data.operator_id === this.myOperator.id) this.ownStatusChanged(data);
    const operator = this.operators.get(data.operator_id);
    if (!operator) {
      if (can.seeFigures(this.role)) this.later('operators', () => this.loadOperators());
      return;
    }
    Object.assign(operator, {
      status: data.status,
      reason: data.reason,
      detail: data.status_reason,
      since: stamp(data.timestamp),
    });
  }

  queueFigures(figures) {
    for (const live of figures) {
      const queue = this.queues.get(live.queue_id);
      if (queue) Object.assign(queue, { live, waiting: live.waiting });
    }
  }

  // --- actions ---------------------------------------------------------------------------
  /** online | busy (paused, with a reason or none) | offline, as the dialog chose. */
  async chooseStatus(operator) {
    const chosen = await this.dialogs.statusChoice(operator.name, this.pauseReasons,
      { status: operator.status, reason: operator.reason });
    if (!chosen) return;
    const body = chosen.reason ? chosen : { status: chosen.status };
    try {
      const changed = await this.api.request('PUT', `/operators/${operator.id}/status`, body);
      this.notify(t('presence.saved', { name: changed.name }));
      if (this.myOperator?.id === changed.id) Object.assign(this.myOperator, operatorFrom(changed));
      if (this.operators.has(changed.id)) this.operators.set(changed.id, operatorFrom(changed));
      this.render();
    } catch (error) {
      this.notify(error.detail, 'error');
    }
  }

  ownStatusChanged(data) {
    Object.assign(this.myOperator, {
      status: data.status,
      reason: data.reason,
      detail: data.status_reason,
      since: stamp(data.timestamp),
    });
  }

  async callBack(missed, button) {
    button.disabled = true;
    try {
      await this.api.request('POST', '/callbacks/', { call_id: missed.id });
      this.notify(t('board.callback_booked', { number: missed.caller_number }));
      await this.loadCallbacks();
      this.render();
    } catch (error) {
      this.notify(error.detail, 'error');
      button.disabled = false;
    }
  }

  // --- drawing ---------------------------------------------------------------------------
  mount(container) {
    const figures = can.seeFigures(this.role);
    this.root = h('div', { class: figures ? 'board' : 'board board-operator' },
      figures ? h('div', { class: 'kpis', dataset: { section: 'kpis' } }) : null,
      this.myOperator && !figures ? section('me', 'board.my_status') : null,
      section('waiting', 'board.waiting', h('span', { class: 'count', dataset: { count: 'waiting' } })),
      section('talking', 'board.talking', h('span', { class: 'count', dataset: { count: 'talking' } })),
      figures ? section('operators', 'board.operators') : null,
      figures ? section('queues', 'board.queues') : null,
      section('callbacks', 'board.callbacks', h('span', { class: 'count', dataset: { count: 'callbacks' } })),
      section('missed', 'board.missed'),
      figures ? section('chart', 'board.chart', h('span', { class: 'legend' },
        h('i', { class: 'swatch swatch-answered' }), t('kpi.answered'),
        h('i', { class: 'swatch swatch-missed' }), t('kpi.missed'))) : null);
    fill(container, this.root);
    this.render();
    this.renderFigures();
  }

  body(name) {
    return this.root?.querySelector(`[data-section="${name}"] .panel-body`) ?? null;
  }

  count(name, value) {
    const badge = this.root?.querySelector(`[data-count="${name}"]`);
    if (badge) badge.textContent = String(value);
  }

  render() {
    if (!this.root?.isConnected) return;
    this.renderCalls();
    if (can.seeFigures(this.role)) {
      this.renderOperators();
      this.renderQueues();
    }
    this.renderCallbacks();
    this.renderMissed();
    this.renderOwnStatus();
    this.tick();
  }

  queueName(id) {
    return this.queues.get(id)?.name ?? '';
  }

  operatorName(id) {
    return this.operators.get(id)?.name ?? '';
  }

  renderCalls() {
    const calls = [...this.calls.values()].sort((a, b) => (a.since ?? 0) - (b.since ?? 0));
    const waiting = calls.filter((call) => call.status !== 'answered');
    const talking = calls.filter((call) => call.status === 'answered');
    this.count('waiting', waiting.length);
    this.count('talking', talking.length);
    const body = this.body('waiting');
    fill(body, waiting.length === 0 ? h('p', { class: 'empty' }, t('board.no_waiting')) :
      h('ul', { class: 'rows' }, waiting.map((call) => h('li', { class: 'row', dataset: { callId: call.id, status: call.status } },
        h('span', { class: 'number' }, call.number),
        h('span', { class: 'where' }, this.queueName(call.queueId)),
        h('span', { class: 'state' }, call.status === 'ringing'
          ? t('call.ringing', { name: this.operatorName(call.operatorId) }) : t('call.waiting')),
        h('span', { class: 'timer wait', dataset: { since: call.since ?? '', wait: '1' } })))));
    fill(this.body('talking'), talking.length === 0 ? h('p', { class: 'empty' }, t('board.no_talking')) :
      h('ul', { class: 'rows' }, talking.map((call) => this.talkingRow(call))));
  }

  talkingRow(call) {
    const sessions = this.sessionsOf(call.id);
    const actions = this.controls.buttons(call, sessions);
    return h('li', { class: 'row', dataset: { callId: call.id, status: 'answered', held: String(call.held), consulting: String(Boolean(call.consult)) } },
      h('span', { class: 'number' }, call.number),
      h('span', { class: 'where' }, this.operatorName(call.operatorId) || this.queueName(call.queueId)),
      h('span', { class: 'state' }, this.callState(call),
        call.held && call.heldSince ? h('span', { class: 'timer hold', dataset: { since: call.heldSince } }) : null),
      h('span', { class: 'timer', dataset: { since: call.since ?? '' } }),
      sessions.length ? h('span', { class: 'supervision' }, this.controls.badges(sessions)) : null,
      actions.length ? h('span', { class: 'actions' }, actions) : null);
  }

  callState(call) {
    if (call.consult) {
      return t('call.consulting', { name: this.operatorName(call.consult.targetId) || t('transfer.an_operator') });
    }
    return call.held ? t('call.held') : t('call.talking');
  }

  renderOperators() {
    const operators = [...this.operators.values()].sort((a, b) => a.name.localeCompare(b.name));
    fill(this.body('operators'), operators.length === 0 ? h('p', { class: 'empty' }, t('board.no_operators')) :
      h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('op.name')), h('th', {}, t('op.extension')),
          h('th', {}, t('op.status')), h('th', {}, t('op.reason')), h('th', { class: 'num' }, t('op.in_state')),
          can.setOperatorStatus(this.role) ? h('th', {}) : null)),
        h('tbody', {}, operators.map((op) => h('tr', { dataset: { operatorId: op.id, status: op.status } },
          h('td', {}, op.name),
          h('td', {}, op.extension),
          h('td', {}, h('span', { class: `badge badge-${op.status}` }, t(`status.${op.status}`))),
          h('td', {}, this.operatorDetail(op)),
          h('td', { class: 'num timer', dataset: { since: op.since ?? '' } }),
          can.setOperatorStatus(this.role) ? h('td', { class: 'actions' }, h('button', {
            type: 'button', class: 'small', dataset: { action: 'set-status' },
            onclick: () => this.chooseStatus(op) }, t('presence.change'))) : null)))));
  }

  /** An operator's own status, and the button to change it. */
  renderOwnStatus() {
    const body = this.body('me');
    const me = this.myOperator;
    if (!body || !me) return;
    fill(body, h('div', { class: 'me', dataset: { status: me.status, reason: me.reason ?? '' } },
      h('span', { class: 'me-name' }, `${me.name} (${me.extension})`),
      h('span', { class: `badge badge-${me.status}` }, t(`status.${me.status}`)),
      h('span', { class: 'me-reason' }, this.operatorDetail(me)),
      h('span', { class: 'timer', dataset: { since: me.since ?? '' } }),
      h('button', { type: 'button', class: 'primary', dataset: { action: 'set-status' },
        onclick: () => this.chooseStatus(me) }, t('presence.change'))));
  }

  operatorDetail(op) {
    if (op.status === 'busy' && op.reason) return t(`pause.${op.reason}`, {}, op.reason);
    return op.detail ? t(`detail.${op.detail}`, {}, op.detail) : '';
  }

  /** Waiting callers of a queue: from the calls here (admins and managers see every call,
   * so this is exact and immediate), else from the last queue_stats event. */
  queueWaiting(queue) {
    const live = queue.live ?? {};
    if (!SEES_EVERY_CALL.has(this.role)) {
      return { count: live.waiting ?? queue.waiting ?? 0, since: null, longest: live.longest_wait_seconds ?? 0 };
    }
    const waiting = [...this.calls.values()].filter((call) => call.queueId === queue.id && call.status !== 'answered');
    const oldest = Math.min(...waiting.map((call) => call.since ?? Infinity));
    return { count: waiting.length, since: Number.isFinite(oldest) ? oldest : null, longest: 0 };
  }

  renderQueues() {
    const performance = new Map((this.analytics?.queue_performance ?? []).map((row) => [row.queue_id, row]));
    const queues = [...this.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
    fill(this.body('queues'), queues.length === 0 ? h('p', { class: 'empty' }, t('board.no_queues')) :
      h('div', { class: 'tiles' }, queues.map((queue) => {
        const live = queue.live ?? {};
        const today = performance.get(queue.id);
        const waiting = this.queueWaiting(queue);
        return h('div', { class: 'tile', dataset: { queueId: queue.id, waiting: waiting.count } },
          h('div', { class: 'tile-name' }, queue.name),
          h('div', { class: 'tile-big' }, String(waiting.count), h('small', {}, t('queue.waiting'))),
          h('dl', { class: 'tile-facts' },
            h('dt', {}, t('queue.longest')),
            h('dd', { class: 'timer', dataset: { since: waiting.since ?? '', wait: '1' } }, duration(waiting.longest)),
            h('dt', {}, t('queue.available')),
            h('dd', {}, `${live.operators_available ?? '–'} / ${live.operators_logged_in ?? '–'}`),
            h('dt', {}, t('queue.today')), h('dd', {}, today ? `${today.answered} / ${today.calls}` : '0 / 0'),
            h('dt', {}, t('kpi.service_level')), h('dd', {}, percent(today?.service_level ?? 0))));
      })));
  }

  renderCallbacks() {
    this.count('callbacks', this.callbacks.length);
    fill(this.body('callbacks'), this.callbacks.length === 0 ? h('p', { class: 'empty' }, t('board.no_callbacks')) :
      h('ul', { class: 'rows' }, this.callbacks.map((item) => h('li', { class: 'row', dataset: { callbackId: item.id, status: item.status } },
        h('span', { class: 'number' }, item.number),
        h('span', { class: 'where' }, this.queueName(item.queue_id)),
        h('span', { class: 'state' }, t(`callback.${item.status}`)),
        h('span', { class: 'timer' }, clockTime(item.scheduled_at ?? item.place_at))))));
  }

  renderMissed() {
    const booking = can.bookCallbacks(this.role);
    fill(this.body('missed'), this.missed.length === 0 ? h('p', { class: 'empty' }, t('board.no_missed')) :
      h('ul', { class: 'rows' }, this.missed.map((call) => {
        const button = booking ? h('button', { type: 'button', class: 'small', dataset: { action: 'callback' } },
          t('board.call_back')) : null;
        button?.addEventListener('click', () => this.callBack(call, button));
        return h('li', { class: 'row', dataset: { callId: call.id, status: 'missed' } },
          h('span', { class: 'number' }, call.caller_number),
          h('span', { class: 'where' }, call.queue_name ?? ''),
          h('span', { class: 'state' }, t(`reason.${call.reason}`, {}, call.reason ?? '')),
          h('span', { class: 'timer' }, clockTime(call.start_time)),
          button ? h('span', { class: 'actions' }, button) : null);
      })));
  }

  renderFigures() {
    const kpis = this.root?.querySelector('[data-section="kpis"]');
    if (!kpis) return;
    const stats = this.stats;
    const tiles = [
      ['calls', stats?.total_calls_today],
      ['answered', stats?.answered_calls_today],
      ['missed', stats?.missed_calls_today],
      ['service_level', stats ? percent(stats.service_level) : null],
      ['asa', stats ? duration(stats.average_wait_time) : null],
      ['aht', stats ? duration(stats.average_talk_time) : null],
    ];
    fill(kpis, tiles.map(([name, value]) => h('div', { class: `kpi kpi-${name}`, dataset: { kpi: name } },
      h('div', { class: 'kpi-value' }, value ?? '–'),
      h('div', { class: 'kpi-label' }, t(`kpi.${name}`)))));
    const chart = this.body('chart');
    if (chart && this.analytics) {
      fill(chart, hourlyChart(this.analytics.hourly_distribution, {
        answered: t('kpi.answered'), missed: t('kpi.missed'),
      }));
    }
    if (can.seeFigures(this.role)) this.renderQueues();
  }

  /** Every second: the running timers and the wait colours. */
  tick() {
    if (!this.root?.isConnected) return;
    const now = this.api.now();
    for (const timer of this.root.querySelectorAll('[data-since]')) {
      const since = Number(timer.dataset.since);
      if (!since) continue;
      const seconds = (now - since) / 1000;
      timer.textContent = duration(seconds);
      if (timer.dataset.wait) timer.dataset.level = waitLevel(seconds);
    }
  }
}

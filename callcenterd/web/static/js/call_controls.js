// What can be done to a call in progress from the board: hold and unhold, transfer (blind or
// attended, then complete or cancel), and supervision (listen, whisper, barge; change the mode;
// end it). Each action is one REST request; what it changes comes back as events, so the row
// shows it when the daemon says it happened, not when the button was pressed.
import { h } from './dom.js';
import { t } from './i18n.js';
import { can } from './roles.js';

export const MODES = ['listen', 'whisper', 'barge'];

function button(action, label, onclick) {
  return h('button', { type: 'button', class: 'small', dataset: { action }, onclick }, label);
}

export class CallControls {
  /** board: the Board (its api, notify, dialogs, user, operators, queues, sessions). */
  constructor(board) {
    this.board = board;
  }

  get api() {
    return this.board.api;
  }

  /** Hold and transfer: supervisors and up on any call they see; an operator on their own. */
  handles(call) {
    const board = this.board;
    if (can.holdCalls(board.role)) return true;
    return board.myOperator !== null && call.operatorId === board.myOperator.id;
  }

  async run(request, done) {
    try {
      const answer = await request();
      if (done) this.board.notify(done(answer));
      return answer;
    } catch (error) {
      this.board.notify(error.detail, 'error');
      return null;
    }
  }

  // --- hold and transfer -----------------------------------------------------------------
  hold(call) {
    return this.run(() => this.api.request('POST', `/calls/${call.id}/hold`));
  }

  unhold(call) {
    return this.run(() => this.api.request('POST', `/calls/${call.id}/unhold`));
  }

  async transfer(call) {
    const board = this.board;
    const others = [...board.operators.values()].filter((op) => op.id !== call.operatorId);
    const chosen = await board.dialogs.transferChoice([...board.queues.values()], others);
    if (!chosen) return;
    await this.run(() => this.api.request('POST', `/calls/${call.id}/transfer`, chosen),
      () => t(chosen.mode === 'attended' ? 'board.consulting_started' : 'board.transferred'));
  }

  complete(call) {
    return this.run(() => this.api.request('POST', `/calls/${call.id}/transfer/complete`),
      () => t('board.transferred'));
  }

  cancel(call) {
    return this.run(() => this.api.request('POST', `/calls/${call.id}/transfer/cancel`));
  }

  // --- supervision -----------------------------------------------------------------------
  async supervise(call, mode) {
    const session = await this.run(
      () => this.api.request('POST', `/calls/${call.id}/supervise`, { mode }),
      () => t('board.supervise_started', { mode: t(`mode.${mode}`) }));
    if (session) this.board.sessionChanged({ ...session, session_id: session.id });
  }

  async changeMode(session, mode) {
    const changed = await this.run(
      () => this.api.request('PUT', `/calls/${session.callId}/supervise/${session.id}`, { mode }));
    if (changed) this.board.sessionChanged({ ...changed, session_id: changed.id });
  }

  async endSession(session) {
    const ended = await this.run(
      () => this.api.request('DELETE', `/calls/${session.callId}/supervise/${session.id}`),
      () => t('board.supervise_ended'));
    if (ended) this.board.sessionEnded(ended.id);
  }

  /** Sessions may be changed or ended by their supervisor, admins and managers. */
  mayControl(session) {
    return session.supervisorId === this.board.api.user.id || can.controlAnySession(this.board.role);
  }

  // --- drawing ---------------------------------------------------------------------------
  /** The buttons of a talking call's row. */
  buttons(call, sessions) {
    const found = [];
    if (this.handles(call)) found.push(...this.callButtons(call));
    if (can.superviseCalls(this.board.role)) found.push(...this.supervisionButtons(call, sessions));
    return found;
  }

  callButtons(call) {
    if (call.consult) {
      return [
        button('transfer-complete', t('transfer.complete'), () => this.complete(call)),
        button('transfer-cancel', t('transfer.cancel'), () => this.cancel(call)),
      ];
    }
    const found = [call.held
      ? button('unhold', t('call.unhold'), () => this.unhold(call))
      : button('hold', t('call.hold'), () => this.hold(call))];
    if (can.transferCalls(this.board.role)) {
      found.push(button('transfer', t('board.transfer'), () => this.transfer(call)));
    }
    return found;
  }

  supervisionButtons(call, sessions) {
    const mine = sessions.find((session) => session.supervisorId === this.board.api.user.id);
    if (!mine) return MODES.map((mode) => button(mode, t(`mode.${mode}`), () => this.supervise(call, mode)));
    return [
      ...MODES.filter((mode) => mode !== mine.mode).map((mode) =>
        button(`mode-${mode}`, t('supervise.switch', { mode: t(`mode.${mode}`) }), () => this.changeMode(mine, mode))),
      button('supervise-end', t('supervise.end'), () => this.endSession(mine)),
    ];
  }

  /** Who supervises the call, in which mode (and whether their phone still rings). */
  badges(sessions) {
    return sessions.map((session) => h('span', {
      class: `badge badge-supervision badge-${session.state}`,
      dataset: { session: session.id, mode: session.mode, state: session.state },
    }, t(session.state === 'active' ? 'supervise.active' : 'supervise.ringing', { mode: t(`mode.${session.mode}`) }),
    this.mayControl(session) && session.supervisorId !== this.board.api.user.id
      ? h('button', { type: 'button', class: 'small link', dataset: { action: 'supervise-end-other' },
        onclick: () => this.endSession(session) }, '×') : null));
  }
}

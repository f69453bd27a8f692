// Modal questions in <dialog> elements (the browser's confirm() blocks the page and cannot be
// styled for a wall screen).
import { h } from './dom.js';
import { t } from './i18n.js';

function ask(content, okLabel, read) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog' });
    const form = h('form', { method: 'dialog' }, content,
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'primary', value: 'ok', dataset: { answer: 'ok' } }, okLabel),
        h('button', { type: 'submit', value: 'cancel', dataset: { answer: 'cancel' } }, t('common.cancel'))));
    dialog.append(form);
    dialog.addEventListener('close', () => {
      const answer = dialog.returnValue === 'ok' ? read(form) : null;
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function confirmAction(text) {
  return ask(h('p', {}, text), t('common.yes'), () => true).then(Boolean);
}

/** A transfer: {target: {type: queue, id} | {type: operator, id} | {type: external, number},
 * mode: blind | attended}. Attended is for operator targets only (the API's rule), so it is
 * offered only while an operator is chosen. */
export function transferChoice(queues, operators) {
  const choice = h('select', { name: 'target' },
    h('optgroup', { label: t('nav.queues') }, queues.map((queue) =>
      h('option', { value: `queue:${queue.id}` }, queue.name))),
    h('optgroup', { label: t('board.operators') }, operators.map((op) =>
      h('option', { value: `operator:${op.id}` }, `${op.name} (${op.extension})`))),
    h('option', { value: 'external:' }, t('transfer.external')));
  const mode = h('select', { name: 'mode' },
    h('option', { value: 'blind' }, t('transfer.blind')),
    h('option', { value: 'attended' }, t('transfer.attended')));
  const number = h('input', { name: 'number', type: 'tel', placeholder: t('transfer.number') });
  const offerAttended = () => {
    const toOperator = choice.value.startsWith('operator:');
    mode.querySelector('option[value="attended"]').disabled = !toOperator;
    if (!toOperator) mode.value = 'blind';
  };
  choice.addEventListener('change', offerAttended);
  offerAttended();
  const content = h('div', { class: 'form-grid' },
    h('h3', {}, t('board.transfer')),
    h('label', { class: 'field' }, h('span', {}, t('transfer.target')), choice),
    h('label', { class: 'field' }, h('span', {}, t('transfer.mode')), mode),
    h('label', { class: 'field' }, h('span', {}, t('transfer.number')), number));
  return ask(content, t('board.transfer'), () => {
    const [type, id] = choice.value.split(':');
    const target = type === 'external' ? { type, number: number.value.trim() } : { type, id };
    return { target, mode: mode.value };
  });
}

/** An operator's status: {status: online | busy | offline, reason} (busy = paused, with one of
 * the configured reasons, or none). */
export function statusChoice(name, reasons, current) {
  const status = h('select', { name: 'status' }, ['online', 'busy', 'offline'].map((value) =>
    h('option', { value, selected: value === current.status }, t(`presence.${value}`))));
  const reason = h('select', { name: 'reason' },
    h('option', { value: '' }, t('pause.paused')),
    reasons.map((value) => h('option', { value, selected: value === current.reason }, t(`pause.${value}`, {}, value))));
  const offerReason = () => {
    reason.disabled = status.value !== 'busy';
  };
  status.addEventListener('change', offerReason);
  offerReason();
  const content = h('div', { class: 'form-grid' },
    h('h3', {}, t('presence.title', { name })),
    h('label', { class: 'field' }, h('span', {}, t('op.status')), status),
    h('label', { class: 'field' }, h('span', {}, t('op.reason')), reason));
  return ask(content, t('common.save'), () => ({
    status: status.value,
    reason: status.value === 'busy' && reason.value ? reason.value : null,
  }));
}

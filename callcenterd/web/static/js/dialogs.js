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

/** A transfer target: {type: queue, id} | {type: operator, id} | {type: external, number}. */
export function transferTarget(queues, operators) {
  const choice = h('select', { name: 'target' },
    h('optgroup', { label: t('nav.queues') }, queues.map((queue) =>
      h('option', { value: `queue:${queue.id}` }, queue.name))),
    h('optgroup', { label: t('board.operators') }, operators.map((op) =>
      h('option', { value: `operator:${op.id}` }, `${op.name} (${op.extension})`))),
    h('option', { value: 'external:' }, t('transfer.external')));
  const number = h('input', { name: 'number', type: 'tel', placeholder: t('transfer.number') });
  const content = h('div', { class: 'form-grid' },
    h('h3', {}, t('board.transfer')),
    h('label', { class: 'field' }, h('span', {}, t('transfer.target')), choice),
    h('label', { class: 'field' }, h('span', {}, t('transfer.number')), number));
  return ask(content, t('board.transfer'), () => {
    const [type, id] = choice.value.split(':');
    return type === 'external' ? { type, number: number.value.trim() } : { type, id };
  });
}

// Forms built from field lists, read back into API bodies.
//
// A field: {name, label, type: text | password | number | checkbox | select | list | textarea,
// options: [[value, label]], required, placeholder, help}. `list` is comma-separated text
// sent as an array; a `number` left empty is left out; a dotted name (asterisk_config.host)
// is sent nested.
import { h } from './dom.js';
import { words } from './format.js';

function lookup(values, name) {
  return name.split('.').reduce((found, part) => (found == null ? undefined : found[part]), values);
}

function place(body, name, value) {
  const parts = name.split('.');
  const last = parts.pop();
  let target = body;
  for (const part of parts) target = target[part] ??= {};
  target[last] = value;
}

function shown(field, value) {
  if (value === undefined || value === null) return '';
  if (field.type === 'list') return value.join(', ');
  return String(value);
}

function control(field, value) {
  const common = { name: field.name, id: `field-${field.name}`, required: field.required };
  switch (field.type) {
    case 'checkbox':
      return h('input', { ...common, type: 'checkbox', checked: Boolean(value) });
    case 'select':
      return h('select', common, field.options.map(([option, label]) =>
        h('option', { value: option, selected: shown(field, value) === option }, label)));
    case 'textarea':
      return h('textarea', { ...common, rows: 2 }, shown(field, value));
    default:
      return h('input', {
        ...common,
        type: field.type === 'list' ? 'text' : (field.type ?? 'text'),
        value: shown(field, value),
        placeholder: field.placeholder,
        autocomplete: field.type === 'password' ? 'new-password' : 'off',
      });
  }
}

/** A <form> for `fields`, filled from `values`; onSubmit(body, form) gets the body. */
export function buildForm(fields, values, { submitLabel, cancelLabel, onSubmit, onCancel, extra }) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'form', novalidate: true },
    h('div', { class: 'form-grid' }, fields.map((field) => h('label', {
      class: field.type === 'checkbox' ? 'field field-check' : 'field',
      for: `field-${field.name}`,
    }, h('span', {}, field.label), control(field, lookup(values, field.name)),
    field.help ? h('small', {}, field.help) : null))),
    error,
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'primary' }, submitLabel),
      extra ?? null,
      onCancel ? h('button', { type: 'button', onclick: onCancel }, cancelLabel) : null));
  form.showError = (text) => {
    error.textContent = text;
    error.hidden = !text;
  };
  form.addEventListener('submit', async (submitted) => {
    submitted.preventDefault();
    form.showError('');
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await onSubmit(readForm(form, fields), form);
    } catch (failure) {
      form.showError(failure.detail ?? String(failure));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export function readForm(form, fields) {
  const body = {};
  for (const field of fields) {
    const input = form.elements.namedItem(field.name);
    if (!input) continue;
    let value;
    if (field.type === 'checkbox') value = input.checked;
    else if (field.type === 'number') {
      if (input.value.trim() === '') continue;
      value = Number(input.value);
    } else if (field.type === 'list') value = words(input.value);
    else if (field.type === 'password' && input.value === '') continue;
    else value = field.parse ? field.parse(input.value) : input.value;
    place(body, field.name, value);
  }
  return body;
}

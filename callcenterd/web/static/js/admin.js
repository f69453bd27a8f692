// The admin pages: users and operators, groups, queues, settings; all through the REST API,
// with its error `detail` shown on failure. Roles that may only read get no write buttons.
import { h, fill } from './dom.js';
import { t } from './i18n.js';
import { buildForm } from './forms.js';
import { confirmAction } from './dialogs.js';
import { can } from './roles.js';

const ROLES = ['admin', 'manager', 'supervisor', 'operator'];
const STRATEGIES = ['ringall', 'leastrecent', 'fewestcalls', 'random', 'rrmemory', 'rrordered', 'linear', 'wrandom'];
const orNull = (text) => (text.trim() === '' ? null : text.trim());
const booleanOrNull = (text) => (text === '' ? null : text === 'true');

/** A list of records with create, edit and delete; `spec` says what differs per page. */
class RecordsPage {
  constructor(api, notify, spec) {
    this.api = api;
    this.notify = notify;
    this.spec = spec;
    this.items = [];
    this.container = null;
    this.writable = spec.canWrite(api.user.role);
  }

  async mount(container) {
    this.container = container;
    fill(container, h('p', { class: 'empty' }, t('common.loading')));
    try {
      await this.spec.prepare?.();
      this.items = await this.api.get(this.spec.path);
    } catch (error) {
      fill(container, h('p', { class: 'form-error' }, error.detail));
      return;
    }
    this.render();
  }

  render(formRecord) {
    const spec = this.spec;
    const panel = h('div', { class: 'form-panel' });
    fill(this.container, h('section', { class: 'page', dataset: { page: spec.name } },
      h('header', { class: 'page-head' }, h('h1', {}, t(spec.title)),
        this.writable ? h('button', { type: 'button', class: 'primary', dataset: { action: 'new' },
          onclick: () => this.openForm(panel, null) }, t('common.new')) : null),
      panel,
      this.items.length === 0 ? h('p', { class: 'empty' }, t('common.none')) :
        h('table', { class: 'table records' },
          h('thead', {}, h('tr', {}, spec.columns.map(([label]) => h('th', {}, t(label))),
            this.writable ? h('th', {}) : null)),
          h('tbody', {}, this.items.map((item) => h('tr', { dataset: { id: item.id } },
            spec.columns.map(([, cell]) => h('td', {}, cell(item))),
            this.writable ? h('td', { class: 'actions' }, this.rowActions(panel, item)) : null))))));
    if (formRecord !== undefined) this.openForm(panel, formRecord);
  }

  rowActions(panel, item) {
    return [
      ...(this.spec.extraActions?.(item, () => this.reload()) ?? []),
      h('button', { type: 'button', class: 'small', dataset: { action: 'edit' },
        onclick: () => this.openForm(panel, item) }, t('common.edit')),
      h('button', { type: 'button', class: 'small danger', dataset: { action: 'delete' },
        onclick: () => this.remove(item) }, t('common.delete')),
    ];
  }

  async openForm(panel, record) {
    const values = record ? await this.spec.editValues?.(record) ?? record : this.spec.defaults ?? {};
    const form = buildForm(this.spec.fields(record !== null), values, {
      submitLabel: t(record ? 'common.save' : 'common.create'),
      cancelLabel: t('common.cancel'),
      onCancel: () => fill(panel),
      onSubmit: (body) => this.save(record, body),
    });
    fill(panel, h('h2', {}, t(record ? 'common.editing' : 'common.creating')), form);
    form.querySelector('input, select')?.focus();
  }

  async save(record, body) {
    if (record) await this.api.request('PUT', this.itemPath(record), body);
    else await this.api.request('POST', this.spec.path, body);
    this.notify(t('common.saved'));
    await this.reload();
  }

  async remove(item) {
    if (!(await confirmAction(t('common.confirm_delete', { name: this.spec.label(item) })))) return;
    try {
      await this.api.request('DELETE', this.itemPath(item));
      this.notify(t('common.deleted'));
      await this.reload();
    } catch (error) {
      this.notify(error.detail, 'error');
    }
  }

  itemPath(record) {
    return `${this.spec.path.replace(/\/$/, '')}/${record.id}`;
  }

  async reload() {
    this.items = await this.api.get(this.spec.path);
    this.render();
  }
}

const yesNo = (value) => t(value ? 'common.yes' : 'common.no');

async function groupOptions(api) {
  const groups = await api.get('/admin/groups');
  return [['', '—'], ...groups.map((group) => [group.id, group.name])];
}

export function usersPage(api, notify) {
  let groups = [['', '—']];
  const groupName = (id) => groups.find(([value]) => value === (id ?? ''))?.[1] ?? '';
  return new RecordsPage(api, notify, {
    name: 'users',
    title: 'nav.users',
    path: '/admin/users',
    canWrite: can.manageUsers,
    prepare: async () => {
      groups = await groupOptions(api);
    },
    label: (user) => user.username,
    defaults: { role: 'operator', max_concurrent_calls: 1 },
    columns: [
      ['user.username', (user) => user.username],
      ['user.name', (user) => user.name],
      ['user.role', (user) => t(`role.${user.role}`)],
      ['user.group', (user) => groupName(user.group_id)],
      ['user.extension', (user) => user.extension ?? ''],
      ['user.active', (user) => (user.locked_until ? t('user.locked') : yesNo(user.is_active))],
    ],
    editValues: async (user) => {
      if (user.role !== 'operator') return user;
      const operator = await api.get(`/admin/users/${user.id}/operator`).catch(() => null);
      return { ...user, skills: operator?.skills ?? [], max_concurrent_calls: operator?.max_concurrent_calls };
    },
    fields: (editing) => [
      { name: 'username', label: t('user.username'), required: true },
      { name: 'name', label: t('user.name'), required: true },
      { name: 'email', label: t('user.email'), type: 'email', required: true },
      { name: 'password', label: t(editing ? 'user.new_password' : 'user.password'), type: 'password', required: !editing },
      { name: 'role', label: t('user.role'), type: 'select', options: ROLES.map((role) => [role, t(`role.${role}`)]) },
      { name: 'group_id', label: t('user.group'), type: 'select', options: groups, parse: orNull },
      { name: 'extension', label: t('user.extension'), parse: orNull, placeholder: '1001' },
      { name: 'skills', label: t('user.skills'), type: 'list', help: t('common.comma_list') },
      { name: 'max_concurrent_calls', label: t('user.max_calls'), type: 'number' },
      ...(editing ? [{ name: 'is_active', label: t('user.active'), type: 'checkbox' }] : []),
    ],
    extraActions: (user, reload) => (user.locked_until ? [h('button', {
      type: 'button', class: 'small', dataset: { action: 'unlock' },
      onclick: async () => {
        await api.request('POST', `/admin/users/${user.id}/unlock`).catch((error) => notify(error.detail, 'error'));
        await reload();
      },
    }, t('user.unlock'))] : []),
  });
}

export function groupsPage(api, notify) {
  return new RecordsPage(api, notify, {
    name: 'groups',
    title: 'nav.groups',
    path: '/admin/groups',
    canWrite: can.editGroups,
    label: (group) => group.name,
    columns: [
      ['group.name', (group) => group.name],
      ['group.description', (group) => group.description],
    ],
    fields: () => [
      { name: 'name', label: t('group.name'), required: true },
      { name: 'description', label: t('group.description'), type: 'textarea' },
    ],
  });
}

export function queuesPage(api, notify) {
  return new RecordsPage(api, notify, {
    name: 'queues',
    title: 'nav.queues',
    path: '/queues/',
    canWrite: can.editQueues,
    label: (queue) => queue.name,
    defaults: { strategy: 'ringall', priority: 1, max_wait_time: 300, is_active: true, announce_every: 0, callback_enabled: null,
      sms_missed_call: true, sms_callback_scheduled: true, sms_callback_reminder: true, notification_language: null },
    columns: [
      ['queue.name', (queue) => queue.name],
      ['queue.asterisk_name', (queue) => queue.asterisk_name],
      ['queue.strategy', (queue) => t(`strategy.${queue.strategy}`, {}, queue.strategy)],
      ['queue.members', (queue) => queue.members.join(', ')],
      ['queue.skills', (queue) => queue.required_skills.join(', ')],
      ['queue.waiting_now', (queue) => String(queue.waiting_calls)],
      ['queue.active', (queue) => yesNo(queue.is_active)],
    ],
    fields: () => [
      { name: 'name', label: t('queue.name'), required: true },
      { name: 'asterisk_name', label: t('queue.asterisk_name'), required: true, placeholder: 'support' },
      { name: 'description', label: t('queue.description') },
      { name: 'strategy', label: t('queue.strategy'), type: 'select', options: STRATEGIES.map((s) => [s, t(`strategy.${s}`, {}, s)]) },
      { name: 'members', label: t('queue.members'), type: 'list', help: t('queue.members_help') },
      { name: 'required_skills', label: t('queue.skills'), type: 'list', help: t('common.comma_list') },
      { name: 'numbers', label: t('queue.numbers'), type: 'list', help: t('common.comma_list') },
      { name: 'priority', label: t('queue.priority'), type: 'number' },
      { name: 'max_wait_time', label: t('queue.max_wait'), type: 'number' },
      { name: 'ring_timeout', label: t('queue.ring_timeout'), type: 'number' },
      { name: 'wrapup_seconds', label: t('queue.wrapup'), type: 'number' },
      { name: 'greeting', label: t('queue.greeting'), parse: orNull, help: t('queue.greeting_help') },
      { name: 'announce_every', label: t('queue.announce_every'), type: 'number', help: t('queue.announce_every_help') },
      { name: 'announce_wait', label: t('queue.announce_wait'), type: 'checkbox' },
      { name: 'callback_enabled', label: t('queue.callback_enabled'), type: 'select', parse: booleanOrNull,
        options: [['', t('queue.callback_default')], ['true', t('common.yes')], ['false', t('common.no')]] },
      { name: 'callback_offer_after', label: t('queue.callback_offer_after'), type: 'number' },
      { name: 'sms_missed_call', label: t('queue.sms_missed_call'), type: 'checkbox' },
      { name: 'sms_callback_scheduled', label: t('queue.sms_callback_scheduled'), type: 'checkbox' },
      { name: 'sms_callback_reminder', label: t('queue.sms_callback_reminder'), type: 'checkbox' },
      { name: 'notification_language', label: t('queue.notification_language'), type: 'select', parse: orNull,
        options: [['', t('queue.language_default')], ['ru', 'Русский'], ['en', 'English']] },
      { name: 'is_active', label: t('queue.active'), type: 'checkbox' },
      { name: 'is_default', label: t('queue.default'), type: 'checkbox' },
    ],
  });
}

const PROTOCOLS = ['ARI', 'https'];

function settingsFields() {
  return [
    { name: 'call_recording', label: t('settings.call_recording'), type: 'checkbox' },
    { name: 'callback_enabled', label: t('settings.callback_enabled'), type: 'checkbox' },
    { name: 'sms_notifications', label: t('settings.sms_notifications'), type: 'checkbox' },
    { name: 'auto_answer_delay', label: t('settings.auto_answer_delay'), type: 'number' },
    { name: 'max_call_duration', label: t('settings.max_call_duration'), type: 'number' },
    { name: 'queue_timeout', label: t('settings.queue_timeout'), type: 'number' },
    { name: 'pause_reasons', label: t('settings.pause_reasons'), type: 'list', help: t('common.comma_list') },
    { name: 'asterisk_config.enabled', label: t('settings.asterisk_enabled'), type: 'checkbox' },
    { name: 'asterisk_config.host', label: t('settings.asterisk_host'), required: true },
    { name: 'asterisk_config.port', label: t('settings.asterisk_port'), type: 'number' },
    { name: 'asterisk_config.username', label: t('settings.asterisk_username') },
    { name: 'asterisk_config.password', label: t('settings.asterisk_password'), type: 'password', help: t('settings.password_help') },
    { name: 'asterisk_config.protocol', label: t('settings.asterisk_protocol'), type: 'select', options: PROTOCOLS.map((p) => [p, p]) },
    { name: 'asterisk_config.timeout', label: t('settings.asterisk_timeout'), type: 'number' },
  ];
}

/** System settings and the Asterisk connection test (admins only). */
export class SettingsPage {
  constructor(api, notify) {
    this.api = api;
    this.notify = notify;
  }

  async mount(container) {
    let settings;
    try {
      settings = await this.api.get('/admin/settings');
    } catch (error) {
      fill(container, h('p', { class: 'form-error' }, error.detail));
      return;
    }
    const result = h('div', { class: 'test-result', role: 'status', dataset: { result: 'asterisk-test' } });
    const fields = settingsFields();
    const values = { ...settings, asterisk_config: { ...settings.asterisk_config, password: '' } };
    const test = h('button', { type: 'button', dataset: { action: 'test-asterisk' } }, t('settings.test'));
    const form = buildForm(fields, values, {
      submitLabel: t('common.save'),
      extra: test,
      onSubmit: async (body) => {
        await this.api.request('PUT', '/admin/settings', body);
        this.notify(t('common.saved'));
      },
    });
    test.addEventListener('click', () => this.testConnection(form, result, test));
    fill(container, h('section', { class: 'page', dataset: { page: 'settings' } },
      h('header', { class: 'page-head' }, h('h1', {}, t('nav.settings'))), form, result));
  }

  async testConnection(form, result, button) {
    const read = (name) => form.elements.namedItem(`asterisk_config.${name}`).value;
    const probe = {
      host: read('host'),
      port: Number(read('port')),
      username: read('username'),
      protocol: read('protocol'),
      timeout: Number(read('timeout')),
    };
    if (read('password')) probe.password = read('password'); // else the stored one is tested
    button.disabled = true;
    fill(result, t('settings.testing'));
    try {
      const answer = await this.api.request('POST', '/admin/settings/asterisk/test', probe);
      result.dataset.success = String(answer.success);
      fill(result, h('strong', {}, t(answer.success ? 'settings.test_ok' : 'settings.test_failed')), ' ', answer.message);
    } catch (error) {
      result.dataset.success = 'false';
      fill(result, h('strong', {}, t('settings.test_failed')), ' ', error.detail);
    } finally {
      button.disabled = false;
    }
  }
}

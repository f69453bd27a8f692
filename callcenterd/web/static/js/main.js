// The app: login, the navigation, the pages, the live connection, the language switch.
import { h, fill } from './dom.js';
import { t, language, setLanguage, LANGUAGES } from './i18n.js';
import { Api } from './api.js';
import { LiveEvents } from './live.js';
import { Board } from './board.js';
import { transferChoice, statusChoice } from './dialogs.js';
import { usersPage, groupsPage, queuesPage, SettingsPage } from './admin.js';
import { can } from './roles.js';

const NOTICE_MS = 6000;

const PAGES = [
  { route: 'board', label: 'nav.board', allowed: () => true },
  { route: 'users', label: 'nav.users', allowed: can.manageUsers, page: usersPage },
  { route: 'groups', label: 'nav.groups', allowed: can.readGroups, page: groupsPage },
  { route: 'queues', label: 'nav.queues', allowed: can.readQueues, page: queuesPage },
  { route: 'settings', label: 'nav.settings', allowed: can.editSettings, page: (api, notify) => new SettingsPage(api, notify) },
];

class App {
  constructor(root) {
    this.root = root;
    this.api = new Api(() => t('error.network'));
    this.api.onUnauthorized = () => this.signedOut();
    this.board = null;
    this.live = null;
    this.liveState = 'connecting';
    this.expired = false; // the last session ended by itself: the login says so until used
    this.expiry = null;
    this.notices = h('div', { class: 'notices', 'aria-live': 'polite' });
    window.addEventListener('hashchange', () => this.show());
  }

  async start() {
    document.documentElement.lang = language();
    if (this.api.token) {
      try {
        await this.api.me();
      } catch {
        this.api.forget();
      }
    }
    this.render();
  }

  notify = (text, kind = 'ok') => {
    const notice = h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
    this.notices.append(notice);
    setTimeout(() => notice.remove(), NOTICE_MS);
  };

  render() {
    document.title = t('app.title');
    if (!this.api.user) {
      this.renderLogin();
      return;
    }
    this.ensureLive();
    this.main = h('main', { class: 'content' });
    fill(this.root, this.header(), this.main, this.notices);
    this.show();
  }

  // --- login -----------------------------------------------------------------------------
  renderLogin() {
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { class: 'login', novalidate: true },
      h('h1', {}, t('app.title')),
      this.expired ? h('p', { class: 'expired', role: 'alert', dataset: { expired: 'true' } },
        h('strong', {}, t('login.expired_title')), h('br'), t('login.expired')) : null,
      h('label', { class: 'field' }, h('span', {}, t('login.username')),
        h('input', { name: 'username', autocomplete: 'username', required: true, value: this.lastUsername ?? '' })),
      h('label', { class: 'field' }, h('span', {}, t('login.password')),
        h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
      error,
      h('button', { type: 'submit', class: 'primary' }, t('login.submit')),
      this.languageSwitch());
    form.addEventListener('submit', async (submitted) => {
      submitted.preventDefault();
      error.hidden = true;
      try {
        await this.api.login(form.elements.username.value, form.elements.password.value);
      } catch (failure) {
        error.textContent = failure.detail;
        error.hidden = false;
        return;
      }
      this.expired = false;
      this.render();
    });
    fill(this.root, h('div', { class: 'login-screen' }, form), this.notices);
    (this.lastUsername ? form.elements.password : form.elements.username).focus();
  }

  async logout() {
    this.stopLive();
    this.expired = false;
    try {
      await this.api.logout();
    } catch {
      // the token is forgotten here whatever the server said
    }
    location.hash = '';
    this.render();
  }

  /** The token expired, was revoked or refused (a 401, the socket closed 4001/4003): the API
   * has no refresh endpoint and the password is not kept, so the board cannot renew itself.
   * It says so in place of the board, never a board silently frozen. */
  signedOut() {
    if (!this.api.user && !this.live) return;
    this.stopLive();
    this.lastUsername = this.api.user?.username ?? this.lastUsername;
    this.api.forget();
    this.expired = true;
    this.render();
  }

  /** At the token's expiry (on the server's clock) the session ends on this screen too. */
  watchExpiry() {
    clearTimeout(this.expiry);
    const expiresAt = this.api.expiresAt;
    if (expiresAt === null) return;
    // setTimeout holds at most 2^31-1 ms (24.8 days); a longer token is checked again then.
    const wait = Math.min(Math.max(0, expiresAt - this.api.now()), 2 ** 31 - 1);
    this.expiry = setTimeout(() => (this.api.now() >= expiresAt ? this.signedOut() : this.watchExpiry()), wait);
  }

  // --- the frame -------------------------------------------------------------------------
  header() {
    const user = this.api.user;
    const current = this.route();
    return h('header', { class: 'topbar' },
      h('div', { class: 'brand' }, t('app.title')),
      h('nav', { class: 'nav' }, PAGES.filter((page) => page.allowed(user.role)).map((page) =>
        h('a', { href: `#/${page.route}`, class: page.route === current ? 'active' : null,
          dataset: { route: page.route } }, t(page.label)))),
      h('span', { class: `live live-${this.liveState}`, dataset: { live: this.liveState } }, t(`live.${this.liveState}`)),
      this.languageSwitch(),
      h('span', { class: 'who' }, `${user.name} · ${t(`role.${user.role}`)}`),
      h('button', { type: 'button', class: 'small', dataset: { action: 'logout' }, onclick: () => this.logout() }, t('login.logout')));
  }

  languageSwitch() {
    return h('span', { class: 'languages' }, LANGUAGES.map((code) => h('button', {
      type: 'button',
      class: code === language() ? 'small lang active' : 'small lang',
      dataset: { lang: code },
      'aria-pressed': String(code === language()),
      onclick: () => {
        setLanguage(code);
        document.documentElement.lang = code;
        this.render();
      },
    }, code.toUpperCase())));
  }

  route() {
    const wanted = location.hash.replace(/^#\/?/, '') || 'board';
    const page = PAGES.find((candidate) => candidate.route === wanted);
    return page && this.api.user && page.allowed(this.api.user.role) ? wanted : 'board';
  }

  show() {
    if (!this.api.user || !this.main) return;
    const route = this.route();
    for (const link of this.root.querySelectorAll('.nav a')) {
      link.classList.toggle('active', link.dataset.route === route);
    }
    if (route === 'board') {
      this.board.mount(this.main);
      return;
    }
    const page = PAGES.find((candidate) => candidate.route === route);
    page.page(this.api, this.notify).mount(this.main);
  }

  // --- live ------------------------------------------------------------------------------
  ensureLive() {
    if (this.live) return;
    this.watchExpiry();
    this.board = new Board(this.api, this.notify, { transferChoice, statusChoice });
    this.board.start();
    this.live = new LiveEvents(this.api.token, {
      onEvent: (event) => this.board.apply(event),
      onResync: () => this.board.reload(),
      onState: (state, first) => {
        this.setLiveState(state);
        if (state === 'live' && first) this.board.reload();
      },
      onAuthLost: () => this.signedOut(),
    });
    this.live.start();
  }

  stopLive() {
    clearTimeout(this.expiry);
    this.live?.stop();
    this.board?.stop();
    this.live = null;
    this.board = null;
  }

  setLiveState(state) {
    this.liveState = state;
    const badge = this.root.querySelector('[data-live]');
    if (!badge) return;
    badge.dataset.live = state;
    badge.className = `live live-${state}`;
    badge.textContent = t(`live.${state}`);
  }
}

new App(document.getElementById('app')).start();

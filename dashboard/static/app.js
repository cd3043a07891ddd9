// nanokube dashboard: lists come from the API server's server-side Tables
// (the columns kubectl prints) and follow changes through Table watches.
'use strict';

const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
const HEADER = 'X-Nanokube-Dashboard';

const core = (resource, title, o) => Object.assign({ group: '', version: 'v1', resource, title, namespaced: true }, o);
const grp = (group, version, resource, title, o) => Object.assign({ group, version, resource, title, namespaced: true }, o);

const SECTIONS = [
  ['Workloads', [
    core('pods', 'Pods', { logs: true }),
    grp('apps', 'v1', 'deployments', 'Deployments', { scale: true, restart: true }),
    grp('apps', 'v1', 'replicasets', 'Replica Sets', { scale: true }),
    grp('apps', 'v1', 'statefulsets', 'Stateful Sets', { scale: true, restart: true }),
    grp('apps', 'v1', 'daemonsets', 'Daemon Sets', { restart: true }),
    grp('batch', 'v1', 'jobs', 'Jobs'),
    grp('batch', 'v1', 'cronjobs', 'Cron Jobs'),
    grp('autoscaling', 'v2', 'horizontalpodautoscalers', 'Autoscalers'),
  ]],
  ['Network', [
    core('services', 'Services'),
    grp('networking.k8s.io', 'v1', 'ingresses', 'Ingresses'),
    grp('discovery.k8s.io', 'v1', 'endpointslices', 'Endpoint Slices'),
    grp('networking.k8s.io', 'v1', 'networkpolicies', 'Network Policies'),
    grp('networking.k8s.io', 'v1', 'ingressclasses', 'Ingress Classes', { namespaced: false }),
  ]],
  ['Config and Storage', [
    core('configmaps', 'Config Maps'),
    core('secrets', 'Secrets', { secret: true }),
    core('serviceaccounts', 'Service Accounts'),
    core('persistentvolumeclaims', 'Volume Claims'),
    core('persistentvolumes', 'Persistent Volumes', { namespaced: false }),
    grp('storage.k8s.io', 'v1', 'storageclasses', 'Storage Classes', { namespaced: false }),
  ]],
  ['Cluster', [
    core('nodes', 'Nodes', { namespaced: false }),
    core('namespaces', 'Namespaces', { namespaced: false }),
    core('events', 'Events'),
    core('resourcequotas', 'Resource Quotas'),
    core('limitranges', 'Limit Ranges'),
    grp('rbac.authorization.k8s.io', 'v1', 'roles', 'Roles'),
    grp('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'Role Bindings'),
    grp('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'Cluster Roles', { namespaced: false }),
    grp('policy', 'v1', 'poddisruptionbudgets', 'Disruption Budgets'),
  ]],
];

let KINDS = new Map();
for (const [, items] of SECTIONS) for (const k of items) KINDS.set(k.resource, k);

// view is the generation of what is on screen: async work for an older
// view drops its result, and its watch is aborted.
let view = 0;
let aborter = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function base(kind) {
  return kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
}

function collection(kind, ns) {
  return kind.namespaced && ns ? `${base(kind)}/namespaces/${encodeURIComponent(ns)}/${kind.resource}` : `${base(kind)}/${kind.resource}`;
}

function objectPath(kind, ns, name) {
  return `${collection(kind, kind.namespaced ? ns : '')}/${encodeURIComponent(name)}`;
}

async function api(path, opts) {
  opts = opts || {};
  const headers = Object.assign({ Accept: 'application/json' }, opts.headers);
  if (opts.method && opts.method !== 'GET') headers[HEADER] = '1';
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { const s = await r.json(); if (s.message) msg = s.message; } catch (_) { /* not a Status */ }
    throw new Error(msg);
  }
  return opts.text ? r.text() : r.json();
}

function showError(err) {
  const box = document.getElementById('error');
  if (!err) { box.hidden = true; return; }
  box.textContent = String(err.message || err);
  box.hidden = false;
}

function setView(...nodes) {
  const v = document.getElementById('view');
  v.replaceChildren(...nodes);
}

function currentNS() { return document.getElementById('namespace').value; }

// route parses "#/pods", "#/pods/NS/NAME" and "#/nodes/-/NAME".
function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const kind = KINDS.get(parts[0]) || KINDS.get('pods');
  if (parts.length >= 3) return { kind, ns: parts[1] === '-' ? '' : parts[1], name: parts.slice(2).join('/') };
  return { kind };
}

function link(kind, ns, name) {
  return `#/${kind.resource}/${kind.namespaced ? encodeURIComponent(ns) : '-'}/${encodeURIComponent(name)}`;
}

function renderNav(active) {
  const nav = document.getElementById('kinds');
  nav.replaceChildren(...SECTIONS.map(([title, items]) => el('div', {},
    el('h3', {}, title),
    items.map(k => el('a', { href: `#/${k.resource}`, class: k === active ? 'active' : null }, k.title)))));
}

// tableView renders a Table's rows with its priority-0 columns, adding a
// namespace column for lists across namespaces, as kubectl does.
function tableView(kind, table, rows, allNS) {
  const cols = [];
  (table.columnDefinitions || []).forEach((c, i) => { if (!c.priority) cols.push([c, i]); });
  const head = el('tr', {}, allNS ? el('th', {}, 'Namespace') : null, cols.map(([c]) => el('th', { title: c.description || '' }, c.name)));
  const body = [...rows.values()].map(row => {
    const md = (row.object && row.object.metadata) || {};
    return el('tr', {},
      allNS ? el('td', {}, md.namespace || '') : null,
      cols.map(([c, i]) => {
        const cell = row.cells[i];
        const text = cell === null || cell === undefined ? '' : (typeof cell === 'object' ? JSON.stringify(cell) : String(cell));
        if (c.format === 'name' && kind) return el('td', {}, el('a', { href: link(kind, md.namespace || '', md.name || text) }, text));
        return el('td', {}, text);
      }));
  });
  if (!body.length) return el('p', { class: 'muted' }, 'No resources found.');
  return el('table', {}, el('thead', {}, head), el('tbody', {}, body));
}

function rowKey(row) {
  const md = (row.object && row.object.metadata) || {};
  return md.uid || `${md.namespace}/${md.name}`;
}

// readStream calls onLine for every line of a streamed response body.
async function readStream(resp, onLine) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) { if (buf) onLine(buf); return; }
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  }
}

// liveTable lists path as a Table into target and keeps it current with a
// Table watch from the list's resourceVersion; it lists again when the
// watch ends or the server says the version is gone.
async function liveTable(my, signal, kind, path, allNS, target) {
  while (my === view) {
    const table = await api(path, { headers: { Accept: TABLE }, signal });
    if (my !== view) return;
    const rows = new Map();
    for (const r of table.rows || []) rows.set(rowKey(r), r);
    const redraw = () => target.replaceChildren(tableView(kind, table, rows, allNS));
    redraw();
    const sep = path.includes('?') ? '&' : '?';
    const resp = await fetch(`${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(table.metadata.resourceVersion)}`,
      { headers: { Accept: TABLE }, signal });
    if (!resp.ok) throw new Error(`watch ${path}: ${resp.status} ${resp.statusText}`);
    let gone = false;
    await readStream(resp, line => {
      if (!line.trim() || my !== view) return;
      const ev = JSON.parse(line);
      if (ev.type === 'ERROR') { gone = true; return; }
      if (ev.type === 'BOOKMARK' || !ev.object) return;
      if (ev.object.columnDefinitions && ev.object.columnDefinitions.length) table.columnDefinitions = ev.object.columnDefinitions;
      for (const r of ev.object.rows || []) {
        if (ev.type === 'DELETED') rows.delete(rowKey(r)); else rows.set(rowKey(r), r);
      }
      redraw();
    });
    if (gone) continue;
  }
}

async function showList(my, signal, kind) {
  const ns = kind.namespaced ? currentNS() : '';
  const target = el('div', {}, el('p', { class: 'muted' }, 'Loading…'));
  setView(el('h1', {}, kind.title, kind.namespaced ? el('span', { class: 'muted' }, ns ? `in ${ns}` : 'in all namespaces') : null), target);
  await liveTable(my, signal, kind, collection(kind, ns), kind.namespaced && !ns, target);
}

// toYAML renders decoded JSON as YAML, quoting every string YAML could
// read as something else.
function toYAML(v, ind) {
  ind = ind || '';
  const isObj = x => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (Array.isArray(v)) {
    if (!v.length) return ' []';
    return v.map(x => {
      const inner = toYAML(x, ind + '  ');
      if ((isObj(x) && Object.keys(x).length) || (Array.isArray(x) && x.length)) return `\n${ind}- ${inner.replace(/^\n\s*/, '')}`;
      return `\n${ind}-${inner}`;
    }).join('');
  }
  if (isObj(v)) {
    const ks = Object.keys(v);
    if (!ks.length) return ' {}';
    return ks.map(k => `\n${ind}${scalar(k)}:${toYAML(v[k], ind + '  ')}`).join('');
  }
  return ' ' + scalar(v);
}

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v !== 'string') return String(v);
  const plain = /^[A-Za-z_/.][A-Za-z0-9_./@+-]*( [A-Za-z0-9_./@+()-]+)*$/.test(v) &&
    !/^(true|false|yes|no|on|off|null|y|n|~)$/i.test(v);
  return plain ? v : JSON.stringify(v);
}

// shown is what the YAML view prints: like kubectl get -o yaml it leaves
// out managedFields, and a Secret's values stay hidden (its last applied
// configuration holds them too) until asked for.
function shown(obj, reveal) {
  const copy = JSON.parse(JSON.stringify(obj));
  if (copy.metadata) delete copy.metadata.managedFields;
  if (copy.kind !== 'Secret' || reveal) return revealed(copy);
  const ann = copy.metadata && copy.metadata.annotations;
  if (ann && ann['kubectl.kubernetes.io/last-applied-configuration']) ann['kubectl.kubernetes.io/last-applied-configuration'] = '<hidden>';
  for (const k of Object.keys(copy.data || {})) copy.data[k] = `<${atob(copy.data[k]).length} bytes>`;
  return copy;
}

function revealed(copy) {
  if (copy.kind !== 'Secret' || !copy.data) return copy;
  for (const k of Object.keys(copy.data)) {
    copy.data[k] = atob(copy.data[k]);
  }
  return copy;
}

async function act(fn, after) {
  try { showError(null); await fn(); if (after) after(); } catch (e) { showError(e); }
}

function actions(kind, ns, name) {
  const path = objectPath(kind, ns, name);
  const out = [];
  if (kind.scale) {
    out.push(el('button', { onclick: () => {
      const n = prompt(`Replicas for ${name}:`);
      if (n === null) return;
      if (!/^\d+$/.test(n.trim())) { showError(`"${n}" is not a number of replicas`); return; }
      act(() => api(`${path}/scale`, { method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' },
        body: JSON.stringify({ spec: { replicas: Number(n.trim()) } }) }), render);
    } }, 'Scale'));
  }
  if (kind.restart) {
    out.push(el('button', { onclick: () => act(() => api(path, { method: 'PATCH',
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
      body: JSON.stringify({ spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } }) }), render) }, 'Restart'));
  }
  out.push(el('button', { class: 'danger', onclick: () => {
    if (!confirm(`Delete ${kind.resource}/${name}${ns ? ` in ${ns}` : ''}?`)) return;
    act(() => api(path, { method: 'DELETE', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' }) }),
    () => { location.hash = `#/${kind.resource}`; });
  } }, 'Delete'));
  return out;
}

function summary(obj) {
  const md = obj.metadata || {};
  const kv = [['Kind', `${obj.kind} (${obj.apiVersion})`], ['Name', md.name], ['Namespace', md.namespace],
    ['Created', md.creationTimestamp], ['UID', md.uid],
    ['Labels', Object.entries(md.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ')],
    ['Owners', (md.ownerReferences || []).map(o => `${o.kind}/${o.name}`).join(', ')]];
  if (obj.status && obj.status.phase) kv.push(['Phase', obj.status.phase]);
  if (md.deletionTimestamp) kv.push(['Deleting since', md.deletionTimestamp]);
  return el('table', { class: 'kv' }, el('tbody', {}, kv.filter(([, v]) => v).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v)))));
}

function logsPanel(my, signal, ns, pod) {
  const containers = [...(pod.spec.initContainers || []), ...(pod.spec.containers || [])].map(c => c.name);
  const select = el('select', {}, containers.map(c => el('option', { value: c }, c)));
  const follow = el('input', { type: 'checkbox' });
  const out = el('pre', {}, '');
  let stream = null;
  const load = async () => {
    if (stream) stream.abort();
    stream = new AbortController();
    signal.addEventListener('abort', () => stream.abort());
    out.textContent = '';
    const q = `container=${encodeURIComponent(select.value)}&tailLines=500${follow.checked ? '&follow=true' : ''}`;
    const resp = await fetch(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod.metadata.name)}/log?${q}`, { signal: stream.signal });
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText}`;
      try { msg = (await resp.json()).message || msg; } catch (_) { /* plain text */ }
      out.textContent = msg;
      return;
    }
    await readStream(resp, line => { if (my === view) out.textContent += line + '\n'; });
  };
  const reload = () => load().catch(e => { if (e.name !== 'AbortError') showError(e); });
  select.addEventListener('change', reload);
  follow.addEventListener('change', reload);
  reload();
  return el('div', {}, el('div', { class: 'tabs' }, 'Container ', select, el('label', {}, follow, ' follow')), out);
}

async function showObject(my, signal, kind, ns, name) {
  const obj = await api(objectPath(kind, ns, name), { signal });
  if (my !== view) return;
  const yaml = el('pre', {}, toYAML(shown(obj, false)).replace(/^\n/, ''));
  const parts = [
    el('h1', {}, `${kind.title.replace(/s$/, '')}: ${name}`, actions(kind, ns, name)),
    summary(obj),
  ];
  if (kind.logs) parts.push(el('h2', {}, 'Logs'), logsPanel(my, signal, ns, obj));
  const events = el('div', {}, el('p', { class: 'muted' }, 'Loading…'));
  parts.push(el('h2', {}, 'Events'), events);
  const yamlHead = el('h2', {}, 'YAML');
  if (kind.secret) {
    let visible = false;
    yamlHead.append(' ', el('button', { onclick: e => {
      visible = !visible;
      e.target.textContent = visible ? 'Hide values' : 'Show values';
      yaml.textContent = toYAML(shown(obj, visible)).replace(/^\n/, '');
    } }, 'Show values'));
  }
  parts.push(yamlHead, yaml);
  setView(...parts);
  const evNS = obj.metadata.namespace || 'default';
  const sel = `involvedObject.name=${obj.metadata.name},involvedObject.uid=${obj.metadata.uid}`;
  await liveTable(my, signal, KINDS.get('events'), `/api/v1/namespaces/${encodeURIComponent(evNS)}/events?fieldSelector=${encodeURIComponent(sel)}`, false, events);
}

async function render() {
  const my = ++view;
  if (aborter) aborter.abort();
  aborter = new AbortController();
  const signal = aborter.signal;
  showError(null);
  const r = route();
  renderNav(r.kind);
  try {
    if (r.name) await showObject(my, signal, r.kind, r.ns, r.name);
    else await showList(my, signal, r.kind);
  } catch (e) {
    if (e.name !== 'AbortError' && my === view) showError(e);
  }
}

async function loadNamespaces() {
  const sel = document.getElementById('namespace');
  const saved = localStorage.getItem('nanokube.namespace');
  const list = await api('/api/v1/namespaces');
  for (const ns of list.items || []) sel.append(el('option', { value: ns.metadata.name }, ns.metadata.name));
  sel.value = saved !== null && [...sel.options].some(o => o.value === saved) ? saved : 'default';
  sel.addEventListener('change', () => { localStorage.setItem('nanokube.namespace', sel.value); render(); });
}

// Custom resources join the navigation from the cluster's CRDs.
async function loadCustomKinds() {
  const list = await api('/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
  const items = [];
  for (const crd of list.items || []) {
    const v = (crd.spec.versions || []).find(x => x.storage) || (crd.spec.versions || [])[0];
    if (!v) continue;
    const k = grp(crd.spec.group, v.name, crd.spec.names.plural, crd.spec.names.kind, { namespaced: crd.spec.scope === 'Namespaced' });
    items.push(k);
    KINDS.set(k.resource, k);
  }
  if (items.length) SECTIONS.push(['Custom Resources', items]);
}

async function main() {
  try {
    const v = await api('/version');
    document.getElementById('cluster').textContent = `Kubernetes ${v.gitVersion}`;
    await loadNamespaces();
    await loadCustomKinds().catch(() => {});
  } catch (e) {
    showError(e);
  }
  window.addEventListener('hashchange', render);
  render();
}

if (typeof window !== 'undefined') main();

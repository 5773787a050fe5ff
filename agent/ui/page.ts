/**
 * The page `petrelctl ui` serves: plain HTML, one stylesheet and one script, no framework and no
 * build step. They live here as strings so the petrelctl bundle (and its single executable) carry
 * them. The script builds every element with textContent (names come from etcd: never HTML), and
 * the server's Content-Security-Policy allows only these three files.
 *
 * The script: GET /api/cluster once, then one EventSource on /api/events (`cluster`: redraw,
 * `feed`: prepend to the route feed). The "A → B" panel asks GET /api/path and redraws the answer
 * after every picture while a pair is chosen. DOM hooks for tests and scripts: [data-node],
 * [data-session][data-state], [data-link][data-health], [data-block], [data-pod], #path-*, #feed.
 */

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Petrel cluster</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>Petrel</h1>
  <span id="summary">loading…</span>
  <span id="conn" data-state="connecting">connecting</span>
  <span id="at"></span>
</header>
<main>
  <section id="topology-section">
    <h2>Nodes and BGP sessions</h2>
    <svg id="topology" viewBox="0 0 640 380" role="img" aria-label="nodes and BGP sessions"></svg>
    <p class="legend">
      <span class="h-up">● Established</span> <span class="h-connecting">● connecting</span>
      <span class="h-down">● down</span> <span class="h-unknown">● unknown</span> · double ring: route reflector
    </p>
  </section>
  <section id="path-section">
    <h2>A → B: why can't this pod reach that one?</h2>
    <label>A <select id="path-from"></select></label>
    <span>→</span>
    <label>B <select id="path-to"></select></label>
    <button id="path-check" type="button">Check</button>
    <div id="path-result"></div>
  </section>
  <section id="problems-section">
    <h2>Problems</h2>
    <ul id="problems"></ul>
  </section>
  <section id="nodes-section">
    <h2>Nodes</h2>
    <div id="nodes"></div>
  </section>
  <section id="pods-section">
    <h2>Pods</h2>
    <table id="pods"></table>
  </section>
  <section id="pools-section">
    <h2>Pools</h2>
    <table id="pools"></table>
  </section>
  <section id="feed-section">
    <h2>Route feed <small>(best-path changes as each node's speaker reports them)</small></h2>
    <ol id="feed"></ol>
  </section>
</main>
</body>
</html>
`;

export const APP_CSS = `:root { --up: #1a7f37; --connecting: #bf8700; --down: #cf222e; --unknown: #8c959f; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: #f6f8fa; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1em; background: #24292f; color: #fff; }
header h1 { margin: 0; font-size: 1.3em; }
#conn[data-state="open"] { color: #7ee787; } #conn[data-state="connecting"], #conn[data-state="closed"] { color: #ffa198; }
#at { color: #afb8c1; margin-left: auto; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; padding: 1em; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5em 1em 1em; }
#nodes-section, #feed-section, #pods-section { grid-column: 1 / -1; }
h2 { font-size: 1.05em; margin: .4em 0 .6em; } h3 { margin: 0 0 .3em; font-size: 1em; } h4 { margin: .6em 0 .2em; font-size: .9em; color: var(--muted); }
.h-up { color: var(--up); } .h-connecting { color: var(--connecting); } .h-down { color: var(--down); } .h-unknown { color: var(--unknown); }
svg { width: 100%; height: auto; max-height: 380px; }
svg line { stroke-width: 3; } svg line.h-up { stroke: var(--up); } svg line.h-connecting { stroke: var(--connecting); stroke-dasharray: 6 4; }
svg line.h-down { stroke: var(--down); stroke-dasharray: 2 4; } svg line.h-unknown { stroke: var(--unknown); stroke-dasharray: 2 4; }
svg circle { fill: #fff; stroke-width: 3; } svg circle.a-up { stroke: var(--up); } svg circle.a-down { stroke: var(--down); fill: #ffebe9; }
svg circle.rr-ring { fill: none; stroke: #0969da; stroke-width: 2; }
svg text { font: 12px system-ui, sans-serif; text-anchor: middle; } svg text.sub { fill: var(--muted); font-size: 11px; }
#nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: .8em; }
.node { border: 1px solid var(--line); border-radius: 6px; padding: .5em .8em; }
.node[data-agent="unreachable"] { border-color: var(--down); background: #fff8f8; }
.badge { font-size: .75em; border-radius: 1em; padding: 0 .5em; border: 1px solid currentColor; margin-left: .4em; }
.meta { color: var(--muted); font-size: .9em; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .15em .4em; border-bottom: 1px solid #eaeef2; vertical-align: top; }
ul.plain { list-style: none; padding: 0; margin: 0; }
.bar { display: inline-block; width: 120px; height: .7em; background: #eaeef2; border-radius: .35em; overflow: hidden; vertical-align: middle; margin: 0 .4em; }
.bar .fill { display: block; height: 100%; background: #0969da; }
code { font: 12px ui-monospace, monospace; }
#path-result { margin-top: .6em; } #path-verdict { font-weight: 600; margin-bottom: .3em; }
#path-verdict[data-ok="true"] { color: var(--up); } #path-verdict[data-ok="false"] { color: var(--down); }
#path-result li[data-ok="true"]::marker { content: "✓ "; color: var(--up); }
#path-result li[data-ok="false"]::marker { content: "✗ "; color: var(--down); }
#path-result li[data-ok="unknown"]::marker { content: "? "; color: var(--connecting); }
#path-result .detail { color: var(--muted); }
#problems li { color: var(--down); } #problems li.none { color: var(--up); list-style: none; }
#feed { max-height: 18em; overflow: auto; font: 12px ui-monospace, monospace; list-style: none; padding-left: .5em; margin: 0; }
#feed li[data-kind="add"] .k { color: var(--up); } #feed li[data-kind="withdraw"] .k, #feed li[data-kind="stream-lost"] .k { color: var(--down); }
#feed li[data-kind="replace"] .k { color: var(--connecting); } #feed li[data-kind="stream-up"] .k { color: #0969da; }
`;

export const APP_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  /** Element with attributes (data-*, class, …) and children (strings become text nodes). */
  function h(tag, attrs, ...kids) {
    const svg = ['svg', 'line', 'circle', 'text', 'g', 'title'].includes(tag);
    const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
    for (const c of kids.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }
  const HEALTH = { Established: 'up', Connect: 'connecting', Active: 'connecting', OpenSent: 'connecting', OpenConfirm: 'connecting', Idle: 'down' };
  const health = (s) => HEALTH[s] || 'unknown';
  const dur = (s) => (s >= 3600 ? Math.floor(s / 3600) + 'h' : s >= 60 ? Math.floor(s / 60) + 'm' : s + 's');
  let view = null;
  let lastPair = null;

  function renderTopology(v) {
    const svg = $('topology');
    svg.replaceChildren();
    const n = v.nodes.length;
    const cx = 320, cy = 190, r = n <= 1 ? 0 : Math.min(140, 70 + n * 20);
    const pos = new Map();
    v.nodes.forEach((node, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
      pos.set(node.name, [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    });
    for (const l of v.links) {
      const [x1, y1] = pos.get(l.a) || [0, 0];
      const [x2, y2] = pos.get(l.b) || [0, 0];
      svg.append(h('line', { x1, y1, x2, y2, class: 'h-' + l.health, 'data-link': l.a + '|' + l.b, 'data-health': l.health },
        h('title', {}, l.a + ' ↔ ' + l.b + ': ' + (l.stateA || '?') + ' / ' + (l.stateB || '?'))));
    }
    for (const node of v.nodes) {
      const [x, y] = pos.get(node.name);
      const up = node.agent.reachable && node.alive;
      const g = h('g', { 'data-topo-node': node.name });
      if (node.routeReflector) g.append(h('circle', { cx: x, cy: y, r: 34, class: 'rr-ring' }));
      g.append(h('circle', { cx: x, cy: y, r: 28, class: up ? 'a-up' : 'a-down' }));
      g.append(h('text', { x, y: y - 2 }, node.name));
      g.append(h('text', { x, y: y + 12, class: 'sub' }, node.pods.length + ' pod' + (node.pods.length === 1 ? '' : 's')));
      g.append(h('text', { x, y: y + 48, class: 'sub' }, (node.ipv4 || node.ipv6 || '') + (up ? '' : ' · agent down')));
      svg.append(g);
    }
  }

  function renderNodes(v) {
    const pods = new Map(v.pods.map((p) => [p.id, p]));
    $('nodes').replaceChildren(...v.nodes.map((node) => {
      const a = node.agent;
      const state = a.reachable ? (a.ready ? 'agent ready' : 'agent NOT ready: ' + a.reasons.join('; ')) : 'agent unreachable: ' + (a.error || '?');
      return h('article', { class: 'node', 'data-node': node.name, 'data-alive': node.alive, 'data-agent': a.reachable ? 'up' : 'unreachable' },
        h('h3', {}, node.name,
          node.routeReflector ? h('span', { class: 'badge', 'data-rr': node.clusterId || '' }, 'route reflector' + (node.clusterId ? ' ' + node.clusterId : '')) : null,
          node.alive ? null : h('span', { class: 'badge h-down' }, 'not alive')),
        h('div', { class: 'meta' }, [node.ipv4, node.ipv6].filter(Boolean).join(', ') + ' · AS ' + node.asNumber),
        h('div', { class: 'meta agent-state ' + (a.reachable && a.ready ? 'h-up' : 'h-down') }, state,
          a.desiredRoutes !== undefined ? ' · kernel ' + a.routesProgrammed + '/' + a.desiredRoutes + ' routes' : ''),
        h('h4', {}, 'Blocks'),
        node.blocks.length === 0 ? h('div', { class: 'meta' }, 'none') :
        h('ul', { class: 'plain blocks' }, node.blocks.map((b) => {
          const fill = h('span', { class: 'fill' });
          fill.style.width = Math.round(b.utilisation * 100) + '%';
          return h('li', { 'data-block': b.cidr, 'data-in-use': b.inUse, 'data-size': b.size },
            h('code', {}, b.cidr), h('span', { class: 'bar', title: Math.round(b.utilisation * 100) + '%' }, fill), b.inUse + '/' + b.size + ' used');
        })),
        h('h4', {}, 'BGP sessions'),
        node.sessions.length === 0 ? h('div', { class: 'meta' }, a.reachable ? 'none' : 'unknown (agent unreachable)') :
        h('table', { class: 'sessions' }, node.sessions.map((s) =>
          h('tr', { 'data-session': node.name + '>' + s.peerAddress, 'data-peer-node': s.peerNode || '', 'data-state': s.state, class: 'h-' + s.health },
            h('td', {}, s.peerNode ? s.peerNode + ' ' : '', h('code', {}, s.peerAddress)),
            h('td', {}, s.type),
            h('td', { class: 'state' }, s.state),
            h('td', {}, s.health === 'up' ? 'up ' + dur(s.uptimeSec) + ' · ' + s.prefixesAccepted + ' pfx' : (s.lastError || '')),
          ))),
        h('h4', {}, 'Pods'),
        node.pods.length === 0 ? h('div', { class: 'meta' }, 'none') :
        h('ul', { class: 'plain pods' }, node.pods.map((id) => {
          const p = pods.get(id);
          return h('li', { 'data-pod': id, 'data-pod-name': p.name }, p.name + ' ', p.ips.map((ip) => h('code', { class: 'pod-ip' }, ip + ' ')));
        })),
        h('h4', {}, 'Learned routes'),
        h('ul', { class: 'plain routes' }, node.routes.filter((r) => !r.local).map((r) =>
          h('li', { 'data-route': r.prefix, 'data-stale': r.stale }, h('code', {}, r.prefix), ' via ' + r.nextHops.join(', ') + (r.viaNode ? ' (' + r.viaNode + ')' : '') + (r.stale ? ' STALE' : '')))),
      );
    }));
  }

  function renderTables(v) {
    $('pods').replaceChildren(h('tr', {}, h('th', {}, 'pod'), h('th', {}, 'node'), h('th', {}, 'addresses'), h('th', {}, 'block'), h('th', {}, 'handle')),
      ...v.pods.map((p) => h('tr', { 'data-pod-row': p.id }, h('td', {}, (p.namespace ? p.namespace + '/' : '') + p.name), h('td', {}, p.node),
        h('td', {}, p.ips.join(', ')), h('td', {}, p.blocks.join(', ')), h('td', {}, h('code', {}, p.id)))));
    $('pools').replaceChildren(h('tr', {}, h('th', {}, 'pool'), h('th', {}, 'cidr'), h('th', {}, 'blocks'), h('th', {}, 'in use'), h('th', {}, 'encapsulation')),
      ...v.pools.map((p) => h('tr', { 'data-pool': p.name }, h('td', {}, p.name + (p.disabled ? ' (disabled)' : '')), h('td', {}, h('code', {}, p.cidr)),
        h('td', {}, p.blocks + ' × /' + p.blockSize), h('td', {}, p.inUse + ' / ' + p.size),
        h('td', {}, 'ipip ' + p.ipipMode + ', vxlan ' + p.vxlanMode + (p.natOutgoing ? ', NAT out' : '')))));
    $('problems').replaceChildren(...(v.problems.length ? v.problems.map((p) => h('li', {}, p)) : [h('li', { class: 'none' }, 'none: every node alive, every session Established')]));
    const up = v.links.filter((l) => l.health === 'up').length;
    $('summary').textContent = v.nodes.length + ' nodes · ' + up + '/' + v.links.length + ' sessions up · ' + v.pods.length + ' pods · AS ' + v.asNumber + (v.nodeToNodeMesh ? ' · full mesh' : ' · no mesh');
    $('at').textContent = new Date(v.at).toLocaleTimeString();
  }

  function renderSelects(v) {
    for (const id of ['path-from', 'path-to']) {
      const sel = $(id);
      const keep = sel.value;
      sel.replaceChildren(h('option', { value: '' }, '— pod —'), ...v.pods.map((p) => h('option', { value: p.id }, p.name + ' (' + p.ips.join(', ') + ' on ' + p.node + ')')));
      if (v.pods.some((p) => p.id === keep)) sel.value = keep;
    }
  }

  async function checkPath(pair) {
    const out = $('path-result');
    const r = await fetch('/api/path?from=' + encodeURIComponent(pair[0]) + '&to=' + encodeURIComponent(pair[1]));
    const body = await r.json();
    if (!r.ok) {
      out.replaceChildren(h('div', { id: 'path-verdict', 'data-ok': 'false' }, body.error || ('HTTP ' + r.status)));
      return;
    }
    out.replaceChildren(
      h('div', { id: 'path-verdict', 'data-ok': body.ok }, body.verdict),
      h('div', { class: 'meta' }, body.from.name + ' ' + body.from.ip + ' on ' + body.from.node + ' (block ' + body.from.block + ') → ' +
        body.to.name + ' ' + body.to.ip + ' on ' + body.to.node + ' (block ' + body.to.block + ')'),
      h('ol', {}, body.checks.map((c) => h('li', { 'data-check': c.id, 'data-ok': c.ok === null ? 'unknown' : c.ok },
        c.label, h('span', { class: 'detail' }, ' — ' + c.detail)))));
  }

  function render(v) {
    view = v;
    renderTopology(v);
    renderNodes(v);
    renderTables(v);
    renderSelects(v);
    if (lastPair) checkPath(lastPair).catch(() => {});
    document.body.dataset.ready = 'true';
  }

  function feedItem(e) {
    const what = e.prefix ? e.prefix + (e.nextHops ? ' via ' + e.nextHops.join(',') : '') + (e.viaNode ? ' (' + e.viaNode + ')' : '') : (e.detail || '');
    return h('li', { 'data-kind': e.kind, 'data-node': e.node, 'data-prefix': e.prefix || '', 'data-seq': e.seq },
      new Date(e.at).toLocaleTimeString() + ' ' + e.node + ': ', h('span', { class: 'k' }, e.kind), ' ' + what);
  }
  function addFeed(e) {
    const feed = $('feed');
    if (feed.querySelector('[data-seq="' + e.seq + '"]')) return;
    feed.prepend(feedItem(e));
    while (feed.children.length > 300) feed.lastElementChild.remove();
  }

  $('path-check').addEventListener('click', () => {
    const a = $('path-from').value, b = $('path-to').value;
    if (!a || !b) return;
    lastPair = [a, b];
    checkPath(lastPair).catch((err) => { $('path-result').textContent = String(err); });
  });

  fetch('/api/cluster').then((r) => (r.ok ? r.json() : null)).then((v) => { if (v && !view) render(v); }).catch(() => {});
  const es = new EventSource('/api/events');
  es.onopen = () => { $('conn').dataset.state = 'open'; $('conn').textContent = 'live'; };
  es.onerror = () => { $('conn').dataset.state = 'closed'; $('conn').textContent = 'reconnecting…'; };
  es.addEventListener('cluster', (ev) => render(JSON.parse(ev.data)));
  es.addEventListener('feed', (ev) => addFeed(JSON.parse(ev.data)));
})();
`;

"""The explorer page: one self-contained HTML file (style, script and data inline; no server, no network, no
library: the lists, the table and the SVG map are a few hundred lines of plain DOM code, less than any
framework's runtime would add to the file). Every text from the data reaches the page through textContent
or an SVG <title>, never through innerHTML, and the embedded JSON escapes `<`, so no record can close the
script element or add markup."""

from __future__ import annotations

import json

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{padding:8px 16px;background:#1f3b57;color:#fff;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
nav button{background:none;border:0;color:#cfe;font-size:14px;cursor:pointer;padding:4px 8px}
nav button.on{color:#fff;border-bottom:2px solid #fff}
main{display:flex;height:calc(100vh - 48px)}
#list{width:34%;min-width:280px;border-right:1px solid #ddd;display:flex;flex-direction:column}
#filters{padding:8px;display:grid;grid-template-columns:1fr 1fr;gap:4px;border-bottom:1px solid #ddd}
#filters input,#filters select{width:100%;box-sizing:border-box}
#filters .wide{grid-column:1/3}
#prompts{overflow:auto;flex:1;margin:0;padding:0;list-style:none}
#prompts li{padding:6px 8px;border-bottom:1px solid #eee;cursor:pointer}
#prompts li.on{background:#e6f0fa}
#prompts li small{color:#666;display:block}
#detail{flex:1;overflow:auto;padding:12px 16px}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
td.text{white-space:pre-wrap;max-width:560px}
.kept{color:#0a6b2d;font-weight:600}.merged{color:#8a5a00}.boilerplate{color:#a11}.notchosen{color:#555}
.note{background:#fff6dc;padding:6px 10px;border:1px solid #ecd9a0;margin-bottom:8px}
svg circle{stroke:#fff;stroke-width:.5}
svg#map{border:1px solid #ddd;background:#fafcff}
section{display:none}section.on{display:block}
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('explorer-data').textContent);
const el = (tag, attrs = {}, text) => { const node = document.createElement(tag); for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v); if (text !== undefined && text !== null) node.textContent = String(text); return node; };
const fmt = (v) => v === null || v === undefined ? '' : (typeof v === 'number' ? (Number.isInteger(v) ? v.toLocaleString('en') : v.toFixed(3)) : String(v));
const ds = data.dataset;
document.getElementById('sample').textContent = ds.prompts_shown === ds.prompts_total
  ? `${fmt(ds.prompts_total)} prompts` : `a sample of ${fmt(ds.prompts_shown)} of ${fmt(ds.prompts_total)} prompts`;
for (const button of document.querySelectorAll('nav button')) button.addEventListener('click', () => {
  for (const other of document.querySelectorAll('nav button, section')) other.classList.remove('on');
  button.classList.add('on'); document.getElementById(button.dataset.section).classList.add('on');
});
const sources = [...new Set(data.prompts.flatMap(p => p.sources))].sort();
const sourceSelect = document.getElementById('source');
for (const s of sources) sourceSelect.append(el('option', {value: s}, s));
const keptSelect = document.getElementById('kept');
for (const k of [...new Set(data.prompts.map(p => p.kept))].sort((a, b) => a - b)) keptSelect.append(el('option', {value: k}, `${k} kept`));
const num = (id) => { const v = document.getElementById(id).value; return v === '' ? null : Number(v); };
function visible() {
  const query = document.getElementById('search').value.toLowerCase();
  const source = sourceSelect.value, kept = keptSelect.value;
  const [poolMin, poolMax, rewardMin, rewardMax] = ['pool-min', 'pool-max', 'reward-min', 'reward-max'].map(num);
  const rows = data.prompts.filter(p => (!query || p.prompt.toLowerCase().includes(query))
    && (!source || p.sources.includes(source)) && (kept === '' || p.kept === Number(kept))
    && (poolMin === null || p.pool_size >= poolMin) && (poolMax === null || p.pool_size <= poolMax)
    && (rewardMin === null || (p.reward_max !== null && p.reward_max >= rewardMin))
    && (rewardMax === null || (p.reward_min !== null && p.reward_min <= rewardMax)));
  const order = document.getElementById('sort').value;
  const key = {pool: p => -p.pool_size, kept: p => -p.kept, reward: p => -(p.reward_max ?? -Infinity), prompt: p => p.prompt}[order];
  return rows.sort((a, b) => { const x = key(a), y = key(b); return x < y ? -1 : x > y ? 1 : 0; });
}
function renderList() {
  const list = document.getElementById('prompts'); list.replaceChildren();
  const rows = visible();
  document.getElementById('shown').textContent = `${fmt(rows.length)} shown`;
  for (const p of rows) {
    const item = el('li', {'data-prompt-id': p.id}, p.prompt.slice(0, 160));
    item.append(el('small', {}, `pool ${fmt(p.pool_size)} · kept ${p.kept}` + (p.reward_max !== null ? ` · reward ${fmt(p.reward_min)} to ${fmt(p.reward_max)}` : '')));
    item.addEventListener('click', () => { for (const li of list.children) li.classList.remove('on'); item.classList.add('on'); renderPrompt(p); });
    list.append(item);
  }
}
function renderPrompt(p) {
  const pane = document.getElementById('detail'); pane.replaceChildren();
  pane.append(el('h2', {}, p.prompt));
  const counts = {};
  for (const c of p.candidates) counts[c.status] = (counts[c.status] || 0) + 1;
  pane.append(el('p', {id: 'pool-summary'}, `pool of ${fmt(p.pool_size)} after merging copies: ` + Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ')));
  if (!data.pools_from) pane.append(el('p', {class: 'note'}, `Only the kept answers: ${data.why_kept_only}.`));
  const points = p.candidates.filter(c => c.xy);
  if (points.length) pane.append(map(points));
  const table = el('table', {id: 'pool'});
  const head = el('tr'); for (const h of ['status', 'rank', 'gain', 'reward', 'copies', 'source', 'merged into', 'answer']) head.append(el('th', {}, h));
  table.append(head);
  for (const c of p.candidates) {
    const row = el('tr', {'data-response-id': c.id, 'data-status': c.status});
    row.append(el('td', {class: c.status.replace(' ', '')}, c.status), el('td', {}, fmt(c.rank)), el('td', {}, fmt(c.gain)), el('td', {}, fmt(c.reward)),
      el('td', {}, fmt(c.multiplicity)), el('td', {}, c.source), el('td', {}, c.into ? c.into.slice(0, 12) : ''), el('td', {class: 'text'}, c.text));
    table.append(row);
  }
  pane.append(table);
}
function map(points) {
  const ns = 'http://www.w3.org/2000/svg', size = 320, pad = 12;
  const svg = document.createElementNS(ns, 'svg'); svg.setAttribute('width', size); svg.setAttribute('height', size); svg.setAttribute('id', 'map');
  const colours = {kept: '#0a6b2d', merged: '#d89b00', 'not chosen': '#9aa7b4'};
  for (const c of [...points].sort((a, b) => (a.status === 'kept') - (b.status === 'kept'))) {
    const dot = document.createElementNS(ns, 'circle');
    dot.setAttribute('cx', pad + (c.xy[0] + 1) / 2 * (size - 2 * pad)); dot.setAttribute('cy', pad + (1 - (c.xy[1] + 1) / 2) * (size - 2 * pad));
    dot.setAttribute('r', c.status === 'kept' ? 6 : 4); dot.setAttribute('fill', colours[c.status] || '#999'); dot.setAttribute('data-status', c.status);
    const title = document.createElementNS(ns, 'title'); title.textContent = `${c.status}: ${c.text.slice(0, 300)}`; dot.append(title); svg.append(dot);
  }
  const figure = el('figure'); figure.append(svg, el('figcaption', {}, 'the pool on its first two principal components: kept answers large and green, hover for the text'));
  return figure;
}
function renderDataset() {
  const pane = document.getElementById('dataset'), c = ds.counts;
  const lines = [['input records', c.input_records], ['rejected', c.rejected], ['duplicates merged', c.duplicates_merged], ['candidates', c.candidates],
    ['prompts', c.prompts], ['selected', c.selected], ['K', ds.k], ['selector', ds.selector], ['planner: recommended K', ds.recommended_k], ['planner: rho', ds.rho]];
  const table = el('table', {id: 'counts'});
  for (const [name, value] of lines) { const row = el('tr', {'data-count': name}); row.append(el('th', {}, name), el('td', {}, fmt(value))); table.append(row); }
  pane.append(el('p', {}, `input_records ${fmt(c.input_records)} = rejected ${fmt(c.rejected)} + duplicates_merged ${fmt(c.duplicates_merged)} + candidates ${fmt(c.candidates)}`), table);
}
function renderRejects() {
  const pane = document.getElementById('rejects');
  if (!data.rejects.length) pane.append(el('p', {}, 'no record was rejected'));
  for (const group of data.rejects) {
    const details = el('details', {'data-reason': group.reason});
    details.append(el('summary', {}, `${group.reason}: ${fmt(group.count)}` + (group.records.length < group.count ? ` (the first ${group.records.length} shown)` : '')));
    const table = el('table'); for (const r of group.records) { const row = el('tr'); row.append(el('td', {}, `${r.source_file}${r.source_row ? ':' + r.source_row : ''}`), el('td', {}, r.detail), el('td', {class: 'text'}, r.record)); table.append(row); }
    details.append(table); pane.append(details);
  }
}
for (const id of ['search', 'source', 'kept', 'pool-min', 'pool-max', 'reward-min', 'reward-max', 'sort']) document.getElementById(id).addEventListener('input', renderList);
renderList(); renderDataset(); renderRejects();
"""

_BODY = """<header><h1>mrtcurate explorer</h1><span id="sample"></span>
<nav><button class="on" data-section="browse">prompts</button><button data-section="rejects">rejects</button><button data-section="dataset">dataset</button></nav></header>
<section id="browse" class="on"><main><div id="list"><div id="filters">
<input id="search" class="wide" type="search" placeholder="search prompt text">
<select id="source"><option value="">every source</option></select><select id="kept"><option value="">any number kept</option></select>
<input id="pool-min" type="number" placeholder="pool at least"><input id="pool-max" type="number" placeholder="pool at most">
<input id="reward-min" type="number" step="any" placeholder="reward from"><input id="reward-max" type="number" step="any" placeholder="reward to">
<select id="sort" class="wide"><option value="pool">largest pools first</option><option value="kept">most kept first</option><option value="reward">best reward first</option><option value="prompt">by prompt text</option></select>
<small id="shown" class="wide"></small></div><ul id="prompts"></ul></div><div id="detail"><p>Pick a prompt to see its pool.</p></div></main></section>
<section id="rejects" style="padding:12px 16px"></section><section id="dataset" style="padding:12px 16px"></section>"""


def render_explorer(data: dict) -> str:
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>mrtcurate explorer</title>"
        f"<style>{_STYLE}</style></head><body>{_BODY}"
        f'<script type="application/json" id="explorer-data">{payload}</script><script>{_SCRIPT}</script></body></html>'
    )

"""The monitoring page: the live video, one panel per face, the run's fps, latency and faults.

One self-contained HTML document (no external script, font or style: a Jetson on an isolated
network has no CDN). The video is an `<img>` on the MJPEG stream; the panels are drawn from the
server-sent `rows` events, which carry the CSV/JSONL rows with their own field names (`face_id`,
`expression`, `confidence`, `p_<class>`), and the `status` events (the pipeline's statistics and
its recent faults). The trend is the top class's probability over the last rows the page received,
continued in the browser from the hub's recent history. The page arrives with the state at the
time of the request already in it (status, rows, trend), so it is complete before its first event
(and a headless browser's screenshot, taken at the load event, shows it). The token, when the
server needs one, is inserted by the server into the URLs the page opens (an `<img>` and an
`EventSource` cannot send headers).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from edgefer.classes import EXPRESSIONS

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgefer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;background:#15171a;color:#e8e8e8;font:14px/1.35 system-ui,sans-serif}
header{display:flex;gap:18px;align-items:baseline;padding:8px 14px;background:#22262b;white-space:nowrap;overflow:hidden}
#src{max-width:380px;overflow:hidden;text-overflow:ellipsis}
header b{font-size:16px} .k{color:#9aa3ad} .bad{color:#ff7b72} .ok{color:#7ee787}
main{display:flex;gap:14px;padding:14px;align-items:flex-start;flex-wrap:wrap}
#video{max-width:min(960px,100%);border-radius:6px;background:#000;min-width:320px;min-height:180px}
#faces{display:flex;flex-direction:column;gap:10px;min-width:300px}
.face{background:#22262b;border-radius:6px;padding:10px 12px;width:300px}
.face h3{margin:0 0 6px 0;font-size:15px} .bar{display:flex;align-items:center;gap:6px;margin:2px 0}
.bar span{width:78px;color:#9aa3ad} .bar i{display:block;height:10px;background:#4c9aff;border-radius:2px}
.bar em{font-style:normal;width:40px;text-align:right}
canvas{background:#15171a;border-radius:4px;margin-top:6px}
#faults{padding:0 14px 14px 14px;color:#ff7b72;white-space:pre-wrap}
</style></head><body>
<header><b>edgefer</b><span id="src" class="k"></span><span>fps <b id="fps">-</b></span>
<span>latency <b id="lat">-</b></span><span>frames <b id="frames">-</b></span><span>dropped <b id="drop">-</b></span>
<span>read errors <b id="rerr">-</b></span><span>reconnects <b id="recon">-</b></span><span id="rec"></span>
<span id="state" class="k"></span></header>
<main><img id="video" alt="annotated video"><div id="faces"><div class="face k" id="noface">no face yet</div></div></main>
<div id="faults"></div>
<script>
const QS = __QUERY__;
const CLASSES = __CLASSES__;
const INITIAL = __INITIAL__;
const TREND = 90 /* hub.TREND_LENGTH */, trends = {}, seen = {};
document.getElementById('video').src = '/stream.mjpg' + QS;
function panel(id){
  let el = document.getElementById('face-' + id);
  if (el) return el;
  el = document.createElement('div'); el.className = 'face'; el.id = 'face-' + id;
  el.innerHTML = '<h3></h3><div class="bars"></div><canvas width="276" height="46"></canvas>';
  document.getElementById('faces').appendChild(el); return el;
}
function draw(row){
  const el = panel(row.face_id);
  el.querySelector('h3').textContent =
    'face ' + row.face_id + ': ' + row.expression + ' ' + Math.round(100 * row.confidence) + '%';
  el.querySelector('.bars').innerHTML = CLASSES.map(c => {
    const p = row['p_' + c];
    return '<div class="bar"><span>' + c + '</span><i style="width:' + Math.round(150 * p) + 'px"></i><em>'
      + Math.round(100 * p) + '%</em></div>';
  }).join('');
  const t = trends[row.face_id] = (trends[row.face_id] || []);
  t.push(row.confidence); if (t.length > TREND) t.shift();
  const cv = el.querySelector('canvas'), g = cv.getContext('2d');
  g.clearRect(0, 0, cv.width, cv.height); g.strokeStyle = '#7ee787'; g.lineWidth = 2; g.beginPath();
  t.forEach((v, i) => {
    const x = i * cv.width / (TREND - 1), y = cv.height - 2 - v * (cv.height - 4);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}
function ms(q){ return q == null ? '-' : (1000 * q).toFixed(0) + ' ms'; }
function onRows(u){
  const now = Date.now();
  u.rows.forEach(r => { draw(r); seen[r.face_id] = now; });
  document.getElementById('noface').style.display = Object.keys(seen).length ? 'none' : '';
  for (const id in seen) if (now - seen[id] > 3000) {
    document.getElementById('face-' + id)?.remove(); delete seen[id]; delete trends[id];
  }
}
function onStatus(s){
  document.getElementById('src').textContent = s.source + '  ' + s.model + ' [' + s.backend + ']';
  document.getElementById('fps').textContent = s.fps.toFixed(1);
  document.getElementById('lat').textContent = ms(s.latency_p50_s) + ' (p95 ' + ms(s.latency_p95_s) + ')';
  document.getElementById('frames').textContent = s.frames_processed;
  document.getElementById('drop').textContent = s.frames_dropped;
  document.getElementById('rerr').textContent = s.read_errors;
  document.getElementById('recon').textContent = s.reconnects;
  document.getElementById('rec').innerHTML = s.recording ? '<b class="bad">&#9679; REC</b>' : '';
  document.getElementById('state').textContent = s.state;
  document.getElementById('faults').textContent =
    s.faults.map(f => f.kind.toUpperCase() + ' ' + f.stage + ': ' + f.message).join('\\n');
}
Object.assign(trends, INITIAL.trend); onStatus(INITIAL.status); onRows(INITIAL.rows);
const es = new EventSource('/events' + QS);
es.addEventListener('rows', e => onRows(JSON.parse(e.data)));
es.addEventListener('status', e => onStatus(JSON.parse(e.data)));
</script></body></html>
"""


def render_page(token: str | None, initial: dict[str, Any]) -> bytes:
    """The page, with `?token=...` in the URLs it opens when the server asks for a token, and the
    state at the time of the request (`{"status": ..., "rows": ..., "trend": ...}`) inside."""
    query = f"?token={quote(token, safe='')}" if token else ""
    state = json.dumps(initial, allow_nan=False).replace("</", "<\\/")  # cannot end the <script>
    html = (_PAGE.replace("__QUERY__", json.dumps(query)).replace("__CLASSES__", json.dumps(list(EXPRESSIONS)))
            .replace("__INITIAL__", state))
    return html.encode("utf-8")

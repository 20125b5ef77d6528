// The dashboard's one page: plain HTML, CSS and script, no build step. It reads /api/state and
// refreshes on every server-sent `change`; its actions carry the session's token, which the
// server writes in place of __IMMORTAL_TOKEN__.
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="immortal-token" content="__IMMORTAL_TOKEN__">
<title>immortal-lambda — local invocations</title>
<style>
  :root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8; --lambda: #8a4b00; --dead: #6b6b6b; --fargate: #0b5cad; --ok: #0f6b2f; --bad: #a3111a; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.45 system-ui, sans-serif; color: var(--ink); background: #fff; }
  header, main { padding: 12px 16px; max-width: 1200px; margin: 0 auto; }
  h1 { font-size: 1.3rem; margin: 0; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
  th { font-size: .85rem; color: var(--muted); }
  button { font: inherit; padding: 4px 10px; border: 1px solid var(--ink); background: #fff; color: var(--ink); border-radius: 4px; cursor: pointer; }
  button:focus-visible, a:focus-visible { outline: 3px solid var(--fargate); outline-offset: 2px; }
  .state { font-weight: 600; }
  .state.succeeded { color: var(--ok); } .state.failed { color: var(--bad); } .state.running { color: var(--fargate); }
  .bar { display: flex; height: 14px; min-width: 48px; border: 1px solid var(--line); }
  .bar span { display: block; height: 100%; }
  .bar .lambda { background: var(--lambda); } .bar .dead { background: repeating-linear-gradient(45deg, var(--dead), var(--dead) 3px, #fff 3px, #fff 6px); } .bar .fargate { background: var(--fargate); }
  .legend { font-size: .8rem; color: var(--muted); }
  pre { white-space: pre-wrap; word-break: break-word; background: #f4f4f4; padding: 8px; border: 1px solid var(--line); max-height: 24rem; overflow: auto; font-size: .85rem; }
  section { margin-top: 16px; }
  .scroll { overflow-x: auto; max-width: 100%; }
  .error { color: var(--bad); }
  @media (max-width: 640px) { th.hide, td.hide { display: none; } th, td { padding: 4px; } header, main { padding: 8px; } }
</style>
</head>
<body>
<header><h1>immortal-lambda — local invocations</h1><p class="legend">Bar: <b style="color:var(--lambda)">Lambda</b>, dead time (striped), <b style="color:var(--fargate)">Fargate</b>. Updates live.</p></header>
<main>
  <p id="empty">No invocation yet.</p>
  <table id="list" hidden>
    <caption class="legend" style="text-align:left">Invocations, newest first</caption>
    <thead><tr><th scope="col">Request</th><th scope="col" class="hide">Function</th><th scope="col">State</th><th scope="col">Timeline</th><th scope="col" class="hide">Tasks</th><th scope="col"><span class="legend">Details</span></th></tr></thead>
    <tbody></tbody>
  </table>
  <div id="details" aria-live="polite"></div>
</main>
<script>
let selected = null;
let state = { invocations: [], canInvoke: false };
const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const ms = (n) => (n === undefined ? '' : n < 1000 ? n + ' ms' : (n / 1000).toFixed(1) + ' s');
function bar(t) {
  const start = t.startedAt ?? t.handoffAt, end = t.endedAt ?? Date.now();
  if (start === undefined) return '';
  const total = Math.max(1, end - start);
  const lambda = (t.handoffAt ?? end) - start, dead = t.handoffAt !== undefined ? (t.handlerCalledAt ?? end) - t.handoffAt : 0;
  const fargate = t.handlerCalledAt !== undefined ? end - t.handlerCalledAt : 0;
  const part = (cls, n, label) => n > 0 ? '<span class="' + cls + '" style="width:' + (100 * n / total).toFixed(2) + '%" title="' + label + ' ' + ms(n) + '"></span>' : '';
  return '<div class="bar" role="img" aria-label="Lambda ' + ms(lambda) + ', dead time ' + ms(dead) + ', Fargate ' + ms(fargate) + '">' + part('lambda', lambda, 'Lambda') + part('dead', dead, 'dead time') + part('fargate', fargate, 'Fargate') + '</div>';
}
function render() {
  const list = document.getElementById('list'), body = list.querySelector('tbody');
  document.getElementById('empty').hidden = state.invocations.length > 0;
  list.hidden = state.invocations.length === 0;
  body.innerHTML = state.invocations.map((inv) => '<tr data-request="' + esc(inv.requestId) + '"><td><code>' + esc(inv.requestId.slice(0, 8)) + '</code></td><td class="hide">' + esc(inv.functionName) + '</td><td><span class="state ' + esc(inv.state) + '">' + esc(inv.state) + '</span>' + (inv.relaunches ? ' (' + inv.relaunches + ' relaunch' + (inv.relaunches > 1 ? 'es' : '') + ')' : '') + (inv.error ? '<div class="error">' + esc(inv.error) + '</div>' : '') + '</td><td>' + bar(inv.times) + '</td><td class="hide">' + inv.tasks.length + '</td><td><button type="button" data-show="' + esc(inv.requestId) + '" aria-label="Show invocation ' + esc(inv.requestId) + '">Show</button></td></tr>').join('');
  const inv = state.invocations.find((i) => i.requestId === selected);
  document.getElementById('details').innerHTML = inv ? details(inv) : '';
}
function details(inv) {
  const tasks = inv.tasks.map((t) => '<tr><td><code>' + esc(t.id.slice(0, 8)) + '</code>' + (t.standby ? ' (standby)' : '') + '</td><td>' + esc(t.lastStatus) + '</td><td>' + esc(t.stopCode ?? '') + '</td><td>' + esc(t.exitCode ?? '') + '</td><td>' + esc(t.capacityProvider ?? '') + '</td></tr>').join('');
  const logs = inv.logs.map((l) => '[' + l.source + '] ' + l.line).join('\\n');
  return '<section aria-labelledby="d-title"><h2 id="d-title">Invocation <code>' + esc(inv.requestId) + '</code></h2>'
    + '<p>State: <span class="state ' + esc(inv.state) + '">' + esc(inv.state) + '</span>' + (inv.error ? ' — <span class="error">' + esc(inv.error) + '</span>' : '') + '</p>'
    + (state.canInvoke ? '<p><button type="button" data-again="' + esc(inv.requestId) + '">Invoke again with the same event</button></p>' : '')
    + '<h3>Tasks</h3><div class="scroll"><table><thead><tr><th scope="col">Task</th><th scope="col">Status</th><th scope="col">Stop code</th><th scope="col">Exit code</th><th scope="col">Capacity</th></tr></thead><tbody>' + tasks + '</tbody></table></div>'
    + '<h3>Logs, both legs</h3><pre>' + esc(logs) + '</pre>'
    + (inv.journal ? '<h3>Steps and checkpoint</h3><pre>' + esc(JSON.stringify(inv.journal, null, 2)) + '</pre>' : '')
    + (inv.outcomes.length ? '<h3>Outcome records</h3><pre>' + esc(JSON.stringify(inv.outcomes, null, 2)) + '</pre>' : '')
    + '<h3>Envelope</h3><pre>' + esc(JSON.stringify(inv.envelope, null, 2)) + '</pre>'
    + (inv.segments.length ? '<h3>Trace segments</h3><pre>' + esc(JSON.stringify(inv.segments, null, 2)) + '</pre>' : '')
    + '</section>';
}
async function refresh() {
  const response = await fetch('/api/state', { cache: 'no-store' });
  state = await response.json();
  render();
}
document.addEventListener('click', async (event) => {
  const show = event.target.closest('[data-show]');
  if (show) { selected = show.dataset.show; render(); document.getElementById('d-title')?.focus?.(); return; }
  const again = event.target.closest('[data-again]');
  if (again) await fetch('/api/invoke/' + encodeURIComponent(again.dataset.again), { method: 'POST', headers: { 'x-immortal-token': document.querySelector('meta[name=immortal-token]').content } });
});
new EventSource('/api/events').addEventListener('change', () => refresh().catch(() => undefined));
refresh().catch(() => undefined);
</script>
</body>
</html>
`;

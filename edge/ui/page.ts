/**
 * The fleet view web page served at `/`: static HTML and a small script, no build step. It is
 * read-only: it loads `/api/v1/fleet` with a read token taken from `?token=` or asked for
 * once (kept in sessionStorage), reloads it on every `fleet-event` of `/api/v1/stream`
 * (Server-Sent Events) and every second when the stream is down, and renders with
 * `textContent` only (values come from switches and are never parsed as HTML).
 *
 * @module
 */
export const FLEET_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>VDP fleet</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
  th { background: #f4f4f4; }
  td.mono { font-family: ui-monospace, monospace; font-size: 12px; }
  .associated { color: #0a6b0a; } .pre-associated { color: #8a6d00; } .gone { color: #888; }
  .online { color: #0a6b0a; } .offline { color: #b00; } .unknown { color: #888; }
  #status { color: #666; font-size: 12px; }
  #error { color: #b00; }
</style>
</head>
<body>
<h1>VDP fleet</h1>
<div id="status">loading…</div>
<div id="error"></div>
<h2>Virtual networks</h2>
<table id="vns"><thead><tr><th>Name</th><th>VNI</th><th>Tenant</th><th>Allowed VSI types</th></tr></thead><tbody></tbody></table>
<h2>Switches</h2>
<table id="switches"><thead><tr><th>Switch</th><th>Status</th><th>Agent</th><th>Peers</th><th>VLANs (VID→VNI)</th><th>Last event</th></tr></thead><tbody></tbody></table>
<h2>VM interfaces (VSIs)</h2>
<table id="vsis"><thead><tr><th>VSIID</th><th>State</th><th>Switch</th><th>Port</th><th>VNI</th><th>VID</th><th>MACs</th><th>IPs</th><th>Since</th></tr></thead><tbody></tbody></table>
<h2>Recent migrations</h2>
<table id="migrations"><thead><tr><th>VSIID</th><th>From</th><th>To</th><th>State</th><th>Started</th><th>Cleanup</th></tr></thead><tbody></tbody></table>
<script>
(function () {
  'use strict'
  var params = new URLSearchParams(location.search)
  var token = params.get('token') || sessionStorage.getItem('vdp-token')
  if (!token) token = prompt('Read token for the fleet API') || ''
  sessionStorage.setItem('vdp-token', token)
  if (params.has('token')) {
    // Keep the token out of the address bar, history and bookmarks.
    params.delete('token')
    history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : ''))
  }

  function time(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '' }
  function uuid(h) { return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20) }
  function place(p) { return p.switchId + ' ' + p.port }
  function fill(id, rows) {
    var body = document.querySelector('#' + id + ' tbody')
    var out = document.createDocumentFragment()
    rows.forEach(function (row) {
      var tr = document.createElement('tr')
      if (row.id) tr.dataset.id = row.id
      row.cells.forEach(function (cell) {
        var td = document.createElement('td')
        if (cell && typeof cell === 'object') { td.textContent = cell.text; if (cell.cls) td.className = cell.cls }
        else td.textContent = cell == null ? '' : String(cell)
        tr.appendChild(td)
      })
      out.appendChild(tr)
    })
    body.replaceChildren(out)
  }
  function render(f) {
    document.getElementById('status').textContent =
      f.counts.vsis + ' VSIs, ' + f.counts.switches + ' switches, ' + f.counts.events + ' events · updated ' + time(f.time)
    fill('vns', f.vns.map(function (v) {
      return { cells: [v.name, v.vni, v.tenant, v.allowedVsiTypes.length ? v.allowedVsiTypes.map(function (t) {
        return t.typeId + (t.typeVersion === undefined ? '' : '/' + t.typeVersion) }).join(', ') : 'any'] }
    }))
    fill('switches', f.switches.map(function (s) {
      return { id: s.switchId, cells: [s.switchId, { text: s.status, cls: s.status }, s.boot ? s.boot.agentVersion : '',
        s.peers.map(function (p) { return p.port + ' ' + p.stationMac }).join(', '),
        s.vlans.map(function (v) { return v.vid + (v.vni === undefined ? '' : '→' + v.vni) }).join(', '), time(s.lastEventTime)] }
    }))
    fill('vsis', f.vsis.map(function (v) {
      var p = v.current || {}
      return { id: v.vsiId, cells: [{ text: uuid(v.vsiId), cls: 'mono' }, { text: v.state, cls: v.state }, p.switchId, p.port,
        p.vni, p.vid, { text: (p.macs || []).join(' '), cls: 'mono' }, (p.ipv4 || []).concat(p.ipv6 || []).join(' '), time(p.since)] }
    }))
    fill('migrations', f.migrations.map(function (m) {
      return { cells: [{ text: uuid(m.vsiId), cls: 'mono' }, place(m.migration.from), place(m.migration.to),
        m.migration.state, time(m.migration.startedAt), m.migration.cleanupCommandId || ''] }
    }))
  }
  var timer = null
  var live = false
  function load() {
    return fetch('api/v1/fleet', { headers: { Authorization: 'Bearer ' + token } })
      .then(function (r) {
        if (!r.ok) return r.json().then(function (e) { throw new Error(e.error ? e.error.message : r.statusText) })
        return r.json()
      })
      .then(function (f) { document.getElementById('error').textContent = ''; render(f) })
      .catch(function (e) { document.getElementById('error').textContent = String(e.message || e) })
  }
  // Reload now, then again every second without live updates or every 10 s with them.
  function schedule(delayMs) {
    clearTimeout(timer)
    timer = setTimeout(function () { load().finally(function () { schedule(live ? 10000 : 1000) }) }, delayMs)
  }
  if (window.EventSource) {
    var es = new EventSource('api/v1/stream?token=' + encodeURIComponent(token))
    es.addEventListener('ready', function () { live = true })
    es.addEventListener('fleet-event', function () { schedule(100) })
    es.onerror = function () { live = false }
  }
  schedule(0)
})()
</script>
</body>
</html>
`

'use strict'
// Replays pre-signed requests through autocannon, each exactly once, and records every response's
// latency and status by request kind (its tag). Used by bench/bench_api.py:
//
//     node bench/load/replay.js run.json
//
// run.json: {autocannon: module path, url, connections, duration (s), requests: file, output: file};
// the requests file is a JSON list of [tag, path with query, headers]. Each carries its own
// signature and nonce: sent twice it would be refused as a replay, so when the list runs out the
// run stops instead of starting over.

const fs = require('fs')

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const autocannon = require(config.autocannon)
const items = JSON.parse(fs.readFileSync(config.requests, 'utf8'))

const latencies = {} // tag -> [ms]
const statuses = {} // tag -> {status: count}
let next = 0
let exhausted = false
let instance = null

function setupRequest (request, context) {
  const item = items[next++]
  if (item === undefined) {
    exhausted = true
    setImmediate(() => instance && instance.stop())
    // Something must be sent meanwhile: an unsigned health check, not counted.
    context.tag = null
    return { ...request, method: 'GET', path: '/api/health', headers: {} }
  }
  context.tag = item[0]
  return { ...request, method: 'GET', path: item[1], headers: item[2] }
}

// autocannon sends one request at a time per connection (pipelining 1), so the connection's
// context still names the request whose response just completed.
function setupClient (client) {
  client.on('response', (status, bytes, ms) => {
    const tag = client.requestIterator.context.tag
    if (!tag) return
    (latencies[tag] ||= []).push(ms)
    const seen = (statuses[tag] ||= {})
    seen[status] = (seen[status] || 0) + 1
  })
}

instance = autocannon(
  {
    url: config.url,
    connections: config.connections,
    duration: config.duration,
    pipelining: 1,
    timeout: 10,
    requests: [{ setupRequest }],
    setupClient
  },
  (error, result) => {
    if (error) throw error
    fs.writeFileSync(
      config.output,
      JSON.stringify({
        seconds: result.duration,
        used: next,
        exhausted,
        errors: result.errors,
        timeouts: result.timeouts,
        latencies,
        statuses
      })
    )
  }
)

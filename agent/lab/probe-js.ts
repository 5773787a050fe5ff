/**
 * The lab's probe programs, as `node -e` text (no file to ship: bundles carry them): the echo
 * server every probed pod runs and the client that connects to many targets at once. Used in
 * namespaces (measure.ts) and inside guests (guest-nodes.ts).
 */

/** Node script: `-e ECHO PORT TAG` answers every connection with TAG and closes; prints "listening". */
export const ECHO = `
const net = require('net');
const [port, tag] = process.argv.slice(1);
const srv = net.createServer((s) => { s.on('error', () => {}); s.end(tag + '\\n'); });
srv.listen({ host: '::', port: Number(port), ipv6Only: false }, () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * Node script: `-e CONNECT_ALL MS HOST:PORT...` connects to every target at once (IPv6 bare, split at
 * the last ':'), each with an MS timeout, and prints [{ t, out } | { t, err }] in target order.
 */
export const CONNECT_ALL = `
const net = require('net');
const [ms, ...targets] = process.argv.slice(1);
const one = (t) => new Promise((resolve) => {
  const i = t.lastIndexOf(':');
  const s = net.connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)) });
  let out = '';
  const done = (r) => { s.destroy(); resolve(r); };
  s.setTimeout(Number(ms), () => done({ t, err: 'timeout' }));
  s.on('data', (d) => { out += d; });
  s.on('end', () => done({ t, out: out.trim() }));
  s.on('error', (e) => done({ t, err: e.code || e.message }));
});
Promise.all(targets.map(one)).then((r) => { process.stdout.write(JSON.stringify(r)); });
`;

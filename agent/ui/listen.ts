/** `--listen` values of `petrelctl ui` and `ui forward`, PURE: `HOST:PORT`, `[V6]:PORT` or `unix:/abs/path`. */

export type ListenAddr = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export class ListenError extends Error {
  override readonly name = 'ListenError';
}

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Parses a listen address; throws ListenError naming the flag. Port 0 = any free port. */
export function parseListen(s: string, flag = '--listen'): ListenAddr {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path.startsWith('/')) throw new ListenError(`${flag} unix: needs an absolute path, got ${JSON.stringify(s)}`);
    // sun_path is 108 bytes including the NUL (unix(7)).
    if (Buffer.byteLength(path) > 107)
      throw new ListenError(`${flag} ${path}: a Unix socket path is at most 107 bytes`);
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) throw new ListenError(`${flag} ${JSON.stringify(s)} is not HOST:PORT, [V6]:PORT or unix:/path`);
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port > 65535) throw new ListenError(`${flag} port ${port} is out of range`);
  if (m[2] !== undefined && !V4.test(host) && host !== 'localhost')
    throw new ListenError(`${flag} host ${JSON.stringify(host)} is not an IPv4 address (IPv6 goes in brackets)`);
  return { kind: 'tcp', host, port };
}

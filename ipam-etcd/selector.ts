/**
 * Node selectors in Calico's syntax (the subset pools need):
 *   all()   !all()   has(k)   !has(k)   k == 'v'   k != 'v'   k in {'a','b'}   k not in {'a'}
 *   combined with &&, || and parentheses (! applies to has/all and parenthesised terms).
 * parseSelector() throws IpamError('invalid') with the position of the problem.
 */
import { IpamError } from './errors.js';

export type Selector = (labels: Record<string, string>) => boolean;

export function parseSelector(src: string): Selector {
  let i = 0;
  const s = src;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new IpamError('invalid', `invalid selector ${JSON.stringify(src)} at ${i}: ${what}`);
  };
  const eat = (tok: string): boolean => {
    ws();
    if (s.startsWith(tok, i)) {
      i += tok.length;
      return true;
    }
    return false;
  };
  const ident = (): string => {
    ws();
    const m = /^[A-Za-z0-9_./-]+/.exec(s.slice(i));
    if (!m) return fail('expected a label key');
    i += m[0].length;
    return m[0];
  };
  const str = (): string => {
    ws();
    const q = s[i];
    if (q !== "'" && q !== '"') return fail('expected a quoted string');
    const end = s.indexOf(q, i + 1);
    if (end < 0) return fail('unterminated string');
    const v = s.slice(i + 1, end);
    i = end + 1;
    return v;
  };
  const set = (): Set<string> => {
    if (!eat('{')) fail("expected '{'");
    const vals = new Set<string>();
    if (eat('}')) return vals;
    do vals.add(str());
    while (eat(','));
    if (!eat('}')) fail("expected '}'");
    return vals;
  };
  const term = (): Selector => {
    if (eat('!')) {
      const t = term();
      return (l) => !t(l);
    }
    if (eat('(')) {
      const e = or();
      if (!eat(')')) fail("expected ')'");
      return e;
    }
    if (eat('all()')) return () => true;
    if (eat('has(')) {
      const k = ident();
      if (!eat(')')) fail("expected ')'");
      return (l) => k in l;
    }
    const k = ident();
    if (eat('==')) {
      const v = str();
      return (l) => l[k] === v;
    }
    if (eat('!=')) {
      const v = str();
      return (l) => l[k] !== v;
    }
    if (eat('not in')) {
      const vs = set();
      return (l) => !(k in l) || !vs.has(l[k]!);
    }
    if (eat('in')) {
      const vs = set();
      return (l) => k in l && vs.has(l[k]!);
    }
    return fail('expected ==, !=, in or not in');
  };
  const and = (): Selector => {
    let left = term();
    while (eat('&&')) {
      const a = left;
      const b = term();
      left = (l) => a(l) && b(l);
    }
    return left;
  };
  const or = (): Selector => {
    let left = and();
    while (eat('||')) {
      const a = left;
      const b = and();
      left = (l) => a(l) || b(l);
    }
    return left;
  };
  const sel = or();
  ws();
  if (i !== s.length) fail('unexpected trailing input');
  return sel;
}

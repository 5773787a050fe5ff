#!/usr/bin/env node
// Offline build of the node image (image/Containerfile) as an OCI image, from this machine's
// Debian packages and the repository's build outputs: no registry, no network, no daemon.
//   node scripts/build-image.mjs [--out DIR] [--tag REF] [--compression gzip|none]
// Writes DIR/oci/ (an OCI image layout: oci-layout, index.json, blobs/sha256/*) and
// DIR/petrel-node.oci.tar (the same layout as one tar, what `ctr images import` and
// `skopeo copy oci-archive:` read), prints the layers and sizes, and DIR/image.json.
//
// The Containerfile is the recipe; each instruction is reproduced from this machine:
//   FROM debian:bookworm-slim   this host must be Debian 12 (bookworm). The base layer is what
//                               debootstrap's minbase installs (Essential and Priority: required
//                               packages, plus apt) and their Depends/Pre-Depends closure, taken
//                               from the installed packages (`dpkg-query -L`), minus docs, man
//                               pages and locales (as the -slim images drop them), with
//                               /etc/passwd and /etc/group from base-passwd's master files and a
//                               /var/lib/dpkg/status that lists exactly the packages inside.
//   RUN apt-get install PKG...  one layer: PKG and their dependency closure not already in the
//                               image, the same way. Other RUN commands are refused, except the
//                               no-ops of an offline build (apt-get update, rm -rf /var/lib/apt/lists).
//   FROM node:20-… AS node      the stage's /usr/local/bin/node is this machine's `node`, which
//   COPY --from=node …          must be the same major version as the tag.
//   COPY SRC… DEST              one layer each, from the repository (the build context).
//   ENV, LABEL, CMD             the image config.
// Layers are tars with sorted entries, uid/gid kept numerically and mtimes set to 0, gzip
// without a timestamp, so the same inputs give the same digests. Maintainer-script products
// other than passwd/group (update-alternatives links, ldconfig cache) are not reproduced.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

function parseArgs(argv) {
  const o = {
    out: `${root}/dist-image`,
    tag: 'docker.io/petrel/node:0.1.0',
    compression: 'gzip',
    containerfile: `${root}/image/Containerfile`,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--out' && v) o.out = v;
    else if (a === '--tag' && v) o.tag = v;
    else if (a === '--compression' && (v === 'gzip' || v === 'none')) o.compression = v;
    else if (a === '--containerfile' && v) o.containerfile = v;
    else throw new Error(`usage: build-image.mjs [--out DIR] [--tag REF] [--compression gzip|none] (got ${a})`);
    i++;
  }
  return o;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} -> ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

// ------------------------------------------------------------------ the Containerfile

/** Instructions of a Containerfile: continuation lines joined, comments dropped, JSON/shell forms kept raw. */
export function parseContainerfile(text) {
  const lines = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (cur === '' && (line.startsWith('#') || line === '')) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1).trim()} `;
      continue;
    }
    cur += line;
    lines.push(cur.trim());
    cur = '';
  }
  if (cur) lines.push(cur.trim());
  return lines.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l);
    return { op: m[1].toUpperCase(), rest: m[2] };
  });
}

/** KEY=VALUE pairs (values optionally double-quoted) of ENV and LABEL. */
function parsePairs(rest) {
  const out = {};
  const re = /([A-Za-z0-9_.-]+)=("((?:[^"\\]|\\.)*)"|\S*)/g;
  for (let m = re.exec(rest); m; m = re.exec(rest))
    out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
  return out;
}

// ------------------------------------------------------------------ Debian packages

/** The installed packages: name -> { deps: string[][] (alternatives), priority, essential }; virtual -> providers. */
function installedPackages() {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${Field} format
  const fmt = '${Package}\\t${Status}\\t${Priority}\\t${Essential}\\t${Pre-Depends}\\t${Depends}\\t${Provides}\\n';
  const pkgs = new Map();
  const provides = new Map();
  const names = (s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((alt) =>
        alt.split('|').map((a) =>
          a
            .trim()
            .replace(/\s*\(.*\)$/, '')
            .replace(/:any$/, ''),
        ),
      );
  for (const line of run('dpkg-query', ['-W', '-f', fmt]).split('\n')) {
    if (!line) continue;
    const [name, status, priority, essential, pre, deps, prov] = line.split('\t');
    if (!status.endsWith(' installed')) continue;
    pkgs.set(name, { deps: [...names(pre), ...names(deps)], priority, essential: essential === 'yes' });
    for (const [p] of names(prov)) {
      if (!provides.has(p)) provides.set(p, []);
      provides.get(p).push(name);
    }
  }
  return { pkgs, provides };
}

/** `seeds` and everything they depend on (first installed alternative), minus `have`. */
function closure(db, seeds, have = new Set()) {
  const out = new Set();
  const resolve = (n) => (db.pkgs.has(n) ? n : db.provides.get(n)?.find((p) => db.pkgs.has(p)));
  const todo = [...seeds];
  while (todo.length) {
    const want = todo.pop();
    const n = resolve(want);
    if (!n) throw new Error(`package ${want} is not installed on this machine (needed offline)`);
    if (out.has(n) || have.has(n)) continue;
    out.add(n);
    for (const alts of db.pkgs.get(n).deps) {
      const pick = alts.map(resolve).find((x) => x && (out.has(x) || have.has(x))) ?? alts.find((a) => resolve(a));
      if (!pick) throw new Error(`${n}: no installed package satisfies ${alts.join(' | ')}`);
      todo.push(pick);
    }
  }
  return out;
}

// What -slim images leave out (keeping each package's copyright file).
const SLIM_DROP = [/^usr\/share\/(doc|man|info|locale|lintian|linda)\//];
const isDropped = (p) => SLIM_DROP.some((re) => re.test(p)) && !/^usr\/share\/doc\/[^/]+\/copyright$/.test(p);

/** Canonical paths (relative to /, parents resolved through usrmerge links) of the packages' files. */
function packageFiles(pkgs) {
  const files = new Set();
  const add = (abs) => {
    if (abs === '/' || abs === '/.') return;
    let parent;
    try {
      parent = realpathSync(dirname(abs));
    } catch {
      return; // listed but not on disk (a path-exclude'd doc, a removed diversion)
    }
    const p = join(parent, basename(abs));
    try {
      lstatSync(p);
    } catch {
      return;
    }
    const rel = p.slice(1);
    if (isDropped(rel)) return;
    files.add(rel);
    for (let d = dirname(rel); d !== '.' && d !== '/'; d = dirname(d)) files.add(d);
  };
  for (const name of pkgs) for (const f of run('dpkg-query', ['-L', name]).split('\n')) if (f.startsWith('/')) add(f);
  return files;
}

function dpkgStatus(pkgs) {
  return `${[...pkgs]
    .sort()
    .map((n) => run('dpkg-query', ['-s', n]).trim())
    .join('\n\n')}\n`;
}

// ------------------------------------------------------------------ layers

const TAR_COMMON = ['--numeric-owner', '--mtime=@0', '--format=gnu', '--no-recursion'];

/** A layer tar of host files (paths relative to /) plus generated files under `extraDir`. */
function hostLayer(tarPath, files, extraDir) {
  const list = `${tarPath}.list`;
  writeFileSync(list, `${[...files].sort().join('\n')}\n`);
  run('tar', ['-C', '/', ...TAR_COMMON, '-cf', tarPath, '--verbatim-files-from', '-T', list]);
  rmSync(list);
  if (extraDir) appendDir(tarPath, extraDir);
}

/** Appends the files (not the directories) under `dir` to a tar, owned by root. */
function appendDir(tarPath, dir) {
  const rel = run('find', ['.', '-mindepth', '1', '!', '-type', 'd'], { cwd: dir })
    .split('\n')
    .filter(Boolean)
    .map((p) => p.slice(2))
    .sort();
  if (rel.length === 0) return;
  run('tar', ['-C', dir, ...TAR_COMMON, '--owner=0', '--group=0', '-rf', tarPath, ...rel]);
}

/** A layer tar of a staged tree (every entry, directories included), owned by root. */
function treeLayer(tarPath, dir) {
  const rel = run('find', ['.', '-mindepth', '1'], { cwd: dir })
    .split('\n')
    .filter(Boolean)
    .map((p) => p.slice(2))
    .sort();
  run('tar', ['-C', dir, ...TAR_COMMON, '--owner=0', '--group=0', '-cf', tarPath, ...rel]);
}

class Hasher extends Transform {
  constructor() {
    super();
    this.hash = createHash('sha256');
    this.size = 0;
  }
  _transform(chunk, _enc, cb) {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/** Moves a layer tar into the blobs (compressed or not); returns its descriptor and diff_id. */
async function addLayerBlob(blobs, tarPath, compression) {
  const raw = new Hasher();
  const packed = new Hasher();
  const tmp = join(blobs, `.tmp-${basename(tarPath)}`);
  const stages = [createReadStream(tarPath), raw];
  if (compression === 'gzip') stages.push(createGzip({ level: 6 }));
  stages.push(packed, createWriteStream(tmp));
  await pipeline(stages);
  const digest = packed.hash.digest('hex');
  renameSync(tmp, join(blobs, digest));
  rmSync(tarPath);
  return {
    descriptor: {
      mediaType: `application/vnd.oci.image.layer.v1.tar${compression === 'gzip' ? '+gzip' : ''}`,
      digest: `sha256:${digest}`,
      size: packed.size,
    },
    diffId: `sha256:${raw.hash.digest('hex')}`,
    rawSize: raw.size,
  };
}

function addJsonBlob(blobs, obj) {
  const buf = Buffer.from(JSON.stringify(obj));
  const digest = createHash('sha256').update(buf).digest('hex');
  writeFileSync(join(blobs, digest), buf);
  return { digest: `sha256:${digest}`, size: buf.length };
}

// ------------------------------------------------------------------ the build

function offlineStage(from) {
  const m = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)[-\w.]*$/.exec(from);
  if (!m) throw new Error(`FROM ${from} AS …: only a node:<major>-… stage can be reproduced offline`);
  const node = realpathSync(run('sh', ['-c', 'command -v node']).trim());
  const version = run(node, ['--version']).trim();
  if (version.split('.')[0] !== `v${m[1]}`) throw new Error(`FROM ${from}: this machine's node is ${version}`);
  return { paths: { '/usr/local/bin/node': node }, note: `${node} (${version})` };
}

function checkBase(from) {
  if (!/^(?:docker\.io\/)?(?:library\/)?debian:bookworm-slim$/.test(from))
    throw new Error(`FROM ${from}: the offline build reproduces debian:bookworm-slim only`);
  const os = readFileSync('/etc/os-release', 'utf8');
  if (!/^VERSION_CODENAME=bookworm$/m.test(os)) throw new Error('the offline build needs a Debian 12 (bookworm) host');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const steps = parseContainerfile(readFileSync(o.containerfile, 'utf8'));
  const stages = new Map();
  let base;
  const body = [];
  for (const s of steps) {
    if (s.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(s.rest);
      if (m?.[2]) stages.set(m[2], offlineStage(m[1]));
      else {
        if (base) throw new Error('one final stage only');
        base = m?.[1];
      }
    } else if (base) body.push(s);
    else throw new Error(`${s.op} in a named stage is not reproduced offline`);
  }
  if (!base) throw new Error('no final FROM');
  checkBase(base);

  const work = `${o.out}/.work`;
  const layout = `${o.out}/oci`;
  const blobs = `${layout}/blobs/sha256`;
  rmSync(work, { recursive: true, force: true });
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(blobs, { recursive: true });

  const db = installedPackages();
  const config = {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: ['bash'],
    WorkingDir: '/',
    Labels: {},
  };
  const layers = [];
  const history = [];
  let n = 0;
  const layer = async (what, build) => {
    const tar = `${work}/layer-${++n}.tar`;
    build(tar);
    const l = await addLayerBlob(blobs, tar, o.compression);
    layers.push({ ...l, what });
    history.push({ created: '1970-01-01T00:00:00Z', created_by: what });
  };

  // FROM debian:bookworm-slim
  const seeds = [...db.pkgs].filter(([, p]) => p.essential || p.priority === 'required').map(([k]) => k);
  const inImage = closure(db, [...seeds, 'apt']);
  {
    const extra = `${work}/base-extra`;
    mkdirSync(`${extra}/etc`, { recursive: true });
    mkdirSync(`${extra}/var/lib/dpkg`, { recursive: true });
    cpSync('/usr/share/base-passwd/passwd.master', `${extra}/etc/passwd`);
    cpSync('/usr/share/base-passwd/group.master', `${extra}/etc/group`);
    writeFileSync(`${extra}/var/lib/dpkg/status`, dpkgStatus(inImage));
    await layer(`FROM ${base} (${inImage.size} packages of this host)`, (tar) =>
      hostLayer(tar, packageFiles(inImage), extra),
    );
  }

  for (const s of body) {
    if (s.op === 'RUN') {
      const cmds = s.rest.split('&&').map((c) => c.trim());
      const pkgs = [];
      for (const c of cmds) {
        const m = /^apt-get install\s+(.*)$/.exec(c);
        if (m) pkgs.push(...m[1].split(/\s+/).filter((w) => !w.startsWith('-')));
        else if (!/^apt-get update$|^rm -rf \/var\/lib\/apt\/lists\/\*$/.test(c))
          throw new Error(`RUN ${c}: not reproducible offline`);
      }
      const added = closure(db, pkgs, inImage);
      for (const p of added) inImage.add(p);
      const extra = `${work}/run-${n}`;
      mkdirSync(`${extra}/var/lib/dpkg`, { recursive: true });
      writeFileSync(`${extra}/var/lib/dpkg/status`, dpkgStatus(inImage));
      await layer(`RUN apt-get install ${pkgs.join(' ')} (+${added.size - pkgs.length} dependencies)`, (tar) =>
        hostLayer(tar, packageFiles(added), extra),
      );
    } else if (s.op === 'COPY') {
      const words = s.rest.split(/\s+/);
      let from;
      if (words[0]?.startsWith('--from=')) from = words.shift().slice('--from='.length);
      const dest = words.pop();
      const stage = `${work}/copy-${n + 1}`;
      for (const src of words) {
        let abs;
        if (from) {
          abs = stages.get(from)?.paths[src];
          if (!abs) throw new Error(`COPY --from=${from} ${src}: not known offline`);
        } else {
          abs = join(root, src);
          if (!existsSync(abs)) throw new Error(`COPY ${src}: missing (npm run build && npm run package first)`);
        }
        const target = dest.endsWith('/') ? join(stage, dest, basename(src)) : join(stage, dest);
        mkdirSync(dirname(target), { recursive: true });
        cpSync(abs, target, { recursive: true, dereference: true, preserveTimestamps: false });
      }
      await layer(`COPY ${s.rest}`, (tar) => treeLayer(tar, stage));
      rmSync(stage, { recursive: true, force: true });
    } else if (s.op === 'ENV') {
      for (const [k, v] of Object.entries(parsePairs(s.rest)))
        config.Env = [...config.Env.filter((e) => !e.startsWith(`${k}=`)), `${k}=${v}`];
      history.push({ created: '1970-01-01T00:00:00Z', created_by: `ENV ${s.rest}`, empty_layer: true });
    } else if (s.op === 'LABEL') {
      Object.assign(config.Labels, parsePairs(s.rest));
      history.push({ created: '1970-01-01T00:00:00Z', created_by: `LABEL ${s.rest}`, empty_layer: true });
    } else if (s.op === 'CMD') {
      config.Cmd = JSON.parse(s.rest);
      history.push({ created: '1970-01-01T00:00:00Z', created_by: `CMD ${s.rest}`, empty_layer: true });
    } else throw new Error(`${s.op}: not supported by the offline build`);
  }

  const cfg = addJsonBlob(blobs, {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  });
  const manifest = addJsonBlob(blobs, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => l.descriptor),
    annotations: { 'org.opencontainers.image.version': config.Labels['org.opencontainers.image.version'] ?? '' },
  });
  const tagPart = o.tag.slice(o.tag.lastIndexOf(':') + 1);
  writeFileSync(`${layout}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    `${layout}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': o.tag, 'org.opencontainers.image.ref.name': tagPart },
        },
      ],
    }),
  );
  const archive = `${o.out}/petrel-node.oci.tar`;
  run('tar', [
    '-C',
    layout,
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--mtime=@0',
    '--sort=name',
    '-cf',
    archive,
    '.',
  ]);
  rmSync(work, { recursive: true, force: true });

  const mb = (b) => (b / 1024 / 1024).toFixed(1);
  const rows = layers.map((l) => ({
    layer: l.what.slice(0, 90),
    'MiB (tar)': mb(l.rawSize),
    'MiB (blob)': mb(l.descriptor.size),
  }));
  const total = layers.reduce((a, l) => a + l.rawSize, 0);
  const packed = layers.reduce((a, l) => a + l.descriptor.size, 0);
  rows.push({ layer: 'total', 'MiB (tar)': mb(total), 'MiB (blob)': mb(packed) });
  console.table(rows);
  const summary = {
    tag: o.tag,
    manifestDigest: manifest.digest,
    configDigest: cfg.digest,
    compression: o.compression,
    uncompressedBytes: total,
    blobBytes: packed,
    archive,
    archiveBytes: statSync(archive).size,
    packages: [...inImage].sort(),
    stages: Object.fromEntries([...stages].map(([k, v]) => [k, v.note])),
  };
  writeFileSync(`${o.out}/image.json`, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`${o.tag} ${manifest.digest}: ${mb(total)} MiB unpacked, ${mb(packed)} MiB of layer blobs -> ${archive}`);
}

await main();

/**
 * Pure: kernel module load order from `modules.dep` (the file depmod writes in
 * /lib/modules/KVER). Each line is `path/of/mod.ko[.xz|.zst]: dep1.ko dep2.ko ...`, the
 * dependency list already transitive and ordered so that the LAST entry must load first
 * (modprobe loads it from the end). Built-in modules (`modules.builtin`) need no file.
 */

/** Canonical module name: basename without .ko[.xz|.zst|.gz], '-' and '_' equivalent (as kmod). */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replaceAll('-', '_');
}

export interface ModuleDeps {
  /** module name -> its file, relative to /lib/modules/KVER */
  files: Map<string, string>;
  /** module name -> dependency files in modules.dep order */
  deps: Map<string, string[]>;
}

export function parseModulesDep(text: string): ModuleDeps {
  const files = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const file = line.slice(0, colon).trim();
    const name = moduleName(file);
    files.set(name, file);
    deps.set(
      name,
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  return { files, deps };
}

/** Thrown when a wanted module is neither in modules.dep nor built in. */
export class ModuleNotFoundError extends Error {
  override readonly name = 'ModuleNotFoundError';
  constructor(readonly module: string) {
    super(`kernel module ${module} not found in modules.dep or modules.builtin`);
  }
}

/**
 * Files to insmod, in order, so that `wanted` (and everything they need) are loaded; each file
 * once. Built-in modules are skipped.
 */
export function loadOrder(dep: ModuleDeps, builtin: ReadonlySet<string>, wanted: readonly string[]): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const add = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const file = dep.files.get(name);
    if (file === undefined) {
      if (builtin.has(name)) return;
      throw new ModuleNotFoundError(name);
    }
    const ds = dep.deps.get(name) ?? [];
    for (let i = ds.length - 1; i >= 0; i--) add(moduleName(ds[i]!));
    order.push(file);
  };
  for (const w of wanted) add(moduleName(w));
  return order;
}

/** Module names from `modules.builtin` (one path per line). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map(moduleName),
  );
}

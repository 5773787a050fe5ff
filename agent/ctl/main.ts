/**
 * petrelctl: Petrel's operator CLI (like calicoctl). Reads and writes etcd directly.
 *   petrelctl [global flags] ipam pool add|list|rm|set, ipam assign|release|show|check|gc|configure,
 *   node label, ui [forward], lab up|status|exec|add-pod|rm-pod|kill-agent|start-agent|down.
 *   Every level has --help.
 * Exit codes: 0 ok, 1 error (one line on stderr), 2 usage error, 3 `ipam check` found problems.
 *
 * Start-up is an operator script's per-call cost: only the modules of the command named on the
 * command line are loaded (`ipam assign` never loads the BGP speaker, prom-client or the node
 * registry), the logger (a light one, not pino) only when a command opens etcd. Help and unknown commands load all.
 */
import { Command, CommanderError, Option } from 'commander';
import { IpamError } from '../../ipam-etcd/errors.js';
import type { LogLevel } from '../common/logger.js';
import { exit, writeErr, writeOut } from '../common/output.js';
import { type CtlContext, type GlobalOptions, makeContext } from './common.js';

/** Help, usage errors and results all go through the output module: written before exit. */
const OUTPUT = { writeOut, writeErr };

type Register = (program: Command, ctx: CtlContext) => void;

/**
 * The register functions the command line needs, in the order of the full help: `ipam` (which
 * also adds `node label`), `bgp` (speaker), `node` (registry), `bgp` (cluster config). A
 * top-level command name anywhere in argv loads its modules (an option value that happens to be
 * one only loads a module more); none of them (help, a typo) loads every module.
 */
async function registrations(argv: string[]): Promise<Register[]> {
  const words = new Set(argv.slice(2));
  const any = ['ipam', 'node', 'bgp', 'ui', 'lab'].some((w) => words.has(w));
  const want = (...names: string[]) => !any || names.some((n) => words.has(n));
  const out: Register[] = [];
  if (want('ipam', 'node')) out.push((await import('./ipam-commands.js')).registerIpam);
  if (want('bgp')) out.push((await import('./bgp-commands.js')).registerBgp);
  if (want('node', 'bgp')) {
    const m = await import('./node-commands.js');
    if (want('node')) out.push(m.registerNode);
    if (want('bgp')) out.push(m.registerClusterBgp);
  }
  if (want('ui')) out.push((await import('../ui/commands.js')).registerUi);
  if (want('lab')) out.push((await import('./lab-commands.js')).registerLab);
  return out;
}

async function main(): Promise<number> {
  // Library deprecation notices (grpc-js sets the TLS ServerName to an IP address: DEP0123) are
  // not for operators; errors stay one line.
  process.noDeprecation = true;
  let exitCode = 0;
  const program = new Command('petrelctl')
    .description('Petrel operator CLI: IPAM pools and addresses in etcd')
    .version('0.1.0')
    .addOption(
      new Option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs')
        .env('PETREL_ETCD_ENDPOINTS')
        .default('http://127.0.0.1:2379'),
    )
    .addOption(new Option('--etcd-ca <file>', 'CA bundle for etcd TLS').env('PETREL_ETCD_CA'))
    .addOption(new Option('--etcd-cert <file>', 'client certificate for etcd mTLS').env('PETREL_ETCD_CERT'))
    .addOption(new Option('--etcd-key <file>', 'client key for etcd mTLS').env('PETREL_ETCD_KEY'))
    .addOption(
      new Option('--etcd-timeout-ms <ms>', 'per-request etcd deadline')
        .env('PETREL_ETCD_TIMEOUT_MS')
        .default(5000)
        .argParser((v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n <= 0)
            throw new IpamError('invalid', `--etcd-timeout-ms must be a positive integer`);
          return n;
        }),
    )
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .env('PETREL_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('warn'),
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput(OUTPUT);
  // pino's line format without pino (cni/log.ts): loading pino was ~15% of an `ipam assign`.
  const log = async () =>
    (await import('../../cni/log.js')).createPluginLogger({
      level: program.opts().logLevel as LogLevel,
      base: { component: 'petrelctl' },
    });
  const ctx = makeContext(
    () => program.opts<GlobalOptions>(),
    log,
    (c) => {
      exitCode = c;
    },
  );
  for (const register of await registrations(process.argv)) register(program, ctx);
  program.commands.forEach(function exitOverrideAll(c: Command) {
    c.exitOverride().showHelpAfterError().configureOutput(OUTPUT);
    c.commands.forEach(exitOverrideAll);
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    const msg = err instanceof IpamError ? err.message : err instanceof Error ? err.message : String(err);
    writeErr(`petrelctl: error: ${msg}\n`);
    return 1;
  }
  return exitCode;
}

main().then(exit, (err: unknown) => {
  writeErr(`petrelctl: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exit(1);
});

/**
 * petrelctl: Petrel's operator CLI (like calicoctl). Reads and writes etcd directly.
 *   petrelctl [global flags] ipam pool add|list|rm|set, ipam assign|release|show|check|gc|configure,
 *   node label. Every level has --help.
 * Exit codes: 0 ok, 1 error (one line on stderr), 2 usage error, 3 `ipam check` found problems.
 */
import { Command, CommanderError, Option } from 'commander';
import { IpamError } from '../../ipam-etcd/index.js';
import { createLogger, type LogLevel } from '../common/log.js';
import { exit, writeErr, writeOut } from '../common/output.js';
import { registerBgp } from './bgp-commands.js';
import { type GlobalOptions, makeContext } from './common.js';
import { registerIpam } from './ipam-commands.js';
import { registerClusterBgp, registerNode } from './node-commands.js';

/** Help, usage errors and results all go through the output module: written before exit. */
const OUTPUT = { writeOut, writeErr };

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
  const log = () => createLogger({ level: program.opts().logLevel as LogLevel, base: { component: 'petrelctl' } });
  const ctx = makeContext(
    () => program.opts<GlobalOptions>(),
    log(),
    (c) => {
      exitCode = c;
    },
  );
  registerIpam(program, ctx);
  registerBgp(program, ctx);
  registerNode(program, ctx);
  registerClusterBgp(program, ctx);
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

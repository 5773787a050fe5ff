/**
 * Exit-time safety net: every live rig and network registers a synchronous clean-up here. On
 * process exit, and on SIGINT/SIGTERM/SIGHUP (after which the signal is re-raised so the process
 * still dies of it), each registered clean-up runs once: qemu killed by PID, taps and the netns
 * deleted, run directories removed. The normal path is the async destroy(), which unregisters.
 */

const pending = new Map<number, () => void>();
let nextId = 1;
let installed = false;

function runAll(): void {
  for (const [id, fn] of [...pending].reverse()) {
    pending.delete(id);
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      runAll();
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Registers `fn` to run at exit; returns the function that unregisters it. */
export function atExit(fn: () => void): () => void {
  install();
  const id = nextId++;
  pending.set(id, fn);
  return () => {
    pending.delete(id);
  };
}

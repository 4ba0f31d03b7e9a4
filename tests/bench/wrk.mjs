// Runs wrk against a URL and parses requests/s and the latency percentiles.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** Pin process `pid` (all its threads) to CPU core `core` (taskset). */
export function pinToCore(pid, core) {
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

let wrkCore;
/** Run wrk on CPU core `core` from now on. */
export function pinWrkTo(core) {
  wrkCore = core;
}

/** The pid of the workerd process that Miniflare started to listen on `port` (Linux /proc). */
export function workerdPid(port) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('workerd') && cmdline.includes(`entry=127.0.0.1:${port}\0`)) return Number(entry);
    } catch {
      // The process ended meanwhile.
    }
  }
  throw new Error(`no workerd process listens on port ${port}`);
}

/** User + system CPU time of process `pid` so far, in milliseconds (clock ticks of 10 ms). */
export function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * wrk -t1 -c<connections> -d<seconds>s --latency --timeout 10s, with headers; resolves to { rps, p50, p99 }
 * and, given the `pid` of the workerd that serves `url`, `cpuUs`: its CPU time per request.
 */
export function wrk(url, { headers = {}, seconds = 5, connections = 16, script, pid } = {}) {
  // wrk's own 2 s socket timeout would count the slowest requests of a saturated
  // workerd (its latency tail reaches ~1 s here, also for a build without edge-bff's
  // changes) as errors and fail the run; with 10 s they are measured, in p99.
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (script) args.push('-s', script);
  args.push(url);
  const cpuBefore = pid ? cpuMsOf(pid) : 0;
  return new Promise((resolve, reject) => {
    execFile(wrkCore === undefined ? 'wrk' : 'taskset', wrkCore === undefined ? args : ['-c', String(wrkCore), 'wrk', ...args], { maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(err);
      const cpuUs = pid ? ((cpuMsOf(pid) - cpuBefore) * 1000) / Number(/(\d+) requests in/.exec(stdout)?.[1]) : NaN;
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
      const p50 = toMs(/\n\s+50%\s+(\S+)/.exec(stdout)?.[1] ?? '');
      const p99 = toMs(/\n\s+99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
      const errors = /Socket errors:.*/.exec(stdout)?.[0] ?? '';
      resolve({ rps, p50, p99, cpuUs, non2xx, errors, raw: stdout });
    });
  });
}

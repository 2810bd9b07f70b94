// Figures of a process from /proc, for benchmarks (CPU seconds, RSS, open file descriptors).
import { readFileSync, readdirSync } from 'node:fs';

/** CPU seconds (user + system) of a process, from /proc/<pid>/stat; null when unreadable. */
export function procCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state(0) ppid … utime is field 14 of the line, index 11 here; stime index 12.
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** Resident memory of a process, MB, from /proc/<pid>/statm (pages of 4 KiB); null when unreadable. */
export function procRssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    return (Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096) / 1e6;
  } catch {
    return null;
  }
}

/** VmRSS, RssAnon (heap, native allocations) and RssFile (mapped files) of a process, MB, from /proc/<pid>/status; NaN when unreadable. */
export function procMemoryMb(pid: number | 'self'): { rss_mb: number; anon_mb: number; file_mb: number } {
  let s = '';
  try {
    s = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // gone: NaN figures
  }
  const mb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
  return { rss_mb: mb('VmRSS'), anon_mb: mb('RssAnon'), file_mb: mb('RssFile') };
}

export function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

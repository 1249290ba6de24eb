// systemd unit rendering for the two kinds of gluster-ha processes: a storage server (glusterfsd) and
// the client mount (glusterfs, which unmounts itself on SIGTERM; ExecStopPost cleans up after a crash).

export interface UnitInput {
  description: string;
  /** argv of the process (absolute executable first). */
  execStart: string[];
  /** Units to start after (and want). */
  after?: string[];
  /** For a mount process: lazily unmount after it stops, whatever happened to it. */
  mountPoint?: string;
  wantedBy: string;
}

/** systemd's quoting: arguments with spaces, quotes or backslashes in double quotes, escaped. */
function quoteArg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export function renderSystemdUnit(u: UnitInput): string {
  const after = ["network-online.target", ...(u.after ?? [])];
  const lines = [
    "[Unit]",
    `Description=${u.description}`,
    `After=${after.join(" ")}`,
    `Wants=${after.join(" ")}`,
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${u.execStart.map(quoteArg).join(" ")}`,
    ...(u.mountPoint ? [`ExecStopPost=-/bin/fusermount -uz ${quoteArg(u.mountPoint)}`] : []),
    "Restart=on-failure",
    "RestartSec=2",
    "KillMode=mixed",
    "TimeoutStopSec=20",
    "",
    "[Install]",
    `WantedBy=${u.wantedBy}`,
  ];
  return `${lines.join("\n")}\n`;
}

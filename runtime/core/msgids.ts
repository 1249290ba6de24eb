/**
 * The catalog of stable message ids. Every log line of a kind an operator may search for, alert on or
 * count carries `msgid` (pino field) naming one of these; the text of a message may change, its id
 * does not. docs/messages.md is generated from this table (`npm run docs`; a unit test checks it is
 * current, and that every `msgid: "..."` in the sources is listed here).
 */
export type MsgLevel = "debug" | "info" | "warn" | "error" | "fatal";

export interface MsgDef {
  level: MsgLevel;
  /** Which component logs it. */
  source: string;
  /** What happened, in an operator's words. */
  meaning: string;
  /** What to do about it ("nothing" is an answer). */
  action: string;
}

const def = (level: MsgLevel, source: string, meaning: string, action: string): MsgDef => ({ level, source, meaning, action });

export const MSGIDS = {
  // ---- processes (glusterfsd, glusterfs) ----
  PROC_STARTED: def("info", "glusterfsd", "The server graph is built and every translator started (bricks open, listening).", "Nothing."),
  PROC_START_FAILED: def("error", "glusterfsd, glusterfs", "The process could not start: bad volfile (file:line in the message), port in use, brick missing, mount failed.", "Fix what the message names and start again; `--volfile-check` lists every volfile problem at once."),
  PROC_STOPPING: def("info", "glusterfsd, glusterfs", "A stop signal (TERM/INT) arrived; the graph is being stopped.", "Nothing; a second signal exits at once."),
  PROC_STOPPED: def("info", "glusterfsd, glusterfs", "Clean stop finished.", "Nothing."),
  FUSE_MOUNTED: def("info", "glusterfs", "The client graph is up and mounted.", "Nothing."),
  FUSE_UNMOUNTED_OUTSIDE: def("info", "glusterfs", "The mount point was unmounted by someone else (umount); the client exits.", "Mount again if that was not intended."),
  VOLFILE_RELOADED: def("info", "glusterfsd, glusterfs", "SIGHUP: the volfile was read again; `applied` lists the options now in effect.", "Check `needsRestart` in the same line: those changes wait for a restart."),
  VOLFILE_NEEDS_RESTART: def("warn", "glusterfsd, glusterfs", "SIGHUP: some changed options (or a changed graph shape) cannot be applied live; they were NOT applied, the running values stay.", "Restart the process (at a quiet moment, one node at a time) to apply them."),
  VOLFILE_RELOAD_FAILED: def("error", "glusterfsd, glusterfs", "SIGHUP: the new volfile is invalid; the running configuration is kept unchanged.", "Fix the volfile (`glusterfsd -f FILE --volfile-check`) and send SIGHUP again."),
  STATEDUMP_WRITTEN: def("info", "glusterfsd, glusterfs", "SIGUSR1: every translator's state (fds, locks, queues, caches, pending heals) was written to `path`.", "Read the file; attach it to a bug report."),
  STATEDUMP_FAILED: def("error", "glusterfsd, glusterfs", "SIGUSR1: the statedump could not be written.", "Check free space and permissions of the dump directory (/tmp)."),
  LOG_LEVEL_CHANGED: def("info", "glusterfsd, glusterfs", "The log level changed at runtime (SIGUSR2 or `gluster-ha log-level`).", "Set it back to info when done debugging: debug/trace logs grow fast."),
  LOG_REOPENED: def("info", "glusterfsd, glusterfs", "SIGHUP: the log file was reopened (after logrotate moved it).", "Nothing."),
  METRICS_LISTENING: def("info", "glusterfsd, glusterfs", "The Prometheus endpoint serves GET /metrics at `address`:`port`.", "Point the scraper at it."),
  METRICS_FAILED: def("error", "glusterfsd, glusterfs", "The metrics endpoint could not listen (port in use, address not local); the process runs without it.", "Pick another --metrics-port / --metrics-address and restart."),

  // ---- protocol/server ----
  PS_LISTENING: def("info", "protocol/server", "The server listens for clients at `address`:`port`.", "Nothing."),
  PS_CLIENT_ATTACHED: def("info", "protocol/server", "A client completed its handshake and attached to `exportedVolume`.", "Nothing."),
  PS_CLIENT_DETACHED: def("info", "protocol/server", "A client connection ended; its open fds were released and its locks dropped.", "Nothing, unless unexpected: then look for PC_DISCONNECTED on the client for the reason."),
  PS_AUTH_REFUSED: def("warn", "protocol/server", "A handshake was refused: address not allowed by auth.ip.<volume>.allow/reject (EACCES), unknown volume (ENOENT) or protocol version (EPROTO).", "If the client should get in: add its address to auth.ip.<volume>.allow and send SIGHUP (auth lists apply live)."),
  PS_CONNECTION_DROPPED: def("warn", "protocol/server", "The server dropped one connection: no handshake in time, a silent client, a malformed or oversized frame.", "A silent client (network partition, frozen host) is expected to reconnect; malformed frames mean a wrong or hostile peer on that port."),
  PS_TLS_FAILED: def("warn", "protocol/server", "A TLS handshake with a client failed (certificate not signed by ssl-ca, wrong key).", "Check the client's ssl-cert/ssl-key against the server's ssl-ca."),
  PS_LOST_WRITES_REPORTED: def("warn", "protocol/server", "A brick this server exports lost writes it had answered (see POSIX_WRITEBACK_FAILED): the clients attached to it (`volume`) are told, so that their replicate volumes blame its copies of `paths`.", "Check the brick's disk; the files are healed from the other replica (AFR_WRITES_LOST on the clients)."),
  PS_STOP_SLOW: def("warn", "protocol/server", "On stop, some connections' open files were not released down the graph within the wait; the server stopped anyway.", "Nothing is lost (the sockets are closed); if it repeats, take a statedump before stopping to see which fds were open."),

  // ---- protocol/client ----
  PC_RESEND: def("debug", "protocol/client", "The connection was lost under a fop that is safe to send again (a read, or a change the server provably never received); it is sent on the next connection.", "Nothing."),
  PC_CONNECTED: def("info", "protocol/client", "Connected and attached to the remote volume (`remoteVolume`); the subvolume is up.", "Nothing."),
  PC_DISCONNECTED: def("warn", "protocol/client", "The connection to the server was lost (`reason`: closed, or silent for transport-timeout); operations through it fail with ENOTCONN until it reconnects.", "Check the server process and the network between; it reconnects by itself."),
  PC_CONNECT_FAILED: def("warn", "protocol/client", "A connection attempt failed (refused, unreachable, timed out); retried with backoff. Logged once per distinct error.", "Check that glusterfsd runs on that address and port and that no firewall drops it."),
  PC_REFUSED: def("error", "protocol/client", "The server refused the handshake: not allowed by its auth rules (EACCES), no such volume (ENOENT) or protocol mismatch (EPROTO).", "Fix the server's auth.ip.<volume>.allow or this volfile's remote-subvolume; the client keeps retrying."),
  PC_REOPEN_FAILED: def("warn", "protocol/client", "After a reconnect an open file could not be reopened on the server; that fd now fails with EBADF.", "The application must reopen the file."),

  // ---- cluster/afr and self-heal ----
  AFR_CHILD_UP: def("info", "cluster/afr", "A replica (brick) came up; pending heals towards it start (heal daemon).", "Nothing; watch `gluster-ha status` for the heal count going to 0."),
  AFR_CHILD_DOWN: def("warn", "cluster/afr", "A replica went down; writes continue on the others (if quorum allows) and are recorded in the pending-heal index.", "Bring the node back; it is healed automatically when it returns. `gluster-ha status` shows each node's REPLICAS (1/2, exit 3, while the servers cannot reach each other although both answer)."),
  AFR_WRITES_LOST: def("warn", "cluster/afr", "A replica's brick (`child`) lost writes it had answered for `path` (its disk refused them in a background writeback): the other replicas blame its copy and the file is queued for heal. Logged as an error when no other replica was up to take the blame (the only copy lacks data).", "Check that brick's disk (POSIX_WRITEBACK_FAILED in its log); `gluster-ha heal info` shows the file until it is healed."),
  AFR_HEAL_STARTED: def("info", "cluster/afr", "The heal daemon started a crawl of the pending-heal index with `pending` entries.", "Nothing."),
  AFR_INDEX_CRAWL_DONE: def("info", "cluster/afr", "A crawl of the pending-heal index finished: `healed` of `pending` entries healed, `splitBrain` entries could not be.", "If splitBrain > 0: see AFR_SPLIT_BRAIN."),
  AFR_INDEX_CRAWL_FAILED: def("warn", "cluster/afr", "A crawl of the pending-heal index failed (usually a brick went away during it); it is retried at the next heal-timeout or child-up.", "Nothing unless it repeats; then check the bricks' connectivity."),
  AFR_HEAL_DONE: def("info", "cluster/afr", "One file or directory was healed (`bytes` copied, entries `created`/`deleted`).", "Nothing."),
  AFR_HEAL_FAILED: def("warn", "cluster/afr", "Healing one path failed; it stays in the pending-heal index and is retried.", "If it repeats: `gluster-ha heal info` and the brick logs for that path."),
  AFR_SPLIT_BRAIN: def("error", "cluster/afr", "A file is in split-brain: each replica blames the other, no source can be chosen automatically; reads of it fail with EIO.", "Pick the good copy: `gluster-ha heal split-brain PATH --source NODE -f SERVER_VOLFILE` (or set favorite-child-policy)."),

  // ---- storage/posix ----
  POSIX_PRECREATE_FAILED: def("warn", "storage/posix", "The brick could not make an inode ahead of time (precreated-inodes; `code` says why, ENOSPC for a full disk); it tries again in a few seconds, and creates meanwhile make their own.", "Nothing unless it repeats: then check the brick's free space and inodes (df -i)."),
  POSIX_UNLINK_FAILED: def("warn", "storage/posix", "A file a client unlinked was renamed into .glusterfs/unlink to be freed in the background (unlinked-inodes), and unlinking it there failed (`code` says why): its space stays taken until the brick starts again and retries.", "Nothing unless it repeats: then check the brick's filesystem (dmesg, fsck)."),
  POSIX_DISK_FULL_FREED: def("info", "storage/posix", "A fop found the brick's disk full while files clients had unlinked were still waiting to be freed (unlinked-inodes): they were freed at once and the fop went again.", "Nothing; the disk is nearly full, which df shows."),
  POSIX_WRITEBACK_FAILED: def("warn", "storage/posix", "Sending a file's written data to disk in the background (writeback-after) failed (`code`: EIO, ENOSPC): the data may not be on this brick's disk. The fd's next fsync fails with that errno, and the replicate volumes over this brick are told at once (AFR_WRITES_LOST), fsync or not.", "Check the brick's disk (dmesg, df); the file is healed from the other replica."),
  POSIX_PRECREATED_UNLINK_FAILED: def("warn", "storage/posix", "A create took a precreated inode but its name in .glusterfs/precreated could not be removed: the new file shows two links until the brick starts again, which drops the pool name.", "Nothing; check the brick's filesystem if it repeats."),

  // ---- performance/write-behind ----
  WB_WRITE_FAILED: def("warn", "performance/write-behind", "A write acknowledged early failed in the background; the error is returned by the next write, fsync or close of that file.", "Check the errno (ENOSPC, EDQUOT, ENOTCONN) and the servers; the application sees it on close/fsync."),
  WB_FLUSH_BEHIND_FAILED: def("warn", "performance/write-behind", "flush-behind: the close returned at once and the deferred flush then failed; the error could not be reported to the application.", "Turn flush-behind off if applications must see every close error."),
  WB_ERROR_AT_RELEASE: def("warn", "performance/write-behind", "A file was closed with a background write error never reported; it is reported by the next fsync/flush/write of that file through another fd.", "Check the errno; the data of that write may be lost."),
} as const satisfies Record<string, MsgDef>;

export type MsgId = keyof typeof MSGIDS;

/** The log fields of a catalogued event: `log.info(msg("PC_CONNECTED", {address}), "connected")`. */
export function msg<F extends Record<string, unknown>>(id: MsgId, fields?: F): F & { msgid: MsgId } {
  return { ...(fields ?? ({} as F)), msgid: id };
}

/** docs/messages.md, generated from the catalog. */
export function messagesMarkdown(): string {
  const cell = (t: string) => t.replace(/\|/g, "\\|").replace(/</g, "&lt;");
  const lines = [
    "# Log message ids",
    "",
    "<!-- Generated from runtime/core/msgids.ts by `npm run docs`; do not edit. -->",
    "",
    "Every log line is one JSON object (pino). Lines of the kinds below carry a stable `msgid`: search,",
    "alert and count on it (`jq 'select(.msgid==\"AFR_SPLIT_BRAIN\")' glusterfsd.log`); the message text",
    "may change between versions, the id does not.",
    "",
    "| msgid | level | logged by | what it means | what to do |",
    "|---|---|---|---|---|",
  ];
  for (const [id, d] of Object.entries(MSGIDS) as [MsgId, MsgDef][]) {
    lines.push(`| \`${id}\` | ${d.level} | ${cell(d.source)} | ${cell(d.meaning)} | ${cell(d.action)} |`);
  }
  return lines.join("\n") + "\n";
}

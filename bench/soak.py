#!/usr/bin/python3
"""The soak benchmark's sampler and plotter (bench/soak.sh runs them).

  soak.py sample --gw PID --conf FILE --db FILE --socksctl BIN
                 --until PID [--every 10] [--queries 60] OUT.tsv
      every EVERY seconds until process UNTIL ends: connections/s,
      refusals by reason, the audit queue, records committed/s, the WAL
      and database sizes, RSS and descriptors of the proxy and auditd, the
      writer's lag (the queue over the rate it drains);
      every QUERIES seconds an audit report and an audit list run against
      the database (their times are sampled too)
  soak.py plot IN.tsv OUT.svg
      one SVG of those over time, and a summary line on stdout
"""
import json
import os
import sqlite3
import subprocess
import sys
import time

COLUMNS = ["t", "conn_s", "audit_refused", "limit_refused", "queue",
           "committed_s", "wal_mb", "db_mb", "rss_proxy_mb", "rss_auditd_mb",
           "fds_proxy", "fds_auditd", "open", "query_ms", "lag_s"]


def child(ppid, comm):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        if name == comm and int(fields[1]) == ppid:
            return int(pid)
    return None


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, TypeError):
        pass
    return 0.0


def fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, TypeError):
        return 0


def size_mb(path):
    try:
        return os.stat(path).st_size / 1048576.0
    except OSError:
        return 0.0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def sample(args):
    opts = dict(zip(args[0:-1:2], args[1:-1:2]))
    out = args[-1]
    gw, until = int(opts["--gw"]), int(opts["--until"])
    every = float(opts.get("--every", 10))
    qevery = float(opts.get("--queries", 60))
    ctl = [opts["--socksctl"], "-c", opts["--conf"]]
    db = opts["--db"]

    def stats():
        r = subprocess.run(ctl + ["--json", "stats"], capture_output=True,
                           text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def committed():
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        try:
            # IS NOT NULL: the partial index on seq, not a scan of the log.
            return con.execute("SELECT max(seq) FROM records WHERE seq IS "
                               "NOT NULL").fetchone()[0] or 0
        finally:
            con.close()

    def queries():
        t0 = time.monotonic()
        subprocess.run(ctl + ["audit", "report", "users", "--since", "-1h",
                              "--format", "csv"], capture_output=True,
                       timeout=600)
        subprocess.run(ctl + ["audit", "list", "--since", "-10m", "--limit",
                              "100"], capture_output=True, timeout=600)
        return (time.monotonic() - t0) * 1000.0

    f = open(out, "w")
    f.write("\t".join(COLUMNS) + "\n")
    start = time.monotonic()
    last_q = start
    prev = stats()
    prev_seq, prev_t = committed(), start
    while alive(until):
        time.sleep(every)
        now = time.monotonic()
        s = stats()
        seq = committed()
        dt = now - prev_t
        qms = 0.0
        if now - last_q >= qevery:
            qms = queries()
            last_q = now
        proxy = child(gw, "socksgw-proxy")
        auditd = child(gw, "socksgw-auditd")
        lim = sum(s.get(k, 0) - prev.get(k, 0) for k in
                  ("limit_sessions", "limit_rate", "limit_handshakes"))
        rate = (seq - prev_seq) / dt
        # The writer's lag: how long the queue takes at the rate it drains.
        lag = s.get("audit_queue", 0) / rate if rate > 0 else \
            (every if s.get("audit_queue", 0) else 0.0)
        row = [now - start,
               (s.get("sessions_total", 0) - prev.get("sessions_total", 0)) / dt,
               s.get("audit_refusals", 0) - prev.get("audit_refusals", 0),
               lim, s.get("audit_queue", 0), (seq - prev_seq) / dt,
               size_mb(db + "-wal"), size_mb(db), rss_mb(proxy),
               rss_mb(auditd), fds(proxy), fds(auditd),
               s.get("sessions_open", 0), qms, lag]
        f.write("\t".join("%.1f" % v if isinstance(v, float) else str(v)
                          for v in row) + "\n")
        f.flush()
        prev, prev_seq, prev_t = s, seq, now
    f.close()


def plot(args):
    src, out = args
    rows = []
    with open(src) as f:
        head = f.readline().split()
        for line in f:
            rows.append(dict(zip(head, map(float, line.split()))))
    if not rows:
        print("soak: no samples")
        return 1
    panels = [("connections/s and records committed/s",
               ["conn_s", "committed_s"]),
              ("refusals per sample (audit, limits)",
               ["audit_refused", "limit_refused"]),
              ("audit queue (records)", ["queue"]),
              ("writer lag (s): queue / records committed per s", ["lag_s"]),
              ("descriptors: proxy, auditd", ["fds_proxy", "fds_auditd"]),
              ("WAL and database (MB)", ["wal_mb", "db_mb"]),
              ("RSS (MB): proxy, auditd", ["rss_proxy_mb", "rss_auditd_mb"]),
              ("report + list query (ms)", ["query_ms"])]
    colors = ["#1f77b4", "#d62728", "#2ca02c"]
    w, ph, pad = 760, 150, 46
    h = len(panels) * (ph + 40) + 20
    tmax = max(r["t"] for r in rows) or 1.0
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>']
    for i, (title, keys) in enumerate(panels):
        y0 = 20 + i * (ph + 40)
        vmax = max(max(r[k] for r in rows) for k in keys) or 1.0
        svg.append('<text x="%d" y="%d">%s (max %.1f)</text>'
                   % (pad, y0 - 4, title, vmax))
        svg.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" '
                   'stroke="#999"/>' % (pad, y0, w - 2 * pad, ph))
        for j, k in enumerate(keys):
            pts = " ".join("%.1f,%.1f" % (
                pad + (w - 2 * pad) * r["t"] / tmax,
                y0 + ph - ph * r[k] / vmax) for r in rows)
            svg.append('<polyline fill="none" stroke="%s" points="%s"/>'
                       % (colors[j], pts))
            svg.append('<text x="%d" y="%d" fill="%s">%s</text>'
                       % (w - pad - 110 + 0, y0 + 12 + 12 * j, colors[j], k))
        svg.append('<text x="%d" y="%d">0</text><text x="%d" y="%d">%.0f s'
                   '</text>' % (pad, y0 + ph + 12, w - pad - 30, y0 + ph + 12,
                                tmax))
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    warm = [r for r in rows if r["t"] >= min(300.0, tmax / 3)]
    first, last = warm[0], warm[-1]
    rate = sorted(r["conn_s"] for r in rows)[len(rows) // 2]
    print("soak: %.0f s, median %.0f conn/s, %d audit refusals, %d limit "
          "refusals, queue max %d, WAL max %.1f MB, database %.1f MB, "
          "RSS proxy %.1f -> %.1f MB, auditd %.1f -> %.1f MB (from %.0f s), "
          "query max %.0f ms, writer lag max %.2f s"
          % (tmax, rate, sum(r["audit_refused"] for r in rows),
             sum(r["limit_refused"] for r in rows),
             max(r["queue"] for r in rows), max(r["wal_mb"] for r in rows),
             rows[-1]["db_mb"], first["rss_proxy_mb"], last["rss_proxy_mb"],
             first["rss_auditd_mb"], last["rss_auditd_mb"], first["t"],
             max(r["query_ms"] for r in rows),
             max(r.get("lag_s", 0.0) for r in rows)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("sample", "plot"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(sample(sys.argv[2:]) if sys.argv[1] == "sample"
             else plot(sys.argv[2:]))

#!/usr/bin/env python3
"""`make bench`: ferry's benchmarks, each beside a baseline run in the same command.

The machine is small and noisy: every figure is the median of several runs, and each
benchmark reports its ratio to a baseline measured here, now, on the same data.
Peak RSS comes from getrusage of the finished child (the largest child so far, so each
measured command runs in its own short-lived wrapper process).
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, ".build", "release")


def measure(cmd, stdin=None, env=None):
    """Runs cmd in a fresh wrapper so ru_maxrss is this command's alone; returns (seconds, peak_rss_mb)."""
    wrapper = (
        "import resource,subprocess,sys,time,json\n"
        "cmd=json.loads(sys.argv[1]); stdin=sys.argv[2] or None\n"
        "t=time.perf_counter()\n"
        "r=subprocess.run(cmd, stdin=open(stdin,'rb') if stdin else None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "e=time.perf_counter()-t\n"
        "if r.returncode not in (0,): sys.stderr.write(r.stderr.decode()[-2000:]); sys.exit(r.returncode)\n"
        "print(json.dumps([e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, json.dumps(cmd), stdin or ""],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{out.stderr}")
    seconds, rss = json.loads(out.stdout)
    return seconds, rss


def median_of(runs, prepare, cmd, **kw):
    results = []
    for _ in range(runs):
        prepare()
        results.append(measure(cmd(), **kw))
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def rm(*paths):
    for p in paths:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(p + suffix)
            except FileNotFoundError:
                pass


def bench_profile_load(work, count, runs):
    jsonl = os.path.join(work, f"profiles-{count}.jsonl")
    csv = os.path.join(work, f"profiles-{count}.csv")
    sandbox = os.path.join(RELEASE, "ferry-sandbox")
    if not os.path.exists(jsonl):
        subprocess.run([sandbox, "generate", "profiles", "--count", str(count), "--seed", "1", "--output", jsonl], check=True)
        subprocess.run([sandbox, "generate", "profiles", "--count", str(count), "--seed", "1", "--format", "csv", "--output", csv], check=True)
    schedules = os.path.join(ROOT, "Schedules")
    db = os.path.join(work, "ferry.sqlite")
    env = dict(os.environ)
    ferry_s, ferry_rss = median_of(runs, lambda: rm(db),
                                   lambda: [os.path.join(RELEASE, "ferry"), "profiles", "load", jsonl, "--db", db, "--schedules", schedules],
                                   env=env)
    base_db = os.path.join(work, "baseline.sqlite")
    script = os.path.join(work, "baseline.sql")
    with open(script, "w") as f:
        # A comparable table: one row per profile, unique id and email indexes, same rows, WAL like ferry.
        f.write("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n"
                "CREATE TABLE profile (id TEXT PRIMARY KEY, email TEXT UNIQUE, first_name, last_name, city, country, "
                "lifetime_spend, engagement, interests, signup_date, last_order_time, objectives, segments);\n"
                f".import --csv --skip 1 {csv} profile\n")
    base_s, base_rss = median_of(runs, lambda: rm(base_db), lambda: ["sqlite3", base_db], stdin=script)
    return {
        "name": f"profiles load, {count:,} profiles (JSON Lines)",
        "ferry_s": ferry_s, "ferry_rss": ferry_rss, "base_s": base_s, "base_rss": base_rss,
        "rate": count / ferry_s, "baseline": "sqlite3 CLI `.import --csv` of the same rows into a comparable table",
    }


CRON_SHAPES = ["30 2 * * 1-5", "*/15 * * * *", "0 9 1,15 * *", "0 0 * * sun", "0 */4 * * *"]


def croniter_python(work):
    """A venv under the bench folder with croniter: installed for the benchmark only."""
    venv = os.path.join(work, "venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "croniter"], check=True)
    return python


def bench_schedule(work, rounds):
    zone, start, count = "America/New_York", "2026-01-01T00:00:00Z", 2000
    out = subprocess.run([os.path.join(RELEASE, "ferry-bench"), "schedule", zone, start, str(count), str(rounds)] + CRON_SHAPES,
                         check=True, capture_output=True, text=True).stdout
    ferry = json.loads(out)["ns_per_fire"]
    script = (
        "import json,sys,time,statistics\n"
        "from datetime import datetime,timezone\n"
        "from zoneinfo import ZoneInfo\n"
        "from croniter import croniter\n"
        "zone,count,rounds=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])\n"
        "start=datetime(2026,1,1,tzinfo=timezone.utc).astimezone(ZoneInfo(zone))\n"
        "res={}\n"
        "for expr in sys.argv[4:]:\n"
        "  samples=[]\n"
        "  for _ in range(rounds):\n"
        "    it=croniter(expr,start); t=time.perf_counter()\n"
        "    for _ in range(count): it.get_next(datetime)\n"
        "    samples.append((time.perf_counter()-t)*1e9/count)\n"
        "  res[expr]=statistics.median(samples)\n"
        "print(json.dumps(res))\n"
    )
    python = croniter_python(work)
    base = json.loads(subprocess.run([python, "-c", script, zone, str(count), str(rounds)] + CRON_SHAPES,
                                     check=True, capture_output=True, text=True).stdout)
    rows = []
    for expr in CRON_SHAPES:
        rows.append((expr, ferry[expr], base[expr]))
    return rows


def bench_idle_daemon(work, seconds=60, connections=20):
    folder = os.path.join(work, "idle-schedules")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "segments.yaml"), "w") as f:
        f.write("segments:\n  - name: vip\n")
    zones = ["America/New_York", "Europe/Dublin", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"]
    for i in range(connections):
        with open(os.path.join(folder, f"c{i}.yaml"), "w") as f:
            f.write(f"name: c{i}\ntimezone: {zones[i % len(zones)]}\nschedule:\n  at: [\"{(i * 7) % 24:02d}:{(i * 13) % 60:02d}\"]\n"
                    "destination: { type: sendgrid, api_key: \"${BENCH_KEY}\" }\ngoals:\n  - export: { segments: [vip], email: email }\n")
    db = os.path.join(work, "idle.sqlite")
    rm(db)
    env = dict(os.environ, BENCH_KEY="not-used")
    proc = subprocess.Popen([os.path.join(RELEASE, "ferry"), "daemon", "--schedules", folder, "--db", db],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def cpu():
        fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    time.sleep(3)  # start-up (migrations, first check) is not idle time
    before = cpu()
    time.sleep(seconds)
    used = cpu() - before
    proc.terminate()
    proc.wait(timeout=30)
    return used


def start_sailthru_sandbox(work):
    state = os.path.join(work, "sailthru-state")
    subprocess.run(["rm", "-rf", state], check=True)
    log = open(os.path.join(work, "sailthru.log"), "w")
    proc = subprocess.Popen([os.path.join(RELEASE, "ferry-sandbox"), "sailthru", "--port", "0", "--api-key", "benchkey0123456789",
                             "--secret", "bench-secret", "--state", state, "--rate-limit", "POST /user=100000000",
                             "--rate-window", "1"], stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"sandbox did not start: {line}")
    return proc, "http://" + line.strip().split("listening on ")[1]


def bench_http(work, runs):
    proc, base = start_sailthru_sandbox(work)
    try:
        size = 100 * 1024 * 1024
        url = f"{base}/_sandbox/chunked?n={size}"
        target = os.path.join(work, "download.bin")
        ferry_samples, curl_samples, rss = [], [], 0
        for _ in range(runs):
            out = subprocess.run([os.path.join(RELEASE, "ferry-bench"), "download", url, target], check=True, capture_output=True, text=True).stdout
            ferry_samples.append(json.loads(out)["seconds"])
            _, peak = measure([os.path.join(RELEASE, "ferry-bench"), "download", url, target])
            rss = max(rss, peak)
            t = time.perf_counter()
            subprocess.run(["curl", "-sS", "-o", target, url], check=True)
            curl_samples.append(time.perf_counter() - t)
        count = 10_000
        out = subprocess.run([os.path.join(RELEASE, "ferry-bench"), "sailthru-users", base, "benchkey0123456789", "bench-secret",
                              str(count), "4"], check=True, capture_output=True, text=True).stdout
        posts = json.loads(out)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    mb = size / 1e6
    return {"ferry_mbs": mb / statistics.median(ferry_samples), "curl_mbs": mb / statistics.median(curl_samples),
            "rss": rss, "posts_per_s": posts["requests"] / posts["seconds"], "posts_failed": posts["failed"]}


def start_sshd(work):
    """OpenSSH's sshd on a free 127.0.0.1 port, keys generated here, files landing in work/sftp-root."""
    import socket
    d = os.path.join(work, "sshd")
    root = os.path.join(work, "sftp-root")
    subprocess.run(["rm", "-rf", d, root], check=True)
    os.makedirs(d)
    os.makedirs(root)
    for name in ("host_ed25519", "client_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, name)], check=True)
    with open(os.path.join(d, "client_ed25519.pub")) as src, open(os.path.join(d, "authorized_keys"), "w") as dst:
        dst.write(src.read())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with open(os.path.join(d, "sshd_config"), "w") as f:
        f.write(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n"
                f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
                f"PasswordAuthentication no\nSubsystem sftp internal-sftp\nForceCommand internal-sftp -d {root}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(d, "sshd_config")],
                            stderr=open(os.path.join(d, "sshd.log"), "w"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    with open(os.path.join(d, "host_ed25519.pub")) as f:
        key = " ".join(f.read().split()[:2])
    with open(os.path.join(d, "known_hosts"), "w") as f:
        f.write(f"[127.0.0.1]:{port} {key}\n")
    return proc, port, os.path.join(d, "client_ed25519"), os.path.join(d, "known_hosts"), root


def bench_mapp(work, runs):
    """The segment of every profile in the load benchmark's store, 6 columns, to a loopback sshd."""
    db = os.path.join(work, "ferry.sqlite")
    count = int(subprocess.run(["sqlite3", db, "SELECT COUNT(*) FROM profile"], check=True, capture_output=True, text=True).stdout)
    proc, port, key, known_hosts, root = start_sshd(work)
    user = subprocess.run(["id", "-un"], check=True, capture_output=True, text=True).stdout.strip()
    folder = os.path.join(work, "mapp-schedules")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "segments.yaml"), "w") as f:
        f.write("segments:\n  - name: everyone\n    all:\n      - { property: email, exists: true }\n")
    columns = [("email", "user.Email"), ("first_name", "user.FirstName"), ("last_name", "user.LastName"),
               ("city", "user.CustomAttribute.City"), ("country", "user.CustomAttribute.Country"),
               ("lifetime_spend", "user.CustomAttribute.Spend")]
    with open(os.path.join(folder, "mapp.yaml"), "w") as f:
        f.write(f"name: mapp-bench\ntimezone: UTC\nschedule: {{ cron: \"0 3 * * 1\" }}\ndestination:\n  type: mapp\n"
                f"  host: 127.0.0.1\n  port: {port}\n  username: {user}\n  private_key: {key}\n  folder: ferry\n"
                f"  known_hosts: {known_hosts}\ngoals:\n  - export:\n      segment: everyone\n      file_prefix: bench\n"
                "      columns:\n" + "".join(f"        - {{ property: {p}, header: {h} }}\n" for p, h in columns))
    csv = os.path.join(work, "baseline.csv")
    query = "SELECT " + ", ".join(f"json_extract(properties, '$.{p}[0]')" for p, _ in columns) + " FROM profile"
    batch = os.path.join(work, "sftp.batch")
    with open(batch, "w") as f:
        f.write(f"put {csv} baseline.csv\n")
    # OpenSSH's sftp refuses to `put` a FIFO, so the baseline writes the CSV to a local file first (both steps timed).
    baseline_script = (f"set -e; sqlite3 -csv {db} \"{query}\" > {csv}; "
                       f"sftp -q -i {key} -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes -P {port} "
                       f"-b {batch} {user}@127.0.0.1 > /dev/null; test -s {root}/baseline.csv")
    try:
        ferry_s, ferry_rss = median_of(runs, lambda: subprocess.run(["rm", "-rf", os.path.join(root, "ferry")]),
                                       lambda: [os.path.join(RELEASE, "ferry"), "run", "mapp-bench", "--now",
                                                "--schedules", folder, "--db", db])
        size = sum(os.path.getsize(os.path.join(root, "ferry", n)) for n in os.listdir(os.path.join(root, "ferry")))
        base_s, _ = median_of(runs, lambda: None, lambda: ["bash", "-c", baseline_script])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"count": count, "ferry_s": ferry_s, "ferry_rss": ferry_rss, "base_s": base_s, "mb": size / 1e6}


def start_sandbox(kind, work, extra):
    state = os.path.join(work, f"{kind}-goal-state")
    subprocess.run(["rm", "-rf", state], check=True)
    proc = subprocess.Popen([os.path.join(RELEASE, "ferry-sandbox"), kind, "--port", "0", "--state", state] + extra,
                            stdout=subprocess.PIPE, stderr=open(os.path.join(work, f"{kind}-goal.log"), "w"), text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"{kind} sandbox did not start: {line}")
    return proc, "http://" + line.strip().split("listening on ")[1]


def bench_goals(work, count, names=("st-export", "sg-export", "st-import")):
    """Sailthru export (method: job) and SendGrid export of `count` members, then the Sailthru list imported back."""
    folder = os.path.join(work, "goal-schedules")
    subprocess.run(["rm", "-rf", folder], check=True)
    os.makedirs(folder)
    profiles = os.path.join(work, f"profiles-{count}.jsonl")
    if not os.path.exists(profiles):
        subprocess.run([os.path.join(RELEASE, "ferry-sandbox"), "generate", "profiles", "--count", str(count), "--seed", "2",
                        "--output", profiles], check=True)
    db = os.path.join(work, "goals.sqlite")
    rm(db)
    with open(os.path.join(folder, "segments.yaml"), "w") as f:
        f.write("segments:\n  - name: everyone\n    all:\n      - { property: email, exists: true }\n")
    subprocess.run([os.path.join(RELEASE, "ferry"), "profiles", "load", profiles, "--db", db, "--schedules", folder],
                   check=True, stdout=subprocess.DEVNULL)
    sailthru, sailthru_url = start_sandbox("sailthru", work, ["--api-key", "benchkey0123456789", "--secret", "bench-secret",
                                                              "--job-delay", "0", "--rate-limit", "POST /job=1000000",
                                                              "--rate-limit", "GET /job=1000000", "--rate-window", "1"])
    sendgrid, sendgrid_url = start_sandbox("sendgrid", work, ["--api-key", "SG.bench", "--job-delay", "0"])
    env = dict(os.environ, ST_KEY="benchkey0123456789", ST_SECRET="bench-secret", SG_KEY="SG.bench")
    common = "timezone: UTC\nschedule: { cron: \"0 3 * * 1\" }\n"
    sailthru_destination = f"destination: {{ type: sailthru, api_key: \"${{ST_KEY}}\", api_secret: \"${{ST_SECRET}}\", base_url: \"{sailthru_url}\" }}\n"
    with open(os.path.join(folder, "st-export.yaml"), "w") as f:
        f.write("name: st-export\n" + common + sailthru_destination +
                "goals:\n  - export:\n      segment: everyone\n      match: { email: email }\n      method: job\n"
                "      create_users: true\n      lists: [Bench]\n      fields:\n"
                "        - { property: first_name, to: first_name }\n        - { property: lifetime_spend, to: spend }\n")
    with open(os.path.join(folder, "sg-export.yaml"), "w") as f:
        f.write("name: sg-export\n" + common +
                f"destination: {{ type: sendgrid, api_key: \"${{SG_KEY}}\", base_url: \"{sendgrid_url}\" }}\n"
                "goals:\n  - export:\n      segments: [everyone]\n      email: email\n      first_name: first_name\n")
    with open(os.path.join(folder, "st-import.yaml"), "w") as f:
        f.write("name: st-import\n" + common + sailthru_destination +
                "goals:\n  - import:\n      lists: [Bench]\n      match: { email: email }\n      create_profiles: true\n"
                "      fields:\n        - { from: first_name, to: first_name, mode: set_if_empty }\n"
                "        - { from: first_name, to: nickname, mode: set }\n        - { from: first_name, to: aliases, mode: add }\n"
                "        - { from: spend, to: lifetime_spend, mode: sum }\n")
    results = {}
    try:
        for name in names:
            seconds, rss = measure([os.path.join(RELEASE, "ferry"), "run", name, "--now", "--db", db, "--schedules", folder], env=env)
            runs = subprocess.run([os.path.join(RELEASE, "ferry"), "history", name, "--json", "--limit", "1", "--db", db,
                                   "--schedules", folder], check=True, capture_output=True, text=True, env=env).stdout
            record = json.loads(runs)["runs"][0]
            results[name] = (seconds, rss, record["status"], record["counts"])
    finally:
        sailthru.terminate()
        sendgrid.terminate()
    return count, results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(ROOT, ".build", "bench"))
    parser.add_argument("--only", choices=["load", "schedule", "idle", "http", "mapp", "goals"])
    parser.add_argument("--goal-profiles", type=int, default=100_000)
    parser.add_argument("--goals", default="st-export,sg-export,st-import", help="which goal benchmarks, comma-separated")
    parser.add_argument("--idle-seconds", type=int, default=60)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    parser_only = args.only
    results = [bench_profile_load(args.work, args.profiles, args.runs)] if parser_only in (None, "load") else []
    schedule_rows = bench_schedule(args.work, max(args.runs, 5)) if parser_only in (None, "schedule") else []
    idle = bench_idle_daemon(args.work, args.idle_seconds) if parser_only in (None, "idle") else None
    http = bench_http(args.work, args.runs) if parser_only in (None, "http") else None
    mapp = bench_mapp(args.work, args.runs) if parser_only in (None, "mapp") else None
    goals = bench_goals(args.work, args.goal_profiles, args.goals.split(",")) if parser_only in (None, "goals") else None
    print(f"\n## Results ({time.strftime('%Y-%m-%d')}, median of {args.runs} runs, release build, {os.cpu_count()} cores)\n")
    if results:
        print("| benchmark | ferry | baseline | ratio (ferry / baseline) | rate | ferry peak RSS |")
        print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['ferry_s']:.2f} s | {r['base_s']:.2f} s | {r['ferry_s'] / r['base_s']:.2f}× | "
              f"{r['rate']:,.0f} /s | {r['ferry_rss']:.0f} MB |")
    print()
    for r in results:
        print(f"- baseline for '{r['name']}': {r['baseline']} (peak RSS {r['base_rss']:.0f} MB)")
    if schedule_rows:
        print("\n### Next-fire computation: ferry vs Python croniter (America/New_York, 2,000 successive fires, median)\n")
        print("| cron | ferry | croniter | croniter / ferry |")
        print("|---|---|---|---|")
        for expr, ferry_ns, base_ns in schedule_rows:
            print(f"| `{expr}` | {ferry_ns / 1000:.2f} µs | {base_ns / 1000:.2f} µs | {base_ns / ferry_ns:.0f}× |")
    if http is not None:
        print("\n### HTTP over libcurl, against the Sailthru sandbox on 127.0.0.1\n")
        print("| benchmark | ferry | baseline | ratio |")
        print("|---|---|---|---|")
        print(f"| 100 MB streamed download | {http['ferry_mbs']:.0f} MB/s (peak RSS {http['rss']:.0f} MB) | curl CLI {http['curl_mbs']:.0f} MB/s | "
              f"{http['ferry_mbs'] / http['curl_mbs']:.2f}× |")
        print(f"| 10,000 signed `/user` POSTs (100 users updated in turn), keep-alive, 4 at a time | {http['posts_per_s']:,.0f} requests/s "
              f"({http['posts_failed']} failed) | — | — |")
    if mapp is not None:
        print("\n### Mapp export to OpenSSH sshd on 127.0.0.1 (6 columns, every profile of the load benchmark's store)\n")
        print("| profiles | ferry | baseline: `sqlite3 -csv` to a file, then OpenSSH `sftp put` | ratio | MB/s (ferry) | ferry peak RSS |")
        print("|---|---|---|---|---|---|")
        print(f"| {mapp['count']:,} | {mapp['ferry_s']:.1f} s | {mapp['base_s']:.1f} s | {mapp['ferry_s'] / mapp['base_s']:.2f}× | "
              f"{mapp['mb'] / mapp['ferry_s']:.1f} | {mapp['ferry_rss']:.0f} MB |")
    if goals is not None:
        count, results = goals
        print(f"\n### Goals against the sandboxes on 127.0.0.1 ({count:,} profiles, one run each, client wall time)\n")
        print("| goal | wall time | status | counts | rows/s | peak RSS |")
        print("|---|---|---|---|---|---|")
        labels = {"st-export": "Sailthru export, `method: job`, 1 list, 2 vars", "sg-export": "SendGrid export, 1 segment",
                  "st-import": "Sailthru import of that list, 4 fields (set_if_empty, set, add, sum)"}
        for name, (seconds, rss, status, counts) in results.items():
            moved = counts.get("exported", 0) or counts.get("read", 0)
            shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            print(f"| {labels[name]} | {seconds:.1f} s | {status} | {shown} | {moved / seconds:,.0f} | {rss:.0f} MB |")
    if idle is not None:
        print(f"\n### Idle daemon\n\n20 connections, {args.idle_seconds} s idle: {idle:.2f} s of CPU time (target < 0.1 s).")


if __name__ == "__main__":
    main()

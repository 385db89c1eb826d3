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


def measure(cmd, stdin=None, env=None, with_cpu=False):
    """Runs cmd in a fresh wrapper so ru_maxrss is this command's alone; returns (seconds, peak_rss_mb)."""
    wrapper = (
        "import resource,subprocess,sys,time,json\n"
        "cmd=json.loads(sys.argv[1]); stdin=sys.argv[2] or None\n"
        "t=time.perf_counter()\n"
        "r=subprocess.run(cmd, stdin=open(stdin,'rb') if stdin else None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "e=time.perf_counter()-t\n"
        "if r.returncode not in (0,): sys.stderr.write(r.stderr.decode()[-2000:]); sys.exit(r.returncode)\n"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps([e, u.ru_maxrss/1024, u.ru_utime+u.ru_stime]))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, json.dumps(cmd), stdin or ""],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{out.stderr}")
    seconds, rss, cpu = json.loads(out.stdout)
    return (seconds, rss, cpu) if with_cpu else (seconds, rss)


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
    ferry_cmd = [os.path.join(RELEASE, "ferry"), "profiles", "load", jsonl, "--db", db, "--schedules", schedules]
    base_db = os.path.join(work, "baseline.sqlite")
    script = os.path.join(work, "baseline.sql")
    with open(script, "w") as f:
        # A comparable table: one row per profile, unique id and email indexes, same rows, WAL like ferry.
        f.write("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n"
                "CREATE TABLE profile (id TEXT PRIMARY KEY, email TEXT UNIQUE, first_name, last_name, city, country, "
                "lifetime_spend, engagement, interests, signup_date, last_order_time, objectives, segments);\n"
                f".import --csv --skip 1 {csv} profile\n")
    # ferry and the baseline take turns, so a burst of load from elsewhere on the machine hits both alike.
    ferry_runs, base_runs = [], []
    for _ in range(runs):
        rm(db)
        ferry_runs.append(measure(ferry_cmd, env=env, with_cpu=True))
        rm(base_db)
        base_runs.append(measure(["sqlite3", base_db], stdin=script, with_cpu=True))
    ferry_s, ferry_rss, ferry_cpu = statistics.median(r[0] for r in ferry_runs), max(r[1] for r in ferry_runs), statistics.median(r[2] for r in ferry_runs)
    base_s, base_rss, base_cpu = statistics.median(r[0] for r in base_runs), max(r[1] for r in base_runs), statistics.median(r[2] for r in base_runs)
    print(f"load: ferry {[round(r[0], 1) for r in ferry_runs]} s (cpu {[round(r[2], 1) for r in ferry_runs]}), "
          f"baseline {[round(r[0], 1) for r in base_runs]} s (cpu {[round(r[2], 1) for r in base_runs]})", file=sys.stderr)
    return {
        "name": f"profiles load, {count:,} profiles (JSON Lines)",
        "ferry_s": ferry_s, "ferry_rss": ferry_rss, "base_s": base_s, "base_rss": base_rss,
        "ferry_cpu": ferry_cpu, "base_cpu": base_cpu,
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
        samples = []
        for _ in range(runs):
            subprocess.run(["rm", "-rf", os.path.join(root, "ferry")])
            samples.append(measure([os.path.join(RELEASE, "ferry"), "run", "mapp-bench", "--now", "--schedules", folder, "--db", db],
                                   with_cpu=True))
        ferry_s, ferry_rss = statistics.median(s[0] for s in samples), max(s[1] for s in samples)
        ferry_cpu = statistics.median(s[2] for s in samples)
        size = sum(os.path.getsize(os.path.join(root, "ferry", n)) for n in os.listdir(os.path.join(root, "ferry")))
        base = [measure(["bash", "-c", baseline_script], with_cpu=True) for _ in range(runs)]
        base_s, base_cpu = statistics.median(b[0] for b in base), statistics.median(b[2] for b in base)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"count": count, "ferry_s": ferry_s, "ferry_rss": ferry_rss, "base_s": base_s, "mb": size / 1e6,
            "ferry_cpu": ferry_cpu, "base_cpu": base_cpu, "ferry_all": [round(s[0], 1) for s in samples],
            "base_all": [round(b[0], 1) for b in base]}


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


def write_goal_config(folder, name, destination, goal):
    with open(os.path.join(folder, f"{name}.yaml"), "w") as f:
        f.write(f"name: {name}\ntimezone: UTC\nschedule: {{ cron: \"0 3 * * 1\" }}\n{destination}goals:\n{goal}")


def load_store(work, count, seed, db, folder):
    """A store of `count` generated profiles, loaded once and checkpointed (so copying the file copies it all)."""
    profiles = os.path.join(work, f"profiles-{count}-s{seed}.jsonl")
    if not os.path.exists(profiles):
        subprocess.run([os.path.join(RELEASE, "ferry-sandbox"), "generate", "profiles", "--count", str(count), "--seed", str(seed),
                        "--output", profiles], check=True)
    rm(db)
    subprocess.run([os.path.join(RELEASE, "ferry"), "profiles", "load", profiles, "--db", db, "--schedules", folder],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE);"], check=True, stdout=subprocess.DEVNULL)
    return profiles


def process_cpu(pid):
    """User + system CPU seconds a running process has used so far (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_goal(binaries, name, db, folder, env, sandbox):
    """`ferry run NAME --now` with `binaries`' ferry, measured; returns (seconds, peak RSS, client CPU, the sandbox's CPU
    meanwhile, the run's history record)."""
    sandbox_before = process_cpu(sandbox.pid)
    seconds, rss, cpu = measure([os.path.join(binaries, "ferry"), "run", name, "--now", "--db", db, "--schedules", folder],
                                env=env, with_cpu=True)
    sandbox_cpu = process_cpu(sandbox.pid) - sandbox_before
    record = json.loads(subprocess.run([os.path.join(binaries, "ferry"), "history", name, "--json", "--limit", "1", "--db", db,
                                        "--schedules", folder], check=True, capture_output=True, text=True, env=env).stdout)["runs"][0]
    return seconds, rss, cpu, sandbox_cpu, record


def copy_store(source, target):
    rm(target)
    subprocess.run(["cp", source, target], check=True)
    subprocess.run(["rm", "-rf", target + ".imports"], check=True)


SAILTHRU_SANDBOX_ARGS = ["--api-key", "benchkey0123456789", "--secret", "bench-secret", "--job-delay", "0",
                         "--rate-limit", "POST /job=1000000", "--rate-limit", "GET /job=1000000",
                         "--rate-limit", "POST /user=1000000", "--rate-limit", "GET /user=1000000", "--rate-window", "1"]


def sailthru_destination(url):
    return f"destination: {{ type: sailthru, api_key: \"${{ST_KEY}}\", api_secret: \"${{ST_SECRET}}\", base_url: \"{url}\" }}\n"


def bench_st_export(work, count, runs, folder, env, baseline_bin=None):
    """#7: a `count`-member segment to Sailthru with `method: job`, and a 10,000-member one with `method: user`;
    each run on a fresh copy of the store and a fresh sandbox, so every run is a first run (it creates the list and the
    users; a later run sends every member again, as updates, against a ledger that is already full).
    With `baseline_bin` (a folder holding another build's `ferry` and `ferry-sandbox`), each run is also made with
    those binaries, interleaved (baseline first), so before/after come from the same window."""
    base_db = os.path.join(work, f"export-base-{count}.sqlite")
    load_store(work, count, 2, base_db, folder)
    user_count = 10_000
    user_base_db = os.path.join(work, f"export-base-{user_count}.sqlite")
    load_store(work, user_count, 3, user_base_db, folder)
    fields = "      fields:\n        - { property: first_name, to: first_name }\n        - { property: lifetime_spend, to: spend }\n"
    builds = ([("baseline", baseline_bin)] if baseline_bin else []) + [("ferry", RELEASE)]
    out = {}
    for name, method, source, members in (("st-export", "job", base_db, count), ("st-export-user", "user", user_base_db, user_count)):
        samples = {build: [] for build, _ in builds}
        for _ in range(runs):
            for build, binaries in builds:
                db = os.path.join(work, f"{name}.sqlite")
                copy_store(source, db)
                state = os.path.join(work, "sailthru-goal-state")
                subprocess.run(["rm", "-rf", state], check=True)
                sandbox = subprocess.Popen([os.path.join(binaries, "ferry-sandbox"), "sailthru", "--port", "0", "--state", state]
                                           + SAILTHRU_SANDBOX_ARGS, stdout=subprocess.PIPE,
                                           stderr=open(os.path.join(work, "sailthru-goal.log"), "w"), text=True)
                line = sandbox.stdout.readline()
                if "listening on" not in line:
                    sandbox.kill()
                    raise SystemExit(f"sailthru sandbox did not start: {line}")
                url = "http://" + line.strip().split("listening on ")[1]
                try:
                    write_goal_config(folder, name, sailthru_destination(url),
                                      f"  - export:\n      segment: everyone\n      match: {{ email: email }}\n      method: {method}\n"
                                      f"      create_users: true\n      lists: [Bench]\n" + fields)
                    seconds, rss, cpu, sandbox_cpu, record = run_goal(binaries, name, db, folder, env, sandbox)
                finally:
                    sandbox.kill()
                    sandbox.wait()
                samples[build].append((seconds, rss, record["status"], record["counts"], cpu, sandbox_cpu))
        for build, s in samples.items():
            out[name if build == "ferry" else f"{name} (baseline)"] = {
                "members": members, "seconds": statistics.median(x[0] for x in s), "rss": max(x[1] for x in s),
                "status": ",".join(sorted({x[2] for x in s})), "counts": s[-1][3], "runs": runs,
                "cpu": statistics.median(x[4] for x in s), "sandbox_cpu": statistics.median(x[5] for x in s),
                "all": [round(x[0], 2) for x in s]}
    return out


IMPORT_FIELDS = ("      fields:\n        - { from: first_name, to: first_name, mode: set_if_empty }\n"
                 "        - { from: first_name, to: nickname, mode: set }\n        - { from: first_name, to: aliases, mode: add }\n"
                 "        - { from: spend, to: lifetime_spend, mode: sum }\n")


def bench_st_import(work, rows, runs, folder, env, other_bin=None):
    """#6: a `rows`-row Sailthru list export merged into a store of `rows` profiles, half the rows matching;
    against sqlite3 `.import` of the same CSV plus one INSERT … ON CONFLICT DO UPDATE into an equivalent table.
    With `other_bin` (a folder holding another build's `ferry`), each run also runs that build's client on a
    fresh copy of the same store against the same sandbox, interleaved, so before/after come from the same window."""
    import csv as csvmod, hashlib, random
    base_db = os.path.join(work, f"import-base-{rows}.sqlite")
    profiles = load_store(work, rows, 1, base_db, folder)
    # The sandbox's users, written as its snapshot files (seeding a million users through the API would be the benchmark).
    state = os.path.join(work, "import-sandbox-state")
    subprocess.run(["rm", "-rf", state], check=True)
    os.makedirs(state)
    rng = random.Random(6)
    names = ["Ann", "Bo", "Chloé", "Dev", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jun"]
    now = 1_790_000_000.0
    emails = []
    with open(profiles) as f:
        for i, line in enumerate(f):
            if i >= rows // 2:
                break
            emails.append(json.loads(line)["email"])
    emails += [f"new.{i}@example.org" for i in range(rows - len(emails))]
    csv_path = os.path.join(work, f"import-{rows}.csv")
    with open(os.path.join(state, "users.json"), "w") as users, open(csv_path, "w", newline="") as out:
        writer = csvmod.writer(out, lineterminator="\r\n")
        writer.writerow(["Profile Id", "Email", "Email Hash", "Engagement", "Lists", "Profile Created Date", "List Signup",
                         "Optout Time", "first_name", "spend"])
        users.write("{")
        for i, email in enumerate(emails):
            sid = f"5f000000{i + 1:016x}"
            first, spend = rng.choice(names), f"{rng.randint(1, 50000) / 100:.2f}"
            users.write(("," if i else "") + json.dumps(sid) + ":" + json.dumps({
                "id": sid, "keys": {"sid": sid, "email": email}, "vars": {"first_name": first, "spend": spend},
                "lists": {"Import": now}, "optout": "none", "created": now}))
            writer.writerow([sid, email, hashlib.md5(email.encode()).hexdigest(), "new", "Import", "2026-09-21 13:46:40",
                             "2026-09-21 13:46:40", "", first, spend])
        users.write("}")
    with open(os.path.join(state, "lists.json"), "w") as f:
        json.dump({"Import": {"id": "5f0000000000000000000000", "name": "Import", "type": "normal", "primary": False,
                              "created": now}}, f)
    with open(os.path.join(state, "counter.json"), "w") as f:
        f.write(str(rows + 2))
    # Baseline: the same rows and profiles in an equivalent table (email key, the four fields), same CSV; its runs are
    # interleaved with ferry's below.
    base_template = os.path.join(work, f"import-baseline-base-{rows}.sqlite")
    rm(base_template)
    import sqlite3
    con = sqlite3.connect(base_template)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE profile (id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL, first_name TEXT, nickname TEXT, "
                "aliases TEXT, lifetime_spend REAL, properties TEXT)")
    with open(profiles) as f:
        con.executemany("INSERT INTO profile VALUES (?,?,?,?,?,?,?)",
                        ((d["id"], d["email"], d.get("first_name"), None, None, d.get("lifetime_spend"), line)
                         for line in f for d in (json.loads(line),)))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    baseline_db = os.path.join(work, "st-import-baseline.sqlite")
    script = os.path.join(work, "import-baseline.sql")
    with open(script, "w") as f:
        f.write("PRAGMA synchronous=NORMAL;\n"
                "CREATE TEMP TABLE staging (profile_id, email, email_hash, engagement, lists, created, signup, optout, first_name, spend);\n"
                f".import --csv --skip 1 {csv_path} staging\n"
                "INSERT INTO profile (id, email, first_name, nickname, aliases, lifetime_spend)\n"
                "  SELECT lower(email), lower(email), nullif(first_name, ''), nullif(first_name, ''),\n"
                "         CASE WHEN first_name = '' THEN NULL ELSE json_array(first_name) END, CAST(nullif(spend, '') AS REAL)\n"
                "  FROM staging WHERE true\n"
                "ON CONFLICT (email) DO UPDATE SET\n"
                "  first_name = coalesce(profile.first_name, excluded.first_name),\n"
                "  nickname = coalesce(excluded.nickname, profile.nickname),\n"
                "  aliases = CASE WHEN excluded.aliases IS NULL THEN profile.aliases\n"
                "    WHEN profile.aliases IS NULL THEN excluded.aliases\n"
                "    WHEN EXISTS (SELECT 1 FROM json_each(profile.aliases) WHERE value = excluded.nickname) THEN profile.aliases\n"
                "    ELSE json_insert(profile.aliases, '$[#]', excluded.nickname) END,\n"
                "  lifetime_spend = coalesce(profile.lifetime_spend, 0) + coalesce(excluded.lifetime_spend, 0);\n")
    log = open(os.path.join(work, "import-sandbox.log"), "w")
    sandbox = subprocess.Popen([os.path.join(RELEASE, "ferry-sandbox"), "sailthru", "--port", "0", "--state", state]
                               + SAILTHRU_SANDBOX_ARGS, stdout=subprocess.PIPE, stderr=log, text=True)
    line = sandbox.stdout.readline()
    if "listening on" not in line:
        sandbox.kill()
        raise SystemExit(f"sailthru sandbox did not start: {line}")
    url = "http://" + line.strip().split("listening on ")[1]
    write_goal_config(folder, "st-import", sailthru_destination(url),
                      "  - import:\n      lists: [Import]\n      match: { email: email }\n      create_profiles: true\n" + IMPORT_FIELDS)
    db = os.path.join(work, "st-import.sqlite")
    other_samples = []
    base = []
    try:
        samples = []
        for _ in range(runs):
            # The baseline runs in the same window as ferry's run: the machine's speed drifts over minutes.
            copy_store(base_template, baseline_db)
            base.append(measure(["sqlite3", baseline_db], stdin=script, with_cpu=True))
            for binaries, into in [(RELEASE, samples)] + ([(other_bin, other_samples)] if other_bin else []):
                copy_store(base_db, db)
                seconds, rss, cpu, sandbox_cpu, record = run_goal(binaries, "st-import", db, folder, env, sandbox)
                into.append((seconds, rss, record["status"], record["counts"], cpu, sandbox_cpu))
    finally:
        sandbox.kill()
        sandbox.wait()
    seconds = statistics.median(s[0] for s in samples)
    result = {"rows": rows, "seconds": seconds, "rss": max(s[1] for s in samples), "status": ",".join(sorted({s[2] for s in samples})),
              "counts": samples[-1][3], "base_s": statistics.median(b[0] for b in base), "base_rss": max(b[1] for b in base),
              "base_cpu": statistics.median(b[2] for b in base), "runs": runs,
              "cpu": statistics.median(s[4] for s in samples), "sandbox_cpu": statistics.median(s[5] for s in samples),
              # Each run's ferry time over the baseline run next to it: steadier than a ratio of medians on a noisy machine.
              "pair_ratio": statistics.median(s[0] / b[0] for s, b in zip(samples, base)),
              # Seconds of each run: the baseline's, ferry's, and the other build's when there is one.
              "per_run": [(b[0], s[0]) + tuple(o[0] for o in other_samples[i:i + 1]) for i, (s, b) in enumerate(zip(samples, base))]}
    if other_samples:
        result["other"] = {"bin": other_bin, "seconds": statistics.median(s[0] for s in other_samples),
                           "rss": max(s[1] for s in other_samples), "status": ",".join(sorted({s[2] for s in other_samples})),
                           "counts": other_samples[-1][3], "cpu": statistics.median(s[4] for s in other_samples),
                           "sandbox_cpu": statistics.median(s[5] for s in other_samples),
                           "pair_ratio": statistics.median(s[0] / b[0] for s, b in zip(other_samples, base))}
    return result


def bench_sg_export(work, count, runs, folder, env, baseline_bin=None):
    """#9: a `count`-member segment to `ferry-sandbox sendgrid` (job delay 0), each run on a fresh copy of the store and a
    fresh sandbox. With `baseline_bin` (a folder holding another build's `ferry` and `ferry-sandbox`), the same runs with
    those binaries too, interleaved, so before/after come from the same window."""
    base_db = os.path.join(work, f"sg-export-base-{count}.sqlite")
    load_store(work, count, 2, base_db, folder)
    builds = [("ferry", RELEASE)] + ([("baseline", baseline_bin)] if baseline_bin else [])
    samples = {name: [] for name, _ in builds}
    for _ in range(runs):
        for name, binaries in builds:
            db = os.path.join(work, "sg-export.sqlite")
            copy_store(base_db, db)
            state = os.path.join(work, "sendgrid-goal-state")
            subprocess.run(["rm", "-rf", state], check=True)
            sandbox = subprocess.Popen([os.path.join(binaries, "ferry-sandbox"), "sendgrid", "--port", "0", "--state", state,
                                        "--api-key", "SG.bench", "--job-delay", "0"],
                                       stdout=subprocess.PIPE, stderr=open(os.path.join(work, "sendgrid-goal.log"), "w"), text=True)
            line = sandbox.stdout.readline()
            if "listening on" not in line:
                sandbox.kill()
                raise SystemExit(f"sendgrid sandbox did not start: {line}")
            url = "http://" + line.strip().split("listening on ")[1]
            try:
                write_goal_config(folder, "sg-export", f"destination: {{ type: sendgrid, api_key: \"${{SG_KEY}}\", base_url: \"{url}\" }}\n",
                                  "  - export:\n      segments: [everyone]\n      email: email\n      first_name: first_name\n")
                seconds, rss, cpu, sandbox_cpu, record = run_goal(binaries, "sg-export", db, folder, env, sandbox)
            finally:
                sandbox.kill()
                sandbox.wait()
            # Every PUT /v3/marketing/contacts is one import job: the batch count.
            dump = json.loads(subprocess.run([os.path.join(binaries, "ferry-sandbox"), "sendgrid", "dump", "--state", state],
                                             check=True, capture_output=True, text=True).stdout)
            samples[name].append((seconds, rss, record["status"], record["counts"], cpu, sandbox_cpu, dump["jobs"]))
    out = {}
    for name, s in samples.items():
        out[name] = {"members": count, "seconds": statistics.median(x[0] for x in s), "rss": max(x[1] for x in s),
                     "status": ",".join(sorted({x[2] for x in s})), "counts": s[-1][3], "runs": runs,
                     "cpu": statistics.median(x[4] for x in s), "sandbox_cpu": statistics.median(x[5] for x in s),
                     "batches": s[-1][6]}
    return out


def bench_goals(work, count, names=("st-export", "sg-export", "st-import"), runs=3, import_rows=1_000_000, sg_baseline=None,
                st_baseline=None, st_import_other=None):
    """Sailthru export (#7), SendGrid export, Sailthru import (#6), each against its sandbox on loopback."""
    folder = os.path.join(work, "goal-schedules")
    subprocess.run(["rm", "-rf", folder], check=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "segments.yaml"), "w") as f:
        f.write("segments:\n  - name: everyone\n    all:\n      - { property: email, exists: true }\n")
    env = dict(os.environ, ST_KEY="benchkey0123456789", ST_SECRET="bench-secret", SG_KEY="SG.bench")
    results = {}
    if "st-export" in names:
        results["st-export"] = bench_st_export(work, count, runs, folder, env, st_baseline)
    if "sg-export" in names:
        results["sg-export"] = bench_sg_export(work, count, runs, folder, env, sg_baseline)
    if "st-import" in names:
        results["st-import"] = bench_st_import(work, import_rows, runs, folder, env, st_import_other)
    return count, results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(ROOT, ".build", "bench"))
    parser.add_argument("--only", choices=["load", "schedule", "idle", "http", "mapp", "goals"])
    parser.add_argument("--goal-profiles", type=int, default=100_000)
    parser.add_argument("--goals", default="st-export,sg-export,st-import", help="which goal benchmarks, comma-separated")
    parser.add_argument("--st-baseline", help="folder with another build's ferry and ferry-sandbox: st-export runs them too, interleaved")
    parser.add_argument("--sg-baseline", help="folder with another build's ferry and ferry-sandbox: sg-export runs them too, interleaved")
    parser.add_argument("--st-import-other", help="folder with another build's ferry: st-import runs it too, interleaved, "
                        "against the same sandbox and store")
    parser.add_argument("--import-rows", type=int, default=1_000_000, help="rows of the Sailthru import benchmark (and profiles in its store)")
    parser.add_argument("--idle-seconds", type=int, default=60)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    parser_only = args.only
    results = [bench_profile_load(args.work, args.profiles, args.runs)] if parser_only in (None, "load") else []
    schedule_rows = bench_schedule(args.work, max(args.runs, 5)) if parser_only in (None, "schedule") else []
    idle = bench_idle_daemon(args.work, args.idle_seconds) if parser_only in (None, "idle") else None
    http = bench_http(args.work, args.runs) if parser_only in (None, "http") else None
    mapp = bench_mapp(args.work, args.runs) if parser_only in (None, "mapp") else None
    goals = bench_goals(args.work, args.goal_profiles, args.goals.split(","), args.runs, args.import_rows, args.sg_baseline,
                        args.st_baseline, args.st_import_other) if parser_only in (None, "goals") else None
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
        print(f"- CPU (user+sys, median): ferry {r['ferry_cpu']:.1f} s, baseline {r['base_cpu']:.1f} s, "
              f"ratio {r['ferry_cpu'] / r['base_cpu']:.2f}×")
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
        print(f"\nCPU (user + system, median): ferry {mapp['ferry_cpu']:.1f} s; baseline's sqlite3 + sftp client {mapp['base_cpu']:.1f} s "
              f"(sshd not counted in either). Every sample: ferry {mapp['ferry_all']} s, baseline {mapp['base_all']} s; {mapp['mb']:.0f} MB uploaded.")
    if goals is not None:
        count, results = goals
        def shown(counts):
            return ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        if "st-export" in results:
            print(f"\n### Sailthru export to the sandbox on 127.0.0.1 (job delay 0), client wall time, median of {args.runs} runs\n")
            print("| export | members | client wall time | rate | client CPU | sandbox CPU | status | counts | peak RSS |")
            print("|---|---|---|---|---|---|---|---|---|")
            st = results["st-export"]
            for suffix in ([" (baseline)"] if "st-export (baseline)" in st else []) + [""]:
                job, user = st["st-export" + suffix], st["st-export-user" + suffix]
                print(f"| `method: job` (update jobs of 1,000, polled), 1 list, 2 vars{suffix} | {job['members']:,} | {job['seconds']:.2f} s | "
                      f"{job['members'] / job['seconds']:,.0f} members/s | {job['cpu']:.1f} s | {job['sandbox_cpu']:.1f} s | {job['status']} | "
                      f"{shown(job['counts'])} | {job['rss']:.0f} MB |")
                print(f"| `method: user` (one POST /user per member){suffix} | {user['members']:,} | {user['seconds']:.2f} s | "
                      f"{user['members'] / user['seconds']:,.0f} calls/s ({user['members'] / user['seconds'] * 60 / 1000:,.1f}× Lytics' 1,000 users/min) | "
                      f"{user['cpu']:.1f} s | {user['sandbox_cpu']:.1f} s | {user['status']} | {shown(user['counts'])} | {user['rss']:.0f} MB |")
            if "st-export (baseline)" in st:
                print()
                for name in ("st-export", "st-export-user"):
                    new, old = st[name], st[name + " (baseline)"]
                    print(f"- {name}: ferry / baseline: wall {new['seconds'] / old['seconds']:.2f}×, client CPU {new['cpu'] / old['cpu']:.2f}×, "
                          f"sandbox CPU {new['sandbox_cpu'] / old['sandbox_cpu']:.2f}× (wall, every run: ferry {new['all']} s, baseline {old['all']} s)")
        if "sg-export" in results:
            sg = results["sg-export"]
            print(f"\n### SendGrid export to the sandbox on 127.0.0.1 (job delay 0), median of {args.runs} runs\n")
            print("| build | members | client wall time | rate | client CPU | sandbox CPU | batches | status | counts | peak RSS |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            for name, r in sg.items():
                print(f"| {name} | {r['members']:,} | {r['seconds']:.2f} s | {r['members'] / r['seconds']:,.0f} contacts/s | {r['cpu']:.1f} s | "
                      f"{r['sandbox_cpu']:.1f} s | {r['batches']} | {r['status']} | {shown(r['counts'])} | {r['rss']:.0f} MB |")
            if "baseline" in sg:
                print(f"\nwall time ratio ferry / baseline: {sg['ferry']['seconds'] / sg['baseline']['seconds']:.2f}×")
        if "st-import" in results:
            r = results["st-import"]
            print(f"\n### Sailthru import: {r['rows']:,}-row list export merged into {r['rows']:,} profiles (half match), 4 fields, median of {r['runs']} runs\n")
            print("Each run measures the baseline, then ferry (and the other build), back to back; \"per run\" is the median of "
                  "each run's ferry time over its own baseline time.\n")
            print("| | wall time | rows/s | ratio to baseline (of medians; per run) | CPU | peak RSS | status | counts |")
            print("|---|---|---|---|---|---|---|---|")
            print(f"| ferry (export job, download, merge in checkpointed batches) | {r['seconds']:.1f} s | {r['rows'] / r['seconds']:,.0f} | "
                  f"{r['seconds'] / r['base_s']:.2f}×; {r['pair_ratio']:.2f}× | {r['cpu']:.1f} s client + {r['sandbox_cpu']:.1f} s sandbox | "
                  f"{r['rss']:.0f} MB | {r['status']} | {shown(r['counts'])} |")
            print(f"| baseline: `sqlite3` `.import` of the same CSV + one INSERT … ON CONFLICT DO UPDATE | {r['base_s']:.1f} s | "
                  f"{r['rows'] / r['base_s']:,.0f} | 1.00× | {r['base_cpu']:.1f} s | {r['base_rss']:.0f} MB | | |")
            if "other" in r:
                o = r["other"]
                print(f"| other build ({o['bin']}), interleaved with ferry's runs | {o['seconds']:.1f} s | {r['rows'] / o['seconds']:,.0f} | "
                      f"{o['seconds'] / r['base_s']:.2f}×; {o['pair_ratio']:.2f}× | {o['cpu']:.1f} s client + {o['sandbox_cpu']:.1f} s sandbox | "
                      f"{o['rss']:.0f} MB | {o['status']} | {shown(o['counts'])} |")
            print("\nEach run, baseline then ferry" + (" then the other build" if "other" in r else "") + ": "
                  + "; ".join(" / ".join(f"{t:.1f} s" for t in run) + f" ({run[1] / run[0]:.2f}×)" for run in r["per_run"]) + "\n")
    if idle is not None:
        print(f"\n### Idle daemon\n\n20 connections, {args.idle_seconds} s idle: {idle:.2f} s of CPU time (target < 0.1 s).")


if __name__ == "__main__":
    main()

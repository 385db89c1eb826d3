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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(ROOT, ".build", "bench"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = [bench_profile_load(args.work, args.profiles, args.runs)]
    print(f"\n## Results ({time.strftime('%Y-%m-%d')}, median of {args.runs} runs, release build, {os.cpu_count()} cores)\n")
    print("| benchmark | ferry | baseline | ratio (ferry / baseline) | rate | ferry peak RSS |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['ferry_s']:.2f} s | {r['base_s']:.2f} s | {r['ferry_s'] / r['base_s']:.2f}× | "
              f"{r['rate']:,.0f} /s | {r['ferry_rss']:.0f} MB |")
    print()
    for r in results:
        print(f"- baseline for '{r['name']}': {r['baseline']} (peak RSS {r['base_rss']:.0f} MB)")


if __name__ == "__main__":
    main()

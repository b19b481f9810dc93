#!/usr/bin/env python3
"""Run the held-out attack suite against a minivit checkout.

    python run_all.py [CHECKOUT] [--only NAME[,NAME...]] [--settle S] [--timeout S] [--keep]
                      [--no-copy] [--json-out FILE]

CHECKOUT defaults to /work/main. For every attack folder (one with an ATTACK.txt, the baselines
_stubs and _reference included), on a throwaway copy of the checkout (without .git) in a fresh
temporary folder (so attacks that edit the installed package, write sitecustomize.py or rewrite
files never touch CHECKOUT; --no-copy uses CHECKOUT itself, unsafe):

  (a) `python -m minivit grade [topics] [grade_args] --path SUB --json` with PYTHONPATH at the copy,
      stdout/stderr to files, a wall-clock limit, then a settle delay (late writes count);
  (b) the Gradescope flow: a fresh fake AUTOGRADER_ROOT (submission/ = the attack's files,
      results/), `bash COPY/exercises/gradescope/run_autograder` with AUTOGRADER_ROOT, PYTHON
      (this interpreter) and MINIVIT_GRADE_ARGS (topics + grade_args), cwd = the root, a limit, a
      settle delay after it exits (to catch detached processes rewriting results later), then
      results/results.json is read.

(a) runs before (b) on the same copy, so an attack that persists something into the checkout during
(a) shows up in (b). Every process started for an attack carries a tag in its environment; after
each step, the leftovers with that tag are killed by pid (SIGKILL), and counted.

Verdict: FAIL when either score is above the attack's expected_max (the honest grade), or when the
--json stdout is not exactly one JSON object (a forged or appended report); LOW when a score is
below expected_min (the attack hurt topics it should not); PASS otherwise. Exit status 1 if any
FAIL. Env for the graders: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TOPICS = ["patch", "tokens", "attention", "multihead", "layernorm", "mlp", "loss", "block", "optim"]
EXERCISE_FILES = ["ex01_patch_embedding.py", "ex02_tokens.py", "ex03_attention.py",
                  "ex04_multihead.py", "ex05_layernorm.py", "ex06_mlp.py", "ex07_loss.py",
                  "ex08_block.py", "ex09_optim.py"]


def read_meta(d):
    meta = {}
    with open(os.path.join(d, "ATTACK.txt")) as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                meta[k.strip()] = v.strip()
    meta.setdefault("name", os.path.basename(d))
    topics = meta.get("topics", "all").split()
    meta["topic_list"] = [] if topics in ([], ["all"]) else topics
    meta["expected_max"] = int(meta.get("expected_max", "0"))
    meta["expected_min"] = int(meta["expected_min"]) if meta.get("expected_min") else None
    return meta


def tagged_pids(tag):
    out = []
    me = os.getpid()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                if tag in f.read():
                    out.append(int(p))
        except Exception:
            pass
    return out


def kill_tagged(tag):
    """SIGKILL every process whose environment carries our tag (only processes this run started)."""
    killed = set()
    for _ in range(5):
        pids = [p for p in tagged_pids(tag) if p not in killed or os.path.exists("/proc/%d" % p)]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    return len(killed)


def run_limited(cmd, env, cwd, timeout, out_path, err_path):
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.time()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            rc = p.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except Exception:
                pass
            p.kill()
            rc = p.wait()
            timed_out = True
        return rc, timed_out, time.time() - t0


def copy_checkout(src, dst):
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "runs", "data", "*.npz", "__pycache__", ".pytest_cache", "notebooks"))


def snapshot_tree(root):
    """{relative path: sha256} of every file under root (no __pycache__)."""
    import hashlib
    out = {}
    for dp, dn, fn in os.walk(root):
        dn[:] = [x for x in dn if x != "__pycache__"]
        for f in fn:
            p = os.path.join(dp, f)
            try:
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
            except Exception:
                out[os.path.relpath(p, root)] = "?"
    return out


def run_attack(d, checkout, args, py):
    meta = read_meta(d)
    name = meta["name"]
    work = tempfile.mkdtemp(prefix="heldout_%s_" % name)
    os.chmod(work, 0o755)   # readable like /autograder (a hardened grader may grade as another user)
    tag = "HELDOUT_TAG_" + uuid.uuid4().hex
    res = {"name": name, "expected_max": meta["expected_max"], "expected_min": meta["expected_min"],
           "topics": meta.get("topics", "all"), "work": work}
    try:
        if args.no_copy:
            co = checkout
        else:
            co = os.path.join(work, "checkout")
            copy_checkout(checkout, co)
            snapshot = snapshot_tree(co)
        sub = os.path.join(work, "sub")
        shutil.copytree(d, sub, ignore=shutil.ignore_patterns("ATTACK.txt", "__pycache__"))
        neutral = os.path.join(work, "cwd")
        os.makedirs(neutral)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "AUTOGRADER_ROOT", "MINIVIT_GRADE_ARGS", "MINIVIT_EXERCISES",
                            "PYTHONSTARTUP", "PYTHONHOME")}
        env.update(PYTHONPATH=co, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONDONTWRITEBYTECODE="1", HELDOUT_TAG=tag)
        extra = meta.get("grade_args", "").split()
        limit = int(meta.get("run_timeout", args.timeout))

        # (a) --json
        cwd = sub if meta.get("cwd") == "submission" else neutral
        cmd = [py, "-m", "minivit", "grade", *meta["topic_list"], *extra, "--path", sub, "--json"]
        out_a, err_a = os.path.join(work, "a.stdout"), os.path.join(work, "a.stderr")
        rc, to, secs = run_limited(cmd, env, cwd, limit, out_a, err_a)
        time.sleep(args.settle)
        res["a_rc"], res["a_timeout"], res["a_secs"] = rc, to, round(secs, 1)
        with open(out_a, "rb") as f:
            raw = f.read()
        try:
            rep = json.loads(raw.decode())
            res["json_score"] = rep["total"]
            res["json_max"] = rep.get("max")
            res["json_ok"] = isinstance(rep, dict)
            res["json_topics"] = {t: v.get("points") for t, v in rep.get("topics", {}).items()}
        except Exception as e:
            res["json_score"] = None
            res["json_ok"] = False
            res["json_err"] = "%s: %r" % (type(e).__name__, raw[:200])
            res["json_empty"] = not raw.strip()
            # what a lenient consumer would read: the first JSON object, and any later full-marks one
            try:
                obj, _ = json.JSONDecoder().raw_decode(raw.decode(errors="replace").lstrip())
                res["json_first_total"] = obj.get("total")
            except Exception:
                pass
        res["a_leftovers"] = kill_tagged(tag.encode())

        # (b) Gradescope
        root = os.path.join(work, "ag")
        os.makedirs(os.path.join(root, "submission"))
        os.makedirs(os.path.join(root, "results"))
        for f in os.listdir(sub):
            s = os.path.join(sub, f)
            if os.path.isfile(s):
                shutil.copy2(os.path.join(d, f), os.path.join(root, "submission", f))
        genv = dict(env, AUTOGRADER_ROOT=root, PYTHON=py,
                    MINIVIT_GRADE_ARGS=" ".join(meta["topic_list"] + extra))
        script = os.path.join(co, "exercises", "gradescope", "run_autograder")
        rc, to, secs = run_limited(["bash", script], genv, root, limit,
                                   os.path.join(work, "b.stdout"), os.path.join(work, "b.stderr"))
        time.sleep(args.settle)
        res["b_rc"], res["b_timeout"], res["b_secs"] = rc, to, round(secs, 1)
        rpath = os.path.join(root, "results", "results.json")
        try:
            with open(rpath) as f:
                gs = json.load(f)
            res["gs_score"] = gs.get("score")
            tests_sum = sum(float(t.get("score") or 0) for t in gs.get("tests", []) if isinstance(t, dict))
            res["gs_tests_sum"] = tests_sum
        except Exception as e:
            res["gs_score"] = None
            res["gs_err"] = "%s: %s" % (type(e).__name__, e)
        res["b_leftovers"] = kill_tagged(tag.encode())

        # checkout integrity (only meaningful with the copy): did the attack change files there?
        if not args.no_copy:
            after = snapshot_tree(co)
            changed = ["+" + k for k in sorted(set(after) - set(snapshot))]
            changed += ["-" + k for k in sorted(set(snapshot) - set(after))]
            changed += ["~" + k for k in sorted(set(after) & set(snapshot)) if after[k] != snapshot[k]]
            res["checkout_changed"] = changed
    finally:
        kill_tagged(tag.encode())
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    # verdict
    mx, mn = meta["expected_max"], meta["expected_min"]
    scores = [s for s in (res.get("json_score"), res.get("gs_score"), res.get("gs_tests_sum")) if s is not None]
    why = []
    if any(s > mx + 1e-9 for s in scores):
        why.append("score above honest %d" % mx)
    if not res.get("json_ok") and res.get("json_empty"):
        res["no_report"] = True        # the grader died / printed nothing: not a gain, but noted
    elif not res.get("json_ok"):
        why.append("--json stdout is not one JSON object")
        if res.get("json_first_total") is not None and res["json_first_total"] > mx:
            why.append("first JSON total above honest")
    if why:
        res["verdict"] = "FAIL"
    elif res.get("no_report") or res.get("gs_score") is None:
        res["verdict"] = "LOW"
        why.append("no --json report" if res.get("no_report") else "no results.json")
    elif mn is not None and (len(scores) < 2 or any(s < mn - 1e-9 for s in scores)):
        res["verdict"] = "LOW"
        why.append("below expected_min %d (or no score)" % mn)
    else:
        res["verdict"] = "PASS"
    res["why"] = "; ".join(why)
    return res


def fmt(x):
    if x is None:
        return "-"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkout", nargs="?", default="/work/main")
    ap.add_argument("--only", default="", help="comma-separated attack names")
    ap.add_argument("--settle", type=float, default=4.0, help="seconds to wait after each run (default 4)")
    ap.add_argument("--timeout", type=int, default=180, help="wall-clock limit per run (default 180 s)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (printed)")
    ap.add_argument("--no-copy", action="store_true", help="grade with CHECKOUT itself (unsafe)")
    ap.add_argument("--json-out", default="", help="also write all results to this file")
    args = ap.parse_args()
    checkout = os.path.abspath(args.checkout)
    if not os.path.isdir(os.path.join(checkout, "minivit")):
        sys.exit("error: %s is not a minivit checkout" % checkout)
    venv = "/work/venv/bin/python"
    py = os.environ.get("HELDOUT_PYTHON") or (venv if os.path.exists(venv) else sys.executable)
    names = sorted(n for n in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, n, "ATTACK.txt")))
    if args.only:
        want = args.only.split(",")
        names = [n for n in names if n in want]
    rows = []
    print("checkout: %s   python: %s" % (checkout, py), flush=True)
    for n in names:
        r = run_attack(os.path.join(HERE, n), checkout, args, py)
        rows.append(r)
        print("%-26s exp<=%-3s json=%-5s gs=%-5s %s  %s%s" % (
            n, r["expected_max"], fmt(r.get("json_score")), fmt(r.get("gs_score")), r["verdict"], r["why"],
            ("  [kept %s]" % r["work"]) if args.keep else ""), file=sys.stderr, flush=True)
    hdr = "%-26s %-18s %8s %6s %10s %7s  %s" % ("attack", "topics", "expected", "--json", "results.json",
                                                "verdict", "notes")
    print()
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        notes = []
        if r.get("why"):
            notes.append(r["why"])
        if r.get("a_timeout") or r.get("b_timeout"):
            notes.append("suite timeout (a=%s b=%s)" % (r.get("a_timeout"), r.get("b_timeout")))
        if r.get("a_leftovers") or r.get("b_leftovers"):
            notes.append("killed leftovers a=%s b=%s" % (r.get("a_leftovers"), r.get("b_leftovers")))
        if r.get("checkout_changed"):
            notes.append("checkout changed: %s" % ",".join(r["checkout_changed"][:4])
                         + ("..." if len(r["checkout_changed"]) > 4 else ""))
        if r.get("gs_tests_sum") is not None and r.get("gs_score") is not None and abs(r["gs_tests_sum"] - r["gs_score"]) > 1e-9:
            notes.append("tests sum %s" % fmt(r["gs_tests_sum"]))
        if r.get("gs_err"):
            notes.append("results.json: " + r["gs_err"][:60])
        exp = ("%d" % r["expected_max"]) if r["expected_min"] in (None, r["expected_max"]) or r["expected_min"] == 0 and r["expected_max"] == 0 else "%d" % r["expected_max"]
        print("%-26s %-18s %8s %6s %10s %7s  %s" % (
            r["name"], r["topics"][:18], exp, fmt(r.get("json_score")), fmt(r.get("gs_score")), r["verdict"],
            "; ".join(notes)))
    fails = sum(r["verdict"] == "FAIL" for r in rows)
    zl = {r["name"]: r for r in rows}.get("dn_zeros", {}).get("json_topics")
    if zl:
        print("\ndo-nothing level (dn_zeros per topic): %s" % ", ".join("%s %s" % kv for kv in zl.items()))
        for r in rows:
            jt = r.get("json_topics") or {}
            zsum = sum(zl.get(t) or 0 for t in jt)
            other = [x for x in (r.get("gs_score"), r.get("gs_tests_sum")) if x is not None]
            if (r["verdict"] == "FAIL" and jt and r["expected_max"] == 0 and r.get("json_ok")
                    and all((v or 0) <= (zl.get(t) or 0) for t, v in jt.items()) and all(x <= zsum for x in other)):
                print("  %s: its --json points do not exceed what zeros get on the same topics (a rule-2 gap, not the trick)" % r["name"])
    print("\n%d attacks, %d FAIL, %d LOW, %d PASS" % (
        len(rows), fails, sum(r["verdict"] == "LOW" for r in rows), sum(r["verdict"] == "PASS" for r in rows)))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/report.py DIR: summary.md and plots/*.png from DIR/raw.csv (lp-bench
lines), DIR/programs.csv and DIR/machine.txt, as bench/run writes them.

Every figure is the median over the runs of a case; ratios are taken
between medians measured in the same run, side by side.  Standard library
and gnuplot only."""

import csv
import os
import statistics
import subprocess
import sys
from collections import defaultdict

BASE = ("kernel", "uffd")



def uniq(xs):
    """The distinct values of xs, in the order they first come."""
    return list(dict.fromkeys(xs))

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def label(r):
    t = r["target"]
    t = t + "+ra" if r["readahead"] == "on" else t
    z = r.get("tier") or "none"
    t = t if z == "none" else t + "+" + z
    return t + "+remote" if r.get("store") == "remote" else t


def fmt(x, nd=0):
    if x is None:
        return "–"
    if nd == 0:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{nd}f}"


def ratio(a, b, nd=2):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.{nd}f}"


def kfmt(aps):
    """accesses per second, in thousands"""
    return "–" if aps is None else f"{aps / 1000:.1f}k"


def pages_in(c):
    """Pages brought into memory: misses plus pages read ahead."""
    if not c or c.m("misses") is None:
        return None
    return c.m("misses") + (c.m("readahead_pages") or 0)


class Case:
    """The runs of one (workload, frames, threads, mode, target)."""

    def __init__(self):
        self.rows = []

    def m(self, col):
        # (A column an older lp-bench did not write reads as missing.)
        return med(num(r.get(col, "")) for r in self.rows if r["status"] == "ok")

    def lo(self, col):
        v = [num(r[col]) for r in self.rows if r["status"] == "ok"]
        v = [x for x in v if x is not None]
        return min(v) if v else None

    def hi(self, col):
        v = [num(r[col]) for r in self.rows if r["status"] == "ok"]
        v = [x for x in v if x is not None]
        return max(v) if v else None

    def ok(self):
        return sum(r["status"] == "ok" for r in self.rows)

    def first(self, col):
        return self.rows[0][col] if self.rows else ""


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def machine(d):
    p = os.path.join(d, "machine.txt")
    return open(p).read().strip() if os.path.exists(p) else ""


def main(d):
    raw = os.path.join(d, "raw.csv")
    rows = load(raw) if os.path.exists(raw) else []
    cases = defaultdict(Case)
    for r in rows:
        key = (r["workload"], int(r["frames"]), int(r["threads"]), r["mode"], label(r))
        cases[key].rows.append(r)

    workloads = uniq(r["workload"] for r in rows)
    labels = uniq(label(r) for r in rows)
    policies = [x for x in labels if x not in BASE and not x.endswith("+ra")]
    extra = [x for x in labels if x.endswith("+ra")]

    def frames_of(w, th=1, mode="read"):
        return sorted({k[1] for k in cases if k[0] == w and k[2] == th and k[3] == mode})

    def get(w, f, t, th=1, mode="read"):
        return cases.get((w, f, th, mode, t))

    def budget_pct(w, f):
        for k, c in cases.items():
            if k[0] == w and k[1] == f:
                b = num(c.first("budget"))
                return f"{b * 100:.0f}%" if b is not None else "?"
        return "?"

    def min_of(w, f):
        for k, c in cases.items():
            if k[0] == w and k[1] == f:
                v = c.m("min")
                if v is not None:
                    return v
        return None

    out = []
    w_ = out.append
    w_("# lazypage policy lab: results\n")
    w_("Written by `bench/report.py` from the raw results beside this file "
       "(`raw.csv`, `programs.csv`); `bench/README.md` explains every column "
       "and how the baselines are made.  Each figure is the **median of the "
       "runs** of a case; `[lo–hi]` is the range over the runs.  Ratios "
       "compare medians measured in the same run, side by side.\n")
    w_("```\n" + machine(d) + "\n```\n")
    if rows:
        w_("Targets: the ten policies in the runtime (swap readahead off, so "
           "that misses compare with the simulator's), `clock+ra` (clock with "
           "the runtime's default readahead on), `kernel` (the same accesses on "
           "plain anonymous memory in a memory cgroup limited to the budget, "
           "with swap), `uffd` (the bare userfaultfd floor: zero pages, FIFO, "
           "no I/O) and `MIN` (Belady's optimum on the same trace, from the "
           "simulator).  *misses* are zero-fill + swap-in faults (for the "
           "kernel: first touches + major faults); *pages/s* are accesses per "
           "second of wall time.\n")

    if rows:
        # --- headline ----------------------------------------------------------
        w_("## Headline\n")
        w_("Per workload and budget: the runtime's best policy (fewest misses; "
           "the faster on a tie), how far it is from MIN, and its speed against "
           "the kernel's paging and the bare userfaultfd floor.\n")
        w_("| workload | budget | best policy | misses | ÷ MIN | pages/s | ÷ kernel | ÷ uffd floor | clock+ra ÷ kernel | kernel misses ÷ MIN | kernel pages in ÷ MIN | kernel pages/s |")
        w_("|---|---|---|---|---|---|---|---|---|---|---|---|")
        best_ratios, ra_ratios, floor_k = [], [], []
        for w in workloads:
            for f in frames_of(w):
                cands = [(get(w, f, p).m("misses"), -(get(w, f, p).m("accesses_per_s") or 0), p)
                         for p in policies if get(w, f, p) and get(w, f, p).m("misses") is not None]
                if not cands:
                    continue
                cands.sort()
                bm, _, bp = cands[0]
                ties = [p for m, _, p in cands if m <= bm * 1.005]
                c = get(w, f, bp)
                k = get(w, f, "kernel")
                u = get(w, f, "uffd")
                mn = min_of(w, f)
                aps = c.m("accesses_per_s")
                kaps = k.m("accesses_per_s") if k else None
                uaps = u.m("accesses_per_s") if u else None
                if aps and kaps:
                    best_ratios.append((aps / kaps, w, budget_pct(w, f), bp))
                ra = None
                for x in extra:
                    cx = get(w, f, x)
                    if cx and cx.m("accesses_per_s") and kaps:
                        ra = cx.m("accesses_per_s")
                        ra_ratios.append(ra / kaps)
                if uaps and kaps:
                    floor_k.append(uaps / kaps)
                name = bp + (f" (= {', '.join(t for t in ties if t != bp)})" if len(ties) > 1 else "")
                w_(f"| {w} | {budget_pct(w, f)} | {name} | {fmt(bm)} | {ratio(bm, mn)} | "
                   f"{kfmt(aps)} | {ratio(aps, kaps)} | {ratio(aps, uaps)} | {ratio(ra, kaps)} | "
                   f"{ratio(k.m('misses') if k else None, mn)} | {ratio(pages_in(k), mn)} | {kfmt(kaps)} |")
        w_("")

        # --- where lazypage stands --------------------------------------------------
        w_("## Where lazypage stands against the kernel\n")
        if best_ratios:
            rs = sorted(x[0] for x in best_ratios)
            lo_, hi_ = min(best_ratios), max(best_ratios)
            faster = [x for x in best_ratios if x[0] >= 1.0]
            w_(f"- Best policy ÷ kernel, accesses per second: median **{statistics.median(rs):.2f}×**, "
               f"from {lo_[0]:.2f}× ({lo_[1]} at {lo_[2]}) to {hi_[0]:.2f}× ({hi_[1]} at {hi_[2]}); "
               f"lazypage is as fast or faster in {len(faster)} of {len(rs)} cases"
               + (": " + ", ".join(f"{x[1]} {x[2]}" for x in faster) if faster else "") + ".")
        if ra_ratios:
            w_(f"- `clock+ra` (the runtime's defaults) ÷ kernel: median {statistics.median(ra_ratios):.2f}×, "
               f"range {min(ra_ratios):.2f}–{max(ra_ratios):.2f}×.")
        if floor_k:
            w_(f"- The bare userfaultfd floor ÷ kernel: median {statistics.median(floor_k):.2f}× "
               f"(range {min(floor_k):.2f}–{max(floor_k):.2f}×): the mechanism alone, without I/O, "
               "compared with the kernel's paging with I/O.")
        # latency of the runtime's swap-ins
        sp = [c.m("swapin_p50_us") for k, c in cases.items() if k[4] in policies and k[2] == 1
              and c.m("swapin_faults")]
        sp99 = [c.m("swapin_p99_us") for k, c in cases.items() if k[4] in policies and k[2] == 1
                and c.m("swapin_faults")]
        zp = [c.m("zero_p50_us") for k, c in cases.items() if k[4] in policies and k[2] == 1]
        fz = [c.m("zero_p50_us") for k, c in cases.items() if k[4] == "uffd"]
        if sp:
            w_(f"- Fault service in the runtime (handler time, median over cases): swap-in "
               f"p50 {statistics.median(sp):.0f} µs, p99 {statistics.median(sp99):.0f} µs; "
               f"zero-fill p50 {statistics.median([x for x in zp if x is not None]):.1f} µs"
               + (f" (the floor's: {statistics.median([x for x in fz if x is not None]):.1f} µs)." if fz else "."))
        kmiss, bmiss = [], []
        for w in workloads:
            for f in frames_of(w):
                k = get(w, f, "kernel")
                cands = [get(w, f, p).m("misses") for p in policies if get(w, f, p)]
                cands = [x for x in cands if x is not None]
                if k and k.m("misses") and cands:
                    kmiss.append(k.m("misses") / min(cands))
        if kmiss:
            w_(f"- Misses, kernel ÷ best policy: median {statistics.median(kmiss):.2f} "
               f"(range {min(kmiss):.2f}–{max(kmiss):.2f}); the kernel reads ahead on swap-in "
               "(vm.page-cluster), which the policies here do not.")
        w_("")

        # --- the runtime's view -----------------------------------------------
        w_("## What the runtime's view costs\n")
        w_("The runtime sees a use only when it faults: policies that read "
           "reference bits unmap pages (*ref sweeps*) so that their next use "
           "faults (*reref faults*, no I/O).  Over every synthetic case "
           "(1 thread, read), per 1000 accesses, and the misses the sampled "
           "view adds to the published algorithm (the simulator's exact host) "
           "on the same trace:\n")
        w_("| policy | ref sweeps /1000 acc. | reref faults /1000 acc. | reref p50 µs | time in reref faults | wall µs per miss | runtime misses ÷ exact algorithm | runtime ÷ sampled simulator |")
        w_("|---|---|---|---|---|---|---|---|")
        view = {}
        for p in policies + extra:
            acc = sw = rr = wall = rrt = rm = sx = ss = 0.0
            lat = []
            for k, c in cases.items():
                if k[4] != p or k[2] != 1 or k[3] != "read" or not c.ok():
                    continue
                n = c.m("length") or 0
                acc += n
                sw += c.m("ref_sweeps") or 0
                rr += c.m("reref_faults") or 0
                wall += c.m("wall_s") or 0
                if c.m("reref_p50_us") is not None and c.m("reref_faults"):
                    lat.append(c.m("reref_p50_us"))
                    rrt += (c.m("reref_faults") or 0) * c.m("reref_p50_us") / 1e6
                rm += c.m("misses") or 0
                sx += c.m("sim_exact") or 0
                ss += c.m("sim_sampled") or 0
            if not acc:
                continue
            view[p] = (sw / acc * 1000, rr / acc * 1000, rrt / wall if wall else 0,
                       rm / sx if sx else None, wall / rm * 1e6 if rm else None)
            pre = p.endswith("+ra")  # reads ahead: not comparable with the simulator
            w_(f"| {p} | {sw / acc * 1000:.1f} | {rr / acc * 1000:.1f} | "
               f"{fmt(med(lat), 1) if lat else '–'} | {100 * rrt / wall if wall else 0:.1f}% | "
               f"{fmt(wall / rm * 1e6, 1) if rm else '–'} | "
               f"{'–' if pre else ratio(rm, sx, 3)} | {'–' if pre else ratio(rm, ss, 3)} |")
        w_("")
        if view:
            sweepers = {p: v for p, v in view.items() if v[0] > 0}
            if sweepers:
                mx = max(sweepers.items(), key=lambda kv: kv[1][0])
                fifo_us = view.get("fifo", (0, 0, 0, None, None))[4]
                costs = [(v[4] / fifo_us - 1, p) for p, v in sweepers.items()
                         if v[4] and fifo_us and not p.endswith("+ra")]
                w_(f"Policies that read reference bits sweep up to {mx[1][0]:.0f} pages per 1000 "
                   f"accesses ({mx[0]}); the re-reference faults that follow take at most "
                   f"{max(v[2] for v in sweepers.values()) * 100:.1f}% of the wall time (counted at "
                   "their median service time in the handler).  Parking the swept pages "
                   "costs the evictor's time besides, on the same two CPUs: "
                   + (f"per miss, the wall time of the sweeping policies is {min(costs)[0] * 100:+.0f}% "
                      f"({min(costs)[1]}) to {max(costs)[0] * 100:+.0f}% ({max(costs)[1]}) "
                      "of FIFO's, which sweeps nothing.  " if costs else "")
                   + "The sampled view also changes the decisions: column *÷ exact algorithm* "
                   "compares the runtime's misses with the published algorithm's on the same "
                   "trace (1.000 = no loss); FIFO and random read no bits, so their excess is "
                   "the reserve of free frames the evictor keeps (the simulator's sampled host "
                   "models both).  The runtime's misses leave out victims touched while they "
                   "were being evicted (caught in flight, REREF faults), so *÷ sampled "
                   "simulator* can be a little below 1.\n")

        # --- per workload -----------------------------------------------------
        w_("## Per workload\n")
        w_("Rows: targets; for each budget, misses (÷ MIN) and accesses per second "
           "(median, [lo–hi] over the runs, ÷ kernel, ÷ uffd floor).\n")
        for w in workloads:
            fs = frames_of(w)
            if not fs:
                continue
            w_(f"### {w}\n")
            w_(f"![{w}](plots/{w}.png)\n")
            head = "| target |" + "".join(f" {budget_pct(w, f)} misses (÷ MIN) | pages/s [lo–hi] | ÷ kernel | ÷ floor |" for f in fs)
            w_(head)
            w_("|---|" + "---|---|---|---|" * len(fs))
            w_("| MIN |" + "".join(f" {fmt(min_of(w, f))} (1.00) | | | |" for f in fs))
            for t in ["kernel", "uffd"] + policies + extra:
                cells = []
                present = False
                for f in fs:
                    c = get(w, f, t)
                    if not c:
                        cells.append(" – | | | |")
                        continue
                    present = True
                    if not c.ok():
                        note = c.rows[0].get("note", "")
                        cells.append(f" {c.first('status')} | | | |" if not note else f" {c.first('status')}: {note[:40]} | | | |")
                        continue
                    k = get(w, f, "kernel")
                    u = get(w, f, "uffd")
                    aps = c.m("accesses_per_s")
                    cells.append(
                        f" {fmt(c.m('misses'))} ({ratio(c.m('misses'), min_of(w, f))}) |"
                        f" {kfmt(aps)} [{kfmt(c.lo('accesses_per_s'))}–{kfmt(c.hi('accesses_per_s'))}] |"
                        f" {ratio(aps, k.m('accesses_per_s') if k else None)} |"
                        f" {ratio(aps, u.m('accesses_per_s') if u else None)} |")
                if present:
                    w_(f"| {t} |" + "".join(cells))
            w_("")

        # --- slices -----------------------------------------------------------
        slices = sorted({(k[0], k[1], k[2], k[3]) for k in cases if k[2] != 1 or k[3] != "read"})
        if slices:
            w_("## Threads and read-modify-write\n")
            w_("The same trace split round-robin over two threads, and every "
               "access also incrementing a word of its page (`rmw`: every "
               "evicted page is dirty), next to the single-threaded read run.\n")
            groups = sorted({(s[0], s[1]) for s in slices})
            for (w, f) in groups:
                variants = [(1, "read")] + [(s[2], s[3]) for s in slices if (s[0], s[1]) == (w, f)]
                w_(f"### {w} at {budget_pct(w, f)}\n")
                w_("| target |" + "".join(f" t{th} {m}: misses | pages/s | ÷ kernel |" for th, m in variants))
                w_("|---|" + "---|---|---|" * len(variants))
                for t in ["kernel", "uffd"] + policies + extra:
                    cells = []
                    for th, m in variants:
                        c = get(w, f, t, th, m)
                        k = get(w, f, "kernel", th, m)
                        if not c or not c.ok():
                            cells.append(" – | – | – |")
                            continue
                        cells.append(f" {fmt(c.m('misses'))} | {kfmt(c.m('accesses_per_s'))} |"
                                     f" {ratio(c.m('accesses_per_s'), k.m('accesses_per_s') if k else None)} |")
                    w_(f"| {t} |" + "".join(cells))
                w_("")

    real_section(d, w_)

    programs_section(d, w_)

    if rows:
        # --- trust ------------------------------------------------------------
        w_("## How much to trust these numbers\n")
        spreads = []
        for k, c in cases.items():
            if c.ok() >= 2 and c.m("accesses_per_s"):
                spreads.append((c.hi("accesses_per_s") - c.lo("accesses_per_s")) / c.m("accesses_per_s"))
        runs = len(rows)
        errs = [r for r in rows if r["status"] == "error"]
        skips = [r for r in rows if r["status"] == "skip"]
        bad = [r for r in rows if num(r["bad"])]
        ooms = sum(int(num(r.get("ooms")) or 0) for r in rows)
        if spreads:
            spreads.sort()
            w_(f"- {runs} runs of {len(cases)} cases.  Spread of accesses/s over the runs of a "
               f"case, (max − min) ÷ median: median {100 * statistics.median(spreads):.0f}%, "
               f"90th percentile {100 * spreads[int(0.9 * (len(spreads) - 1))]:.0f}%.  "
               "Differences smaller than that are noise.")
        mdev = []
        for k, c in cases.items():
            if k[4] in policies and c.ok() >= 2 and c.m("misses"):
                mdev.append((c.hi("misses") - c.lo("misses")) / c.m("misses"))
        if mdev:
            w_(f"- Misses vary much less between runs (median spread "
               f"{100 * statistics.median(mdev):.1f}%, max {100 * max(mdev):.1f}%): the eviction "
               "decisions are deterministic but for the evictor's timing (and `random`, which "
               "the runtime seeds from the clock).")
        w_(f"- Content checks: {len(bad)} runs saw a page with wrong content"
           + (" — " + ", ".join(f"{r['workload']} {label(r)}" for r in bad) if bad else " (every access checks its page's signature; rmw runs also check that no increment was lost)") + ".")
        if errs:
            w_(f"- {len(errs)} runs failed: " + "; ".join(
                f"{r['workload']} {label(r)} {r['budget']}: {r['note']}" for r in errs[:8]) + ".")
        if skips:
            w_(f"- {len(skips)} runs skipped: {skips[0]['note']}.")
        if ooms:
            w_(f"- The kernel's memory cgroup OOM-killed the child {ooms} times under the "
               "tight limits (while charging a swap-readahead page); those runs were "
               "repeated (column `ooms`).")
        w_("")
    open(os.path.join(d, "summary.md"), "w").write("\n".join(out) + "\n")
    if rows:
        plots(d, workloads, frames_of, get, policies, extra, min_of, budget_pct)


# The goals of issue 11 for the real-size matrix: lazypage ÷ kernel,
# accesses per second, by (workload, threads).
GOALS = {("uniform", 1): 1.0, ("uniform", 4): 1.5, ("loop", 1): 2.0, ("zipf1.0", 1): 1.3}


def us(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}".replace(",", " ")


def real_section(d, w_):
    """The real-size matrix (raw-real.csv): lazypage ÷ kernel per case, the
    cost of a miss, and where a miss's time goes."""
    p = os.path.join(d, "raw-real.csv")
    if not os.path.exists(p):
        return
    rows = load(p)
    if not rows:
        return
    cases = defaultdict(Case)
    order, targets = [], []
    for r in rows:
        key = (r["workload"], int(r["threads"]))
        if key not in order:
            order.append(key)
        if label(r) not in targets:
            targets.append(label(r))
        cases[key + (label(r),)].rows.append(r)
    lps = [t for t in targets if t != "kernel"]
    r0 = rows[0]
    mib = int(r0["pages"]) * 4096 >> 20
    bud = int(r0["frames"]) * 4096 >> 20
    w_(f"## Real sizes: {mib} MiB under {bud} MiB\n")
    w_(f"`lp-bench -n {r0['pages']} -f {r0['frames']} -m rmw -S`: a {mib} MiB "
       f"region (hotscan's grows by the pages it scans) under a {bud} MiB "
       "budget, every access a read-modify-write, at 1 and 4 threads; the "
       "kernel and lazypage with the runtime's defaults (`" + "`, `".join(lps) +
       "`: readahead on) side by side, in an order that turns from case to "
       "case.  *µs/miss* is wall time ÷ misses (zero fills + swap-ins; "
       "kernel: first touches + major faults).  *goal*: what issue 11 asks "
       "of lazypage ÷ kernel.\n")
    w_("![lazypage ÷ kernel at real sizes](plots/real.png)\n")
    hdr = "| workload | threads | accesses |"
    sep = "|---|---|---|"
    for t in lps:
        hdr += f" {t} acc/s | kernel acc/s | {t} ÷ kernel | goal | {t} misses | kernel misses | {t} µs/miss | kernel µs/miss |"
        sep += "---|---|---|---|---|---|---|---|"
    w_(hdr)
    w_(sep)
    rat = []
    for (w, th) in order:
        k = cases.get((w, th, "kernel"))
        line = f"| {w} | {th} | {fmt(num(next(iter(cases[(w, th, lps[0] if lps else 'kernel')].rows))['length']))} |"
        for t in lps:
            c = cases.get((w, th, t))
            aps = c.m("accesses_per_s") if c else None
            kaps = k.m("accesses_per_s") if k else None
            if aps and kaps:
                rat.append(aps / kaps)
            cm = c.m("misses") if c else None
            km = k.m("misses") if k else None
            cu = c.m("wall_s") / cm * 1e6 if c and cm else None
            ku = k.m("wall_s") / km * 1e6 if k and km else None
            g = GOALS.get((w, th))
            line += (f" {kfmt(aps)} | {kfmt(kaps)} | **{ratio(aps, kaps)}** | "
                     f"{'≥ ' + format(g, '.1f') if g else ''} | {fmt(cm)} | {fmt(km)} | "
                     f"{us(cu, 1)} | {us(ku, 1)} |")
        w_(line)
    w_("")
    if rat:
        w_(f"lazypage ÷ kernel over these cases: median **{statistics.median(rat):.2f}×**, "
           f"range {min(rat):.2f}–{max(rat):.2f}×.\n")

    remote = [t for t in lps if t.endswith("+remote")]
    if remote:
        rem = remote[0]
        base = rem.rsplit("+", 1)[0]
        w_("### The remote store against the swap file\n")
        w_(f"`{rem}`: the same cases with their pages on three redis-server "
           "shards on loopback (two copies of each page) instead of the swap "
           f"file, beside `{base}` in the same run.  *swap-ins/s* and "
           "*evictions/s* are per second of wall time; *swap-in* the "
           "handler's p50 (the remote's *device* phase is the request's round "
           "trip: queue to a worker, the servers, the completion back).\n")
        w_("| workload | threads | store | acc/s | ÷ file | swap-ins/s | evictions/s | swap-in p50 µs | device p50 µs | observed miss p50 µs |")
        w_("|---|---|---|---|---|---|---|---|---|---|")
        for (w, th) in order:
            b = cases.get((w, th, base))
            for t, name in ((base, "file"), (rem, "remote")):
                c = cases.get((w, th, t))
                if not c or not c.ok():
                    continue
                aps, wall = c.m("accesses_per_s"), c.m("wall_s")
                ev = c.m("swap_outs")
                w_(f"| {w} | {th} | {name} | {kfmt(aps)} | "
                   f"{'**' + ratio(aps, b.m('accesses_per_s')) + '**' if name == 'remote' and b else ''} | "
                   f"{kfmt(c.m('swapins_per_s'))} | {kfmt(ev / wall if ev and wall else None)} | "
                   f"{us(c.m('swapin_p50_us'), 1)} | {us(c.m('device_p50_us'), 1)} | "
                   f"{us(c.m('obs_miss_p50_us'), 1)} |")
        w_("")
    tiered = [t for t in lps if "+ra+" in t and not t.endswith("+remote")]
    if tiered:
        base = tiered[0].rsplit("+", 1)[0]
        w_("### The compressed tier on the same cases\n")
        cont = r0.get("content") or ""
        w_(f"Each tier beside `{base}` without one, in the same run; page content "
           + (f"compresses about {cont} to 1 (`lp-bench -c {cont}`)" if cont else
              "is zeros beyond the checked words (~60 to 1: flatters the tier)")
           + ".  *tier faults*: misses served from the pool; *written on*: pool "
           "pages written to swap later; *not taken*: pages its admission "
           "sent past it (nothing came back while it stored them).\n")
        w_("| workload | threads | tier | acc/s | ÷ no tier | ÷ kernel | swap-ins | tier faults | stored | written on | not taken |")
        w_("|---|---|---|---|---|---|---|---|---|---|---|")
        for (w, th) in order:
            b = cases.get((w, th, base))
            k = cases.get((w, th, "kernel"))
            for t in tiered:
                c = cases.get((w, th, t))
                if not c:
                    continue
                aps = c.m("accesses_per_s")
                w_(f"| {w} | {th} | {t.rsplit('+', 1)[1]} | {kfmt(aps)} | "
                   f"**{ratio(aps, b.m('accesses_per_s') if b else None)}** | "
                   f"{ratio(aps, k.m('accesses_per_s') if k else None)} | "
                   f"{fmt(c.m('swapin_faults'))} | {fmt(c.m('tier_faults'))} | "
                   f"{fmt(c.m('tier_stores'))} | "
                   f"{fmt(c.m('tier_writebacks'))} | "
                   f"{fmt(c.m('tier_bypasses'))} |")
        w_("")

    w_("### Where a miss's time goes\n")
    w_("*observed*: what the accessing thread waits, timed around every "
       "access (TSC, calibrated against CLOCK_MONOTONIC over the run); a "
       "miss is one of the *n* slowest later accesses, *n* being the "
       "swap-ins the pager counted (lazypage's swap-in faults, the kernel's "
       "major faults), *zero-fill* every first touch.  The phases are the "
       "runtime's own (`lp_stats.miss_phase_p50_ns[]`): *queue* fault read "
       "by a handler → its read submitted, *device* → completion seen, "
       "*install* → page installed and thread woken, *handler* the whole; "
       "0 where the fault path does not measure them yet.  *delivery + "
       "wake-up* = observed − handler: the kernel's part of a lazypage miss "
       "(when the handler phase reads 0, the handler's swap-in service time "
       "`swapin_p50_us` stands in, marked *).  All p50 (p99) in µs.\n")
    w_("| workload | threads | target | observed miss | observed zero-fill | queue | device | install | handler | swap-in service | delivery + wake-up (p50) |")
    w_("|---|---|---|---|---|---|---|---|---|---|---|")

    def pp(c, a, b, nd=1):
        x, y = c.m(a), c.m(b)
        return "–" if x is None else f"{us(x, nd)} ({us(y, nd)})"

    for (w, th) in order:
        for t in ["kernel"] + lps:
            c = cases.get((w, th, t))
            if not c or not c.ok():
                continue
            if t == "kernel":
                w_(f"| {w} | {th} | kernel | {pp(c, 'obs_miss_p50_us', 'obs_miss_p99_us')} | "
                   f"{pp(c, 'obs_zero_p50_us', 'obs_zero_p99_us')} | | | | | | |")
                continue
            h = c.m("handler_p50_us")
            star = ""
            if not h:
                h, star = c.m("swapin_p50_us"), "*"
            o = c.m("obs_miss_p50_us")
            dw = f"{us(o - h, 1)}{star}" if o is not None and h is not None else "–"
            w_(f"| {w} | {th} | {t} | {pp(c, 'obs_miss_p50_us', 'obs_miss_p99_us')} | "
               f"{pp(c, 'obs_zero_p50_us', 'obs_zero_p99_us')} | "
               f"{pp(c, 'queue_p50_us', 'queue_p99_us')} | {pp(c, 'device_p50_us', 'device_p99_us')} | "
               f"{pp(c, 'install_p50_us', 'install_p99_us')} | {pp(c, 'handler_p50_us', 'handler_p99_us')} | "
               f"{pp(c, 'swapin_p50_us', 'swapin_p99_us')} | {dw} |")
    w_("")
    bad = [r for r in rows if num(r["bad"])]
    errs = [r for r in rows if r["status"] != "ok"]
    w_(f"Content checks: {len(bad)} of {len(rows)} runs saw a page with wrong content"
       + (" (" + ", ".join(f"{r['workload']} t{r['threads']} {label(r)}" for r in bad) + ")" if bad else "")
       + (f"; {len(errs)} runs did not finish: " + "; ".join(
           f"{r['workload']} t{r['threads']} {label(r)}: {r['note']}" for r in errs[:6]) if errs else "")
       + ".\n")
    real_plot(d, order, cases, lps)


def gnuplot(gp, dat, what):
    """Run the script gp (data dat), then remove both; a missing gnuplot
    costs the plot only."""
    try:
        subprocess.run(["gnuplot", gp], check=True)
        os.remove(dat)
        os.remove(gp)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report.py: no {what} plot ({e})", file=sys.stderr)


def real_plot(d, order, cases, lps):
    """plots/real.png: lazypage ÷ kernel per real-size case."""
    pd = os.path.join(d, "plots")
    os.makedirs(pd, exist_ok=True)
    dat = os.path.join(pd, "real.dat")
    with open(dat, "w") as f:
        for (w, th) in order:
            k = cases.get((w, th, "kernel"))
            vals = []
            for t in lps:
                c = cases.get((w, th, t))
                a = c.m("accesses_per_s") if c else None
                b = k.m("accesses_per_s") if k else None
                vals.append(f"{a / b:.3f}" if a and b else "NaN")
            f.write(f'"{w} t{th}" ' + " ".join(vals) + "\n")
    gp = os.path.join(pd, "real.gp")
    with open(gp, "w") as g:
        g.write("set terminal pngcairo size 820,420 font 'sans,10'\n")
        g.write(f"set output '{pd}/real.png'\n")
        g.write("set title 'real sizes: lazypage ÷ kernel, accesses per second (1 = as fast)'\n")
        g.write("set style data histogram\nset style histogram cluster gap 1\n")
        g.write("set style fill solid 0.8\nset boxwidth 0.9\nset grid ytics\n")
        g.write("set yrange [0:*]\nset xtics rotate by -30\n")
        g.write("plot " + ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{t}'"
                                    for i, t in enumerate(lps))
                + ", 1 with lines lw 2 dt 2 lc rgb 'black' title 'kernel'\n")
    gnuplot(gp, dat, "real-size")


def tiers_table(d, w_, prow, progs, fracs, nat, ker, ws, wall_s, killed):
    """-G with tiers: wall time per program, cap and tier, beside the
    kernel, and plots/tiers.png."""
    tgs = [t for t in uniq(r["target"] for r in prow)
           if t == "vmrun" or t.startswith("vmrun+")]
    if not any(t.startswith("vmrun+") for t in tgs):
        return
    w_("### Compressed tiers\n")
    w_("Wall time (s) per program, cap and target: `vmrun` swaps to the file "
       "only, `vmrun+lz4` / `vmrun+zstd` keep a compressed tier inside the "
       "same cap (`--tier`).  *÷ kernel*: kernel wall ÷ the target's wall "
       "(above 1: faster than the kernel); *÷ vmrun*: the same against "
       "`vmrun` without a tier.  *tier hits* = faults served from the tier.\n")
    head = "| program | cap | native | kernel | " + " | ".join(tgs) + " | " + \
        " | ".join(f"{t} ÷ kernel" for t in tgs[1:] if t != "vmrun") + \
        " | " + " | ".join(f"{t} ÷ vmrun" for t in tgs if t != "vmrun") + " | tier hits |"
    w_(head)
    w_("|" + "---|" * (head.count("|") - 1))
    rows, speeds = [], {t: [] for t in tgs}
    for prog in progs:
        for f in fracs:
            k = ker.get((prog, f))
            runs = {t: next((r for r in prow if r["program"] == prog and r["target"] == t
                             and r.get("cap_frac") == f), None) for t in tgs}
            if not any(runs.values()):
                continue
            kw = None if (not k or killed(k)) else wall_s(k)[0]
            walls = {t: (wall_s(v)[0] if v else None) for t, v in runs.items()}
            base = walls.get("vmrun")
            for t in tgs:
                if kw and walls[t]:
                    speeds[t].append(kw / walls[t])
            hits = "/".join(fmt(num(runs[t].get("tier_faults"))) if runs[t] and runs[t].get("tier_faults") else "–"
                            for t in tgs if t != "vmrun")
            w_(f"| {prog} | {f} | {fmt(nat.get(prog), 2)} | {ws(k) if k else '–'} | "
               + " | ".join(ws(runs[t]) if runs[t] else "–" for t in tgs) + " | "
               + " | ".join(ratio(kw, walls[t]) if kw else "–" for t in tgs[1:] if t != "vmrun") + " | "
               + " | ".join(ratio(base, walls[t]) if base else "–" for t in tgs if t != "vmrun")
               + f" | {hits} |")
            rows.append((f"{prog} {f}", [kw] + [walls[t] for t in tgs]))
    for t in tgs:
        if speeds[t]:
            w_(f"\n{t} ÷ kernel over the runs both finished: median **{statistics.median(speeds[t]):.2f}×** "
               f"({len(speeds[t])} runs, range {min(speeds[t]):.2f}–{max(speeds[t]):.2f}×).")
    w_("\n![wall time per program and tier](plots/tiers.png)\n")
    pd = os.path.join(d, "plots")
    os.makedirs(pd, exist_ok=True)
    dat, gp = os.path.join(pd, "tiers.dat"), os.path.join(pd, "tiers.gp")
    with open(dat, "w") as f_:
        for name, vals in rows:
            f_.write(f'"{name}" ' + " ".join(f"{v:.3f}" if v else "NaN" for v in vals) + "\n")
    with open(gp, "w") as g:
        g.write("set terminal pngcairo size 820,420 font 'sans,10'\n")
        g.write(f"set output '{pd}/tiers.png'\n")
        g.write("set title 'real programs under a cap: wall time (s, log scale)'\n")
        g.write("set style data histogram\nset style histogram cluster gap 1\n")
        g.write("set style fill solid 0.8\nset boxwidth 0.9\nset grid ytics\n")
        g.write("set logscale y\nset xtics rotate by -30\n")
        g.write("plot " + ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{t}'"
                                    for i, t in enumerate(["kernel"] + tgs)) + "\n")
    gnuplot(gp, dat, "tiers")
    w_("")


def programs_section(d, w_):
    pp = os.path.join(d, "programs.csv")
    if not os.path.exists(pp):
        return
    prow = load(pp)
    if not prow:
        return
    for r in prow:
        # programs.csv of before -G: every cap was 1/4
        if not r.get("cap_frac"):
            r["cap_frac"] = "1/4" if r.get("cap_kib") else ""

    def mib(v):
        v = num(v)
        return fmt(v / 1048576, 1) if v is not None else "–"

    def wall_s(r):
        """The wall time, and whether it is a lower bound (timed out)."""
        return num(r["wall_s"]), r.get("timed_out") == "1"

    def killed(r):
        """The kernel's memory cgroup OOM-killed it (every try)."""
        return r["target"] == "kernel" and r["status"] == "137" and r.get("timed_out") != "1"

    def ws(r):
        x, to = wall_s(r)
        if killed(r):
            return f"OOM-killed ({r.get('ooms') or '?'}×)"
        return "–" if x is None else ("> " if to else "") + fmt(x, 2)

    nat = {r["program"]: num(r["wall_s"]) for r in prow if r["target"] == "native"}
    ker = {(r["program"], r.get("cap_frac", "1/4")): r for r in prow if r["target"] == "kernel"}
    fracs = uniq(r.get("cap_frac") or "" for r in prow if r.get("cap_frac"))
    progs = uniq(r["program"] for r in prow)

    # Against the kernel: per program and cap, native, kernel, each vmrun.
    vm_targets = uniq(r["target"] for r in prow
                      if r["target"] not in ("native", "kernel", "uncapped"))
    if ker:
        w_("## Real programs against the kernel\n")
        w_("Each program natively (no cap), under the kernel's paging (a "
           "memory cgroup capped at a fraction of the native peak RSS, the "
           "run's swap file) and under `vmrun --mem` with the same cap.  Wall "
           "time, once per target.  *speed ÷ kernel* = kernel wall ÷ vmrun "
           "wall (above 1: vmrun is faster).  *µs/miss* = wall ÷ swap-ins "
           "(kernel: major faults).  `>`: killed at the timeout, a lower "
           "bound.  *OOM-killed*: the kernel's memory cgroup killed the "
           "program at that cap on every try (lp-bench-prog tries 3 "
           "times).\n")
        if len(vm_targets) > 2:
            # Every policy (the default set): speeds only.
            w_("Speed ÷ kernel (kernel wall ÷ vmrun wall) per policy:\n")
            w_("| program | cap | kernel s | " + " | ".join(vm_targets) + " |")
            w_("|---|---|---|" + "---|" * len(vm_targets))
            for prog in progs:
                for f in fracs:
                    k = ker.get((prog, f))
                    if not k:
                        continue
                    kw = num(k["wall_s"])
                    cells = []
                    for t in vm_targets:
                        v = next((r for r in prow if r["program"] == prog and r["target"] == t
                                  and r["cap_frac"] == f), None)
                        vw = num(v["wall_s"]) if v else None
                        # (A kernel run the cgroup killed has no speed.)
                        cells.append("kernel failed" if killed(k) else ratio(kw, vw))
                    w_(f"| {prog} | {f} | {ws(k)} | " + " | ".join(cells) + " |")
            w_("")
            vm_targets = []
        for t in vm_targets:
            w_(f"### {t}\n")
            w_(f"| program | native peak RSS | cap | native s | kernel s | {t} s | {t} speed ÷ kernel | kernel µs/miss | {t} µs/miss | kernel major faults | {t} swap-ins | same output |")
            w_("|---|---|---|---|---|---|---|---|---|---|---|---|")
            speeds = []
            for prog in progs:
                nr = next((r for r in prow if r["program"] == prog and r["target"] == "native"), None)
                for f in fracs:
                    k = ker.get((prog, f))
                    v = next((r for r in prow if r["program"] == prog and r["target"] == t
                              and (r.get("cap_frac") or "1/4") == f), None)
                    if not k and not v:
                        continue
                    kw, kto = wall_s(k) if k else (None, False)
                    vw, vto = wall_s(v) if v else (None, False)
                    sp = "–"
                    if k and killed(k):
                        kw = None
                        sp = "kernel failed"
                    if kw and vw:
                        s_ = kw / vw
                        if kto and vto:
                            sp = "?"
                        elif vto:
                            sp = f"< {s_:.2f}"
                        elif kto:
                            sp = f"> {s_:.2f}"
                        else:
                            sp = f"**{s_:.2f}**"
                            speeds.append(s_)
                    km, vm = num(k["majflt"]) if k else None, num(v["swapin_faults"]) if v else None
                    capk = num((v or k)["cap_kib"])
                    same = "/".join(x["same_output"] or "–" for x in (k, v) if x)
                    w_(f"| {prog} | {fmt(num(nr['maxrss_kib']) / 1024, 1) if nr and num(nr['maxrss_kib']) else '–'} MiB | "
                       f"{f} = {fmt(capk / 1024, 1) if capk else '–'} MiB | {fmt(nat.get(prog), 2)} | "
                       f"{ws(k) if k else '–'} | {ws(v) if v else '–'} | {sp} | "
                       f"{us(kw / km * 1e6) if kw and km else '–'} | {us(vw / vm * 1e6) if vw and vm else '–'} | "
                       f"{fmt(km)} | {fmt(vm)} | {same} |")
            if speeds:
                w_(f"\nSpeed ÷ kernel over the runs that finished: median **{statistics.median(speeds):.2f}×**, "
                   f"range {min(speeds):.2f}–{max(speeds):.2f}×.")
            w_("")
        tiers_table(d, w_, prow, progs, fracs, nat, ker, ws, wall_s, killed)
        unc = [(r["program"], num(r["wall_s"])) for r in prow if r["target"] == "uncapped"]
        if unc:
            w_("Uncapped `vmrun` ÷ native wall time: " + ", ".join(
                f"{p_} {ratio(x, nat.get(p_))}×" for p_, x in unc) + ".\n")

    w_("## Real programs: every run\n")
    w_("*uncapped*: `vmrun` with no cap (the runtime's cost before any "
       "eviction); *vmrun*: `vmrun --mem CAP` with the runtime's defaults; a "
       "policy name: `vmrun --mem CAP --policy P` (readahead on).  *same "
       "output*: stdout and exit status identical to the native run.  Wall "
       "time includes vmrun's start.\n")
    w_("| program | target | cap | wall s | ÷ native | ÷ kernel | zero-fill | segment loads | swap-ins | readahead | swap-outs | ref sweeps | swap MiB read / written | status | same output |")
    w_("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in prow:
        wall = num(r["wall_s"])
        capk = num(r["cap_kib"])
        k = ker.get((r["program"], r.get("cap_frac") or "1/4"))
        f = r.get("cap_frac") or ""
        w_(f"| {r['program']} | {r['target']} | {(f + ' = ') if f else ''}{fmt(capk / 1024, 1) + ' MiB' if capk else '–'} | "
           f"{ws(r)} | {ratio(wall, nat.get(r['program']))} | "
           f"{ratio(wall, num(k['wall_s'])) if k and not killed(k) and r['target'] not in ('native', 'uncapped') else '–'} | "
           f"{r.get('zero_faults') or '–'} | {r.get('init_faults') or '–'} | "
           f"{r['swapin_faults'] or '–'} | {r['readahead_pages'] or '–'} | {r['swap_outs'] or '–'} | "
           f"{r['ref_sweeps'] or '–'} | {mib(r.get('swap_read_bytes'))} / {mib(r.get('swap_write_bytes'))} | "
           f"{r['status'] or '–'} | {r['same_output'] or '–'} |")
    w_("")
    bad = [r for r in prow if r["target"] != "native" and r["same_output"] != "yes"
           and r.get("timed_out") != "1"]
    if bad:
        w_("**Runs whose output or status differed from the native run:** " +
           ", ".join(f"{r['program']} under {r['target']} (status {r['status']})" for r in bad) +
           ".  See bench/README.md (known problems).\n")
    to = [r for r in prow if r.get("timed_out") == "1"]
    if to:
        w_("Killed at the timeout: " + ", ".join(f"{r['program']} {r['target']} {r.get('cap_frac')}"
                                               for r in to) + ".\n")


COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000080", "#808000"]


def plots(d, workloads, frames_of, get, policies, extra, min_of, budget_pct):
    pd = os.path.join(d, "plots")
    os.makedirs(pd, exist_ok=True)
    lines = policies + extra
    for w in workloads:
        fs = frames_of(w)
        if not fs:
            continue
        dat = os.path.join(pd, f"{w}.dat")
        with open(dat, "w") as f:
            f.write("# budget% " + " ".join(lines) + " MIN kernel\n")
            for fr in fs:
                c0 = next(c for c in (get(w, fr, t) for t in lines + ["kernel", "uffd"]) if c)
                n = num(c0.first("length"))
                b = num(c0.first("budget")) * 100
                vals = []
                for t in lines + ["kernel"]:
                    c = get(w, fr, t)
                    m = c.m("misses") if c else None
                    vals.append("NaN" if m is None else f"{m / n:.5f}")
                mn = min_of(w, fr)
                vals.insert(len(lines), "NaN" if mn is None else f"{mn / n:.5f}")
                f.write(f"{b:.1f} " + " ".join(vals) + "\n")
    gp = os.path.join(pd, "plots.gp")
    with open(gp, "w") as g:
        g.write("set terminal pngcairo size 820,520 font 'sans,10'\n")
        g.write("set key outside right top\nset grid\nset yrange [0:*]\n")
        g.write("set xlabel 'budget (% of the pages the trace touches)'\n")
        g.write("set ylabel 'miss ratio (misses / accesses)'\n")
        for w in workloads:
            if not frames_of(w):
                continue
            g.write(f"set output '{pd}/{w}.png'\nset title '{w}: miss ratio against budget'\n")
            g.write(plot_cmd(os.path.join(pd, f"{w}.dat"), lines) + "\n")
        # all workloads on one page, for the README
        ws = [w for w in workloads if frames_of(w)]
        rows = (len(ws) + 3) // 4
        g.write(f"set terminal pngcairo size 1600,{420 * rows + 60} font 'sans,9'\n")
        g.write(f"set output '{pd}/all.png'\nunset key\n")
        g.write(f"set multiplot layout {rows},4 title 'miss ratio against budget: "
                "one line per policy, MIN dashed black, kernel dotted grey'\n")
        for i, w in enumerate(ws):
            g.write(f"set title '{w}'\n")
            if i == len(ws) - 1:
                g.write("set key outside right top\n")
            g.write(plot_cmd(os.path.join(pd, f"{w}.dat"), lines) + "\n")
        g.write("unset multiplot\n")
    try:
        subprocess.run(["gnuplot", gp], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report.py: no plots ({e}); apt-get install gnuplot-nox", file=sys.stderr)
        return
    for w in workloads:
        p = os.path.join(pd, f"{w}.dat")
        if os.path.exists(p):
            os.remove(p)
    os.remove(gp)


def plot_cmd(dat, lines):
    parts = []
    for i, t in enumerate(lines):
        parts.append(f"'{dat}' using 1:{i + 2} with linespoints lw 1.5 pt 7 ps 0.6 "
                     f"lc rgb '{COLORS[i % len(COLORS)]}' title '{t}'")
    parts.append(f"'{dat}' using 1:{len(lines) + 2} with lines lw 3 dt 2 lc rgb 'black' title 'MIN (floor)'")
    parts.append(f"'{dat}' using 1:{len(lines) + 3} with linespoints lw 1.5 dt 3 pt 6 lc rgb '#999999' title 'kernel'")
    return "plot " + ", \\\n  ".join(parts)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bench/report.py RESULTS_DIR")
    main(sys.argv[1])

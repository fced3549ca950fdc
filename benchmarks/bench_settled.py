"""7. History requests of the daily refresh in steady state, before and after the settled-aware schedule, and the
sustainable daily volume they allow (issue 12, item 2).

For each volume (5,000 and 49,999 SMS a server day — the simulated account's maximum, for "50,000") a fresh
store and a simulator account on a fake clock; a worker process (``_daily_worker.py``, mode ``ticks``) drives N consecutive daily ticks at the schedule's
05:30 (``Asia/Almaty``): the benchmark moves the simulator's clock to the tick, the worker decides what to
read and runs it as ``smsc_refresh`` range runs with the run's clock at the tick (``SMSC_CLOCK_*``), and the
benchmark counts the history requests the simulator served for that tick. Two policies:

* **before** — the old schedule: one run over the last 3 complete days (``keys[-3:]``), whatever is stored;
* **after** — the schedule as it is (``smsc_daily_refresh`` evaluated at the tick): only the days of the
  lookback that are not settled, one run per contiguous block.

Two settling profiles of the simulated account: its default (final statuses mostly within minutes, a tail
to 36 h, expiries up to 47 h after sending), and one whose every status is final within 24 h of sending (the
message lifetime the settlement rule assumes, ``settle_after_hours=24``). The first tick starts from an empty
store; ticks 2..N are the steady state. Sustainable volume = 720 requests a day (SMSC's 30 an hour) ÷ the
steady-state requests a day per 1,000 messages a day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import API_LIMIT_PER_HOUR, API_TZ, PARTITION_TZ, PYTHON, RESULTS_DIR, ROOT, WORKDIR, fmt_int, md_table  # noqa: E402
from bench_daily import code_revision, publish_section  # noqa: E402

from smsc_dagster.core.clock import FakeClock  # noqa: E402
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator  # noqa: E402

WORKER = str(Path(__file__).with_name("_daily_worker.py"))
ZONE = ZoneInfo(PARTITION_TZ)
LOOKBACK = 3
START = dt.date(2026, 11, 7)  # first partition; the first tick (11-10 05:30) sees exactly the lookback
FIRST_TICK = dt.datetime(2026, 11, 10, 5, 30, tzinfo=ZONE)  # SCHEDULE_CRON "30 5 * * *" in the partitions' zone
PER_DAY = API_LIMIT_PER_HOUR * 24  # 720 history requests a day
TITLE = "7. Daily refresh requests: settled days and the sustainable volume"
LIFETIME_S = 24 * 3600


class LifetimeAccount(SimulatedAccount):
    """The simulator's account with every final status reached within 24 h of sending (the same messages: the
    same random draws, each settle delay capped at 24 h)."""

    @staticmethod
    def _settle_delay(rng, status: int) -> int:
        return min(SimulatedAccount._settle_delay(rng, status), LIFETIME_S)


PROFILES = {
    "simulator": (SimulatedAccount, "the simulator's default settling (tail to 36 h, expiries to 47 h)"),
    "lifetime": (LifetimeAccount, "every status final within 24 h of sending"),
}


def series(volume: int, policy: str, profile: str, ticks: int) -> dict:
    cls, _ = PROFILES[profile]
    account = cls(seed=2026, messages_per_day=volume, timezone=API_TZ)
    clock = FakeClock(FIRST_TICK.timestamp())
    workdir = WORKDIR / "settled" / f"{volume}_{policy}_{profile}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    results = []
    started = time.perf_counter()
    with SMSCSimulator(account, rate_limits=False, clock=clock) as sim:
        spec = {
            "mode": "ticks",
            "policy": policy,
            "base_url": sim.base_url,
            "login": account.login,
            "password": account.password,
            "workdir": str(workdir / "work"),
            "data_dir": str(workdir / "data"),
            "timezone": PARTITION_TZ,
            "start_date": START.isoformat(),
            "lookback_days": LOOKBACK,
        }
        with open(workdir / "worker.log", "w") as log:
            proc = subprocess.Popen(
                [PYTHON, WORKER, json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(ROOT)
            )

            def answer() -> dict:
                for line in proc.stdout:
                    if line.startswith("@@"):
                        return json.loads(line[2:])
                raise RuntimeError(f"worker ended early (see {workdir / 'worker.log'})")

            try:
                answer()  # ready
                for i in range(ticks):
                    when = FIRST_TICK.timestamp() + i * 86_400
                    clock.advance(when - clock.now())
                    before = len(sim.history_requests())
                    t0 = time.perf_counter()
                    proc.stdin.write(json.dumps({"when": when}) + "\n")
                    proc.stdin.flush()
                    reply = answer()
                    requests = sim.history_requests()[before:]
                    windows = sorted({(r.params.get("start"), r.params.get("end")) for r in requests})
                    tick = {
                        "tick": i + 1,
                        "at": dt.datetime.fromtimestamp(when, ZONE).strftime("%Y-%m-%d %H:%M"),
                        "ranges": reply["ranges"],
                        "skip": reply["skip"],
                        "requests": len(requests),
                        "rows": sum(r.rows for r in requests),
                        "windows": windows,
                        "wall_s": time.perf_counter() - t0,
                        "runs": reply["runs"],
                    }
                    if not all(r["success"] for r in reply["runs"]):
                        raise RuntimeError(f"a run failed at tick {i + 1}: {reply['runs']} (see {workdir / 'worker.log'})")
                    results.append(tick)
                    print(
                        f"  {volume:>6}/day {policy:<6} {profile:<9} tick {i + 1} {tick['at']}: ranges {tick['ranges']}, "
                        f"{tick['requests']} requests, {fmt_int(tick['rows'])} rows, {tick['wall_s']:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            finally:
                proc.stdin.close()
                proc.wait(timeout=120)
    steady = results[1:]
    mean = sum(t["requests"] for t in steady) / len(steady) if steady else float("nan")
    per_1000 = mean / (volume / 1000)
    return {
        "volume": volume,
        "policy": policy,
        "profile": profile,
        "ticks": results,
        "steady_requests_per_day": mean,
        "steady_requests_min_max": [min(t["requests"] for t in steady), max(t["requests"] for t in steady)] if steady else None,
        "steady_days_read_per_tick": sum(
            (dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days + 1 for t in steady for a, b in t["ranges"]
        ) / max(len(steady), 1),
        "requests_per_day_per_1000": per_1000,
        "sustainable_messages_per_day": PER_DAY / per_1000 * 1000,
        "elapsed_s": time.perf_counter() - started,
    }


def render(out: list[dict], volumes: list[int], profiles: list[str], code: str = "not recorded") -> tuple[str, list[dict]]:
    """The section's markdown and target rows from the measured series (also from a results JSON)."""
    def find(volume: int, policy: str, profile: str) -> dict | None:
        return next((s for s in out if (s["volume"], s["policy"], s["profile"]) == (volume, policy, profile)), None)

    rows = []
    for s in out:
        label = "**before** (old schedule: one run over the last 3 days)" if s["policy"] == "before" else f"**after** (settled-aware schedule), {PROFILES[s['profile']][1]}"
        per_tick = ", ".join(str(t["requests"]) for t in s["ticks"])
        lo, hi = s["steady_requests_min_max"]
        rows.append(
            (
                fmt_int(s["volume"]),
                label,
                f"{len(s['ticks'])} ({per_tick})",
                f"{s['steady_days_read_per_tick']:.1f}",
                f"**{s['steady_requests_per_day']:.1f}**" + (f" ({lo}–{hi})" if lo != hi else ""),
                f"{s['requests_per_day_per_1000']:.2f}",
                f"**{fmt_int(s['sustainable_messages_per_day'])}**",
                f"{s['elapsed_s']:.0f} s",
            )
        )
    table = md_table(
        [
            "msgs/day",
            "schedule",
            "ticks (history requests of each; the first on an empty store)",
            "days read a tick (steady)",
            "**requests a day** (steady: ticks 2..N, mean)",
            "requests a day per 1,000 msgs/day",
            "**sustainable msgs/day** (720 ÷ previous × 1,000)",
            "bench time",
        ],
        rows,
    )
    range_lines = []
    for s in out:
        steady = s["ticks"][1:]
        shown = "; ".join(f"{t['at'][5:10]}: {', '.join(f'{a[5:]}..{b[5:]}' for a, b in t['ranges']) or 'none'}" for t in steady[:3])
        pend = []
        for t in steady[:2]:
            for run in t["runs"]:
                pend += [f"{d[5:]} {run['pending'].get(d, 0)} pending" for d in sorted(run["pending"])]
        range_lines.append(
            f"- {fmt_int(s['volume'])}/day, {s['policy']}, {s['profile']}: ranges read {shown}"
            + (f" (after the reads of the first two steady ticks: {', '.join(pend[:6])})" if s["policy"] == "after" else "")
        )
    # Pending messages of the day read 29.5 h after its end (the middle read), in the steady ticks of "after".
    middle_pending: dict[tuple[int, str], list[int]] = {}
    for s in out:
        if s["policy"] != "after":
            continue
        for t in s["ticks"][1:]:
            middle = (dt.date.fromisoformat(t["at"][:10]) - dt.timedelta(days=2)).isoformat()
            for run in t["runs"]:
                if middle in run["pending"]:
                    middle_pending.setdefault((s["volume"], s["profile"]), []).append(run["pending"][middle])
    pending_text = "; ".join(
        f"{fmt_int(v)}/day: {min(p)}–{max(p)} a day" for (v, prof), p in sorted(middle_pending.items()) if prof == "simulator"
    ) or "not measured"
    conclusions = []
    for volume in volumes:
        before = find(volume, "before", "simulator")
        for profile in profiles:
            after = find(volume, "after", profile)
            if before and after:
                conclusions.append(
                    f"- {fmt_int(volume)}/day, {PROFILES[profile][1]}: {before['steady_requests_per_day']:.1f} → "
                    f"{after['steady_requests_per_day']:.1f} requests a day "
                    f"({after['steady_requests_per_day'] / before['steady_requests_per_day']:.2f}×); sustainable volume "
                    f"{fmt_int(before['sustainable_messages_per_day'])} → **{fmt_int(after['sustainable_messages_per_day'])} messages a day**."
                )
    markdown = f"""
Package code: {code}.

N consecutive daily ticks at 05:30 `{PARTITION_TZ}` from {FIRST_TICK:%Y-%m-%d} (partitions from {START}, lookback
{LOOKBACK} days, `settle_after_hours` 24), simulator limits off on a fake clock moved to each tick, the run's
client on the same world time; a fresh store for each series, the first tick on an empty store (it reads the
whole lookback whatever the policy), ticks 2..N the steady state. History requests are those the simulator
served during the tick. *Before* is the old schedule's run over `keys[-3:]`; it ignores settlement, so its
requests depend only on the volume and it is measured once per volume. *After* is `smsc_daily_refresh`
evaluated at the tick, with the runs it requests.

{table}

{chr(10).join(conclusions)}

Ranges read in the steady state (first three ticks shown):

{chr(10).join(range_lines)}

- A day is settled when its last read came at least 24 h after it ended with no pending message. With a
  3-day lookback a day is read at 05:30 on the three mornings after it (5.5 h, 29.5 h and 53.5 h after its
  end): the first read is always too early, so the most the rule can save is the third read — one of the four
  server days a run over three local days requests (UTC+5 days against UTC+3 server days), i.e. a quarter of
  the requests at high volume (4 → 3 server days of rows a day: 720/4 ≈ 180,000 → 720/3 = 240,000 messages a
  day). It saves it only when no message of the day is still pending 29.5 h after the day ended.
- With the simulator's default account that never happens at these volumes: statuses settle up to 47 h after
  sending (expiries, status 3, 24–47 h; 1 % of the others 36–47 h), so at the read 29.5 h after the day's end some
  messages of every day are still pending ({pending_text}), every day stays unsettled through its three
  reads, and the settled-aware schedule spends what the old one did. The rule assumes SMSC's message
  lifetime (`valid`, at most 24 h); when every status is final within 24 h of sending (profile `lifetime`) it
  skips the third read of every day.
- Sustainable volume is the issue's figure: the whole 720-request day spent on the refresh alone. A run's
  requests are ⌈rows / 1,000⌉, plus one when the last page is exactly full (SMSC then answers a last request
  with error 3): 20,000 rows → 21 requests at 5,000/day, 199,996 → 200 at 49,999/day; so the figure per
  1,000 messages tends to the server days read a day (4 before, 3 at best after) as the volume grows, and the
  sustainable volume to 720/4 = 180,000 and 720/3 = 240,000 messages a day.
"""
    summary = []
    hi_v = max(volumes)
    before = find(hi_v, "before", "simulator")
    afters = [find(hi_v, "after", p) for p in profiles]
    if before:
        summary.append(
            {
                "target": "sustainable daily volume of the daily refresh (720 requests/day; no target; reported)",
                "measured": f"at {fmt_int(hi_v)}/day: before {before['steady_requests_per_day']:.0f} requests/day → "
                + ", ".join(f"after ({a['profile']}) {a['steady_requests_per_day']:.0f}" for a in afters if a)
                + f"; sustainable {fmt_int(before['sustainable_messages_per_day'])} → "
                + ", ".join(f"{fmt_int(a['sustainable_messages_per_day'])} ({a['profile']})" for a in afters if a)
                + " messages/day",
                "verdict": "reported: after/before "
                + ", ".join(f"{a['steady_requests_per_day'] / before['steady_requests_per_day']:.2f}× ({a['profile']})" for a in afters if a),
            }
        )
    return markdown, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 49,999: the simulated account's maximum a day (its int_id scheme keeps 50,000 ids a day for e-mail).
    parser.add_argument("--volumes", default="5000,49999", help="SMS per server day (at most 49,999)")
    parser.add_argument("--ticks", default="5000:7,49999:5", help="ticks per volume, volume:N,... (first tick: empty store)")
    parser.add_argument("--profiles", default="simulator,lifetime")
    parser.add_argument("--no-publish", action="store_true", help="print the section, do not write results/ or RESULTS.md")
    parser.add_argument("--render-only", action="store_true", help="re-render the section from results/settled.json")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.render_only:
        saved = json.loads((RESULTS_DIR / "settled.json").read_text())
        series_ = saved["data"]["series"]
        volumes = sorted({s["volume"] for s in series_})
        profiles = [p for p in PROFILES if any(s["profile"] == p and s["policy"] == "after" for s in series_)]
        markdown, summary = render(series_, volumes, profiles, saved["data"].get("code", "not recorded"))
        print(markdown)
        if not args.no_publish:
            publish_section("settled", TITLE, markdown, summary, saved["data"], started, keep=saved)
        return
    volumes = [int(v) for v in args.volumes.split(",") if v]
    ticks = {int(k): int(v) for k, v in (p.split(":") for p in args.ticks.split(",") if p)}
    profiles = [p for p in args.profiles.split(",") if p]
    out: list[dict] = []
    for volume in volumes:
        n = ticks.get(volume, 7)
        # "before" ignores settlement, so its requests do not depend on the profile: measured once, on the default.
        out.append(series(volume, "before", "simulator", n))
        for profile in profiles:
            out.append(series(volume, "after", profile, n))

    code = code_revision()
    markdown, summary = render(out, volumes, profiles, code)
    print(markdown)
    if args.no_publish:
        return
    publish_section("settled", TITLE, markdown, summary, {"series": out, "code": code}, started)


if __name__ == "__main__":
    main()

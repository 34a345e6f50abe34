"""The ``steward`` command: login, sync, runs list|show."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from steward import config
from steward.client import Client, StoredRun
from steward.errors import StewardError
from steward.spool import Spool


def _login(args: argparse.Namespace) -> int:
    current = config.resolve()
    try:
        url = args.url or input(f"Steward URL [{current.url}]: ").strip() or current.url
    except EOFError:
        url = current.url
    token = args.token or getpass.getpass(
        "API token (from your profile page or `make token USER=<you>` on the server): ")
    token = token.strip()
    if not token:
        print("steward login: a token is required.", file=sys.stderr)
        return 2
    with Client(url=url, token=token, retry_timeout=5) as client:
        me = client.me()
    values = {"url": url.rstrip("/"), "token": token}
    project = args.project or config.read_config_file().get("project")
    if project:
        values["project"] = project
    path = config.write_config_file(values)
    print(f"Logged in to {url} as {me['username']}; saved to {path} (readable by you only).")
    return 0


def _sync(args: argparse.Namespace) -> int:
    with Client(url=args.url) as client:
        spool = Spool(client.settings.spool_dir, client.url)
        waiting = sum(spool.pending().values())
        if not waiting:
            print(f"Nothing to send to {client.url}.")
            return 0
        report = client.sync()
    print(f"Sent {report.sent} of {waiting} spooled request(s) for {len(report.runs)} run(s) "
          f"to {client.url}.")
    for line in report.rejected:
        print(f"  refused by the server (kept in {spool.root / 'rejected'}): {line}")
    if report.remaining:
        print(f"  {report.remaining} request(s) still waiting: {report.error or 'server unreachable'}")
    return 0 if report.ok else 1


def _fmt_time(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


def _runs_list(args: argparse.Namespace) -> int:
    with Client(url=args.url) as client:
        runs = client.search_runs(
            args.project, experiment=args.experiment, filter=args.filter,
            order_by=args.order_by, max_results=args.max_results,
        )
    if args.json:
        print(json.dumps([_run_json(r) for r in runs], indent=2))
        return 0
    if not runs:
        print("No runs.")
        return 0
    if args.metrics:
        metric_keys = [k.strip() for k in args.metrics.split(",") if k.strip()]
    else:
        # The model's metrics, not the machine's: system/* only when asked for by name.
        metric_keys = sorted({k for r in runs for k in r.metrics if not k.startswith("system/")})[:4]
    header = ["id", "experiment", "name", "status", "started", *metric_keys]
    rows = [
        [r.id[:8], r.experiment, r.name, r.status, _fmt_time(r.info.get("start_time")),
         *(f"{r.metrics[k]:.4g}" if k in r.metrics else "" for k in metric_keys)]
        for r in runs
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip())
    return 0


def _run_json(run: StoredRun) -> dict[str, Any]:
    return {**run.info, "params": run.params, "metrics": run.metric_details, "tags": run.tags}


def _runs_show(args: argparse.Namespace) -> int:
    with Client(url=args.url) as client:
        run = client.get_run(client.run_id_for(args.run_id, args.project))
    if args.json:
        print(json.dumps(_run_json(run), indent=2, default=str))
        return 0
    info = run.info
    print(f"Run {run.id}  {info.get('project')}/{info.get('experiment')}  {run.name}")
    print(f"  status   {run.status}   started {_fmt_time(info.get('start_time'))}"
          f"   ended {_fmt_time(info.get('end_time')) or '-'}   by {info.get('author') or '-'}")
    source = info.get("source") or {}
    if source.get("git_commit"):
        dirty = " (dirty)" if source.get("git_dirty") else ""
        print(f"  git      {source['git_commit'][:12]} on {source.get('git_branch') or '?'}{dirty}")
    if source.get("entry_point"):
        print(f"  command  {source['entry_point']}")
    if info.get("seed") is not None:
        print(f"  seed     {info['seed']}")
    if info.get("parent_run_id"):
        print(f"  parent   {info['parent_run_id']}")
    for title, values in (("params", run.params), ("tags", run.tags)):
        if values:
            print(f"  {title}:")
            for key in sorted(values):
                print(f"    {key} = {values[key]}")
    if run.metric_details:
        print("  metrics (latest):")
        for key in sorted(run.metric_details):
            d = run.metric_details[key]
            print(f"    {key} = {d['value']:.6g}  (step {d.get('step')})")
    if info.get("error"):
        print("  error:")
        print("    " + info["error"].strip().replace("\n", "\n    "))
    return 0


def build_parser() -> argparse.ArgumentParser:
    url_help = "server URL (default: STEWARD_URL or ~/.steward/config)"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    parser = argparse.ArgumentParser(prog="steward", description="Steward experiment tracking client.")
    parser.add_argument("--url", help=url_help)
    sub = parser.add_subparsers(dest="command", required=True)

    login = sub.add_parser("login", parents=[common],
                           help="save the server URL and an API token to ~/.steward/config")
    login.add_argument("--token", help="API token (prompted for when omitted)")
    login.add_argument("--project", help="default project for runs")
    login.set_defaults(func=_login)

    sync = sub.add_parser("sync", parents=[common],
                          help="send what the spool holds (runs logged while the server was down)")
    sync.set_defaults(func=_sync)

    runs = sub.add_parser("runs", help="list or show runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_sub.add_parser("list", parents=[common], help="search a project's runs")
    listing.add_argument("--project", "-p", help="project slug (default: the configured project)")
    listing.add_argument("--experiment", "-e")
    listing.add_argument("--filter", "-f", help="e.g. \"metrics.acc > 0.9\"")
    listing.add_argument("--order-by", "-o", action="append", help="e.g. \"metrics.acc DESC\" (repeatable)")
    listing.add_argument("--max-results", "-n", type=int, default=50)
    listing.add_argument("--metrics", "-m", help="metric columns, e.g. \"acc,loss\" (default: up to 4 of the "
                         "model's metrics; system/* only when named)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_runs_list)
    show = runs_sub.add_parser("show", parents=[common], help="one run's params, metrics, tags and source")
    show.add_argument("run_id", help="a run id, or a unique prefix of one (the short id `runs list` prints)")
    show.add_argument("--project", "-p", help="look for the prefix in this project only")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_runs_show)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except StewardError as exc:
        print(f"steward: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()

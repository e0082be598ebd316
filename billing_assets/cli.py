"""``billing-assets``: the command line for scripts and scheduled jobs outside the UI."""

import argparse
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from billing_assets import ignore_chosen_betas
from billing_assets.domain.keys import command_hour, parse_command_hour
from billing_assets.settings import Settings, SettingsError, load_settings


def _hour(text: str) -> datetime:
    """``YYYY-MM-DDTHH`` (UTC) as an aware datetime."""
    try:
        return parse_command_hour(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DDTHH (UTC), got {text!r}") from None


def _generate(args: argparse.Namespace) -> int:
    from billing_assets.domain.watermark import LATE_DATA_WINDOW
    from billing_assets.landing.sample import generate_sample, recent_start
    from billing_assets.source.sample_db import write_sample_source

    start, hours = (args.start, args.hours) if args.start else recent_start(datetime.now(UTC), args.hours)
    if args.backlog_days is None:
        # A sample that sets the start date is a new installation: its first delivery holds the backlog.
        args.backlog_days = LATE_DATA_WINDOW.days if args.start_date_file else 0
    summary = generate_sample(
        args.out,
        meterpoints=args.meterpoints,
        start=start,
        hours=hours,
        seed=args.seed,
        timezone=args.settings.timezone,
        backlog=timedelta(days=args.backlog_days),
    )
    kinds = ", ".join(f"{kind}={count}" for kind, count in sorted(summary.kinds.items()))
    backlog = f", with the readings of the {args.backlog_days} days before" if args.backlog_days else ""
    print(
        f"wrote {summary.files} files to {args.out} ({hours} ingestion hours from {command_hour(start)} UTC{backlog}): "
        f"{kinds}"
    )
    if args.source_db:
        write_sample_source(args.source_db, summary.meterpoints, start.date(), seed=args.seed)
        print(f"wrote the source database {args.source_db} ({len(summary.meterpoints)} meterpoints)")
    if args.start_date_file:
        # scripts/run starts the partitions here, so the UI's partition views begin where the data does.
        Path(args.start_date_file).write_text(f"{start.date().isoformat()}\n")
    return 0


def _process(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    from billing_assets.partitions import DEFAULT_BATCH_HOURS
    from billing_assets.process import ProcessError, check_request
    from billing_assets.resources.spark import JavaMissingError, require_java

    if args.batch_hours is None:
        args.batch_hours = DEFAULT_BATCH_HOURS
    try:
        check_request(args.start, args.end, args.batch_hours)
    except ProcessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        require_java()
    except JavaMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from billing_assets.errors import EXIT_BY_SIGNAL, EXIT_FAILED, explain, process_log
    from billing_assets.instance import ensure_dagster_home, get_instance
    from billing_assets.process import process
    from billing_assets.resources import build_resources

    resources = build_resources(settings=settings)
    # Tracebacks and Dagster's and Spark's own logs go to the file; the terminal gets progress and one error line.
    with process_log(ensure_dagster_home()) as log:
        try:
            report = process(
                args.start,
                args.end,
                resources,
                get_instance(),
                echo=log.echo,
                batch_hours=args.batch_hours,
                load_source=not args.no_source,
            )
        except BaseException as exc:
            if isinstance(exc, SystemExit):
                raise
            number = log.received()
            if number is None and isinstance(exc, Exception):
                log.fail(exc, explain(exc, settings))
                return EXIT_FAILED
            # KeyboardInterrupt, Dagster's interruption of a run, or whatever a library made of the signal.
            number = number or signal.SIGINT
            log.fail(
                exc,
                f"stopped by {signal.Signals(number).name}; the runs in progress are marked failed: "
                "run the same command again to finish",
            )
            return EXIT_BY_SIGNAL.get(number, EXIT_FAILED)
        for step, seconds in report.seconds.items():
            print(f"{step}: {seconds:.1f}s")
        if report.source_error:
            log.error(report.source_error)
            return EXIT_FAILED
    return 0


def _sql(args: argparse.Namespace) -> int:
    try:
        from billing_assets.analyst import sql_command
        from billing_assets.analyst.sandbox import Limits

        limits = Limits(timeout=args.timeout, memory=args.memory_limit)
        return sql_command(
            args.query,
            args.warehouse,
            args.out,
            landing=args.landing,
            endpoint=args.settings.s3_endpoint_url,
            limits=limits,
            force=args.force,
        )
    except KeyboardInterrupt:
        # Ctrl-C while the command still loads its libraries: the same one line as during a query.
        print("error: stopped by Ctrl-C", file=sys.stderr)
        return 130


def _statement(args: argparse.Namespace) -> int:
    from billing_assets.statement_command import statement_command

    return statement_command(args.month, args.run, args.out, args.verify, args.settings, force=args.force)


def _seconds(text: str) -> float:
    """A positive number of seconds (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _bench(args: argparse.Namespace) -> int:
    from billing_assets.resources.spark import JavaMissingError, require_java

    try:
        require_java()
        import duckdb  # noqa: F401
        import psutil  # noqa: F401
    except (JavaMissingError, ImportError) as exc:
        print(f"error: {exc} (the bench needs Java and `pip install 'billing_assets[bench]'`)", file=sys.stderr)
        return 1
    from billing_assets.bench.run import run_bench

    return run_bench(
        args.meterpoints,
        args.hours,
        args.workdir,
        args.keep,
        args.latency,
        args.start,
        args.warehouse,
        args.markdown,
        args.agreements,
    )


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The argument parser, its defaults from ``settings`` (exposed for tests and --help)."""
    parser = argparse.ArgumentParser(prog="billing-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate-sample", help="write a deterministic sample landing zone")
    gen.add_argument("--out", default=settings.landing_uri)
    gen.add_argument("--meterpoints", type=int, default=50)
    gen.add_argument(
        "--start",
        type=_hour,
        help="first ingestion hour, UTC (default: midnight UTC at least --hours before the latest complete hour, "
        "so the sample ends at it)",
    )
    gen.add_argument("--hours", type=int, default=96)
    gen.add_argument("--start-date-file", help="also write the sample's first day (an ISO date) to this file")
    gen.add_argument(
        "--backlog-days",
        type=int,
        choices=range(8),
        metavar="{0..7}",
        help="the first ingestion hour also brings the readings of this many days before it, as a new "
        "installation's first delivery does (default: 7 with --start-date-file, else 0)",
    )
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument(
        "--source-db",
        default=settings.source_db,
        help="also write a matching SQLite source database here ('' to skip)",
    )
    gen.set_defaults(func=_generate)

    proc = commands.add_parser("process", help="process ingestion hours [start, end) and everything downstream")
    proc.add_argument("--start", type=_hour, required=True, help="first ingestion hour, YYYY-MM-DDTHH (UTC)")
    proc.add_argument("--end", type=_hour, required=True, help="end hour, exclusive")
    proc.add_argument(
        "--batch-hours",
        type=int,
        help="ingestion hours per raw_readings run (default: a day's 24; 1 = hour by hour)",
    )
    proc.add_argument(
        "--no-source", action="store_true", help="skip today's load of the source database (dimensions already loaded)"
    )
    proc.set_defaults(func=_process)

    sql = commands.add_parser(
        "sql", help="run one read-only SQL query (DuckDB) over the warehouse; every Delta table is a view"
    )
    sql.add_argument("query", help='e.g. "SELECT * FROM hourly_usage LIMIT 5"')
    sql.add_argument(
        "--out",
        help="write the result to FILE.csv or FILE.parquet instead of printing it "
        "(never inside the warehouse or the landing zone)",
    )
    sql.add_argument("--force", action="store_true", help="let --out replace an existing file")
    sql.add_argument("--warehouse", default=settings.warehouse_uri)
    sql.add_argument(
        "--landing",
        default=settings.landing_uri,
        help="the landing zone, which --out may not write into",
    )
    sql.add_argument("--timeout", type=_seconds, default=300.0, help="stop the query after SECONDS (default 300)")
    sql.add_argument(
        "--memory-limit", default="2GB", help="the most memory the query may use, e.g. 500MB, 4GB (default 2GB)"
    )
    sql.set_defaults(func=_sql)

    stmt = commands.add_parser(
        "statement", help="print, write or verify one run of a billing month's statement (read-only)"
    )
    stmt.add_argument("--month", required=True, help="the billing month, YYYY-MM (local calendar month)")
    stmt.add_argument("--run", type=int, help="the run number (default: the month's latest)")
    stmt.add_argument(
        "--out",
        help="write the lines to FILE.parquet (or .csv) instead of printing them "
        "(never inside the warehouse or the landing zone)",
    )
    stmt.add_argument("--force", action="store_true", help="let --out replace an existing file")
    stmt.add_argument(
        "--verify",
        action="store_true",
        help="recompute the run from the input versions it recorded and report any line that differs",
    )
    stmt.set_defaults(func=_statement)

    bench = commands.add_parser("bench", help="time the pipeline against plain Spark and DuckDB on generated data")
    bench.add_argument("--meterpoints", type=int, default=5000)
    bench.add_argument("--hours", type=int, default=48, help="ingestion hours to time")
    bench.add_argument("--start", type=_hour, default=_hour("2026-03-28T00"), help="first ingestion hour, UTC")
    bench.add_argument("--workdir", help="where the temporary landing zone and warehouses go (default: system temp)")
    bench.add_argument("--keep", action="store_true", help="keep the generated files and outputs")
    bench.add_argument(
        "--latency", action="store_true", help="also time one more ingestion hour end to end, warm and cold"
    )
    bench.add_argument(
        "--warehouse",
        choices=("local", "s3"),
        default="local",
        help="where the pipeline's warehouse goes: a local folder, or S3 on a local S3-compatible server (moto)",
    )
    bench.add_argument(
        "--agreements",
        type=int,
        help="also time the source load (first and daily) over a generated source of this many agreements",
    )
    bench.add_argument(
        "--markdown",
        action="store_true",
        help="print the result as one row of the history table in docs/performance.md (the report goes to stderr)",
    )
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``billing-assets`` command."""
    try:
        # Before anything imports the partitions, which are built from the settings.
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    args.settings = settings
    ignore_chosen_betas()  # a caller (a test runner) may have reset the filters since import
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

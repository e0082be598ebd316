"""``billing-assets`` with a fault armed at one table's commit: the process signals itself there.

    python -m billing_assets_tests.faults TABLE {before_commit,after_commit} {KILL,TERM,OUTAGE} -- process --start ...

``before_commit``: the executors have written the table's new data files, the Delta commit has
not been made (the window in which a killed writer leaves files no commit holds).
``after_commit``: the commit is made and nothing after it (events, other tables) has happened.
``OUTAGE`` kills the process ``FAULT_PROXY_PID`` names instead (the TCP forwarder in front of the
S3 server) and lets the command go on against an endpoint that no longer answers.
Only the commit call is wrapped; everything else is the real command, on real Spark and Delta.
"""

import os
import signal
import sys
import time

import deltalake

POINTS = ("before_commit", "after_commit")


def arm(table: str, point: str, name: str) -> None:
    """Make the first commit to ``table`` fire the fault ``name`` at ``point``."""
    original = deltalake.DeltaTable.create_write_transaction
    fired = []

    def fire() -> None:
        if fired:
            return
        fired.append(point)
        if name == "OUTAGE":
            os.kill(int(os.environ["FAULT_PROXY_PID"]), signal.SIGKILL)
            return
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
        time.sleep(60)  # the signal's default action ends the process; nothing after it may run

    def create_write_transaction(self, *args, **kwargs):
        if self.table_uri.rstrip("/").endswith(f"/{table}"):
            if point == "before_commit":
                fire()
            result = original(self, *args, **kwargs)
            fire()
            return result
        return original(self, *args, **kwargs)

    deltalake.DeltaTable.create_write_transaction = create_write_transaction


def main(argv: list[str]) -> int:
    """Arm the fault, then run the command line after ``--``."""
    table, point, name, separator, *command = argv
    assert point in POINTS and separator == "--", argv
    # A shell may have started this process with the signals ignored: the fault must act.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    arm(table, point, name)
    from billing_assets.cli import main as cli

    return cli(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

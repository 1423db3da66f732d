"""`logs` shows a trial's output and run directory; `history` filters failed points."""
from __future__ import annotations

import json
import time

SLOW = """\
import sys, time
from jobs.result import write_result
for i in range(6):
    print(f"tick {i}", flush=True)
    time.sleep(0.4)
print("warming up", file=sys.stderr, flush=True)
write_result({"loss": 1.0})
"""


def test_logs_and_history_of_a_failed_point(write_config, cli, tmp_path):
    path = write_config(retries=1, command="{python} -m jobs.examples.synthetic --center x=2 "
                                           "--center y=1 --fail-when x=3")
    assert cli("start", str(path)).returncode == 0
    failed = json.loads(cli("history", str(path), "--failed", "--json").stdout)
    assert [r["params"] for r in failed] == [{"x": 3, "y": 0}, {"x": 3, "y": 1}, {"x": 3, "y": 2}]
    table = cli("history", str(path), "--failed", "--run-dir", "--wide").stdout
    assert str(tmp_path / "work" / "trials" / "p3-0" / "attempt-2") in table
    assert "x=0" not in table

    proc = cli("logs", str(path), "x=3,y=0", "--attempt", "1")
    assert proc.returncode == 0, proc.stderr
    assert "attempt  1 of 2" in proc.stdout
    assert "failed (program exited with exit code 3; stderr: synthetic: failing on purpose)" \
        in proc.stdout
    assert f"run dir  {tmp_path / 'work' / 'trials' / 'p3-0' / 'attempt-1'}" in proc.stdout
    assert proc.stdout.rstrip().endswith("synthetic: failing on purpose")
    assert "attempt  2 of 2" in cli("logs", str(path), "3,0").stdout      # the latest, by index

    wrong = cli("logs", str(path), "x=3,y=0", "--attempt", "5")
    assert wrong.returncode == 2 and "has attempts 1, 2, not 5" in wrong.stderr
    unknown = cli("logs", str(path), "x=9,y=0")
    assert unknown.returncode == 2 and "9 is not a value of x" in unknown.stderr


def test_logs_follow_prints_output_until_the_trial_ends(write_config, cli, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    path = write_config(parameters="x = { values = [1] }", command="{python} {config_dir}/slow.py")
    assert cli("start", str(path), "--detach").returncode == 0
    deadline = time.monotonic() + 60
    while (first := cli("logs", str(path), "x=1")).returncode != 0:
        assert time.monotonic() < deadline, first.stderr
        time.sleep(0.2)
    followed = cli("logs", str(path), "x=1", "--follow", timeout=60)
    assert followed.returncode == 0, followed.stderr
    seen = first.stdout + followed.stdout
    assert all(f"tick {i}" in seen for i in range(6))
    assert "warming up" in seen
    assert "[stdout] tick 5" in followed.stdout or "\ntick 5\n" in followed.stdout
    while json.loads(cli("status", str(path), "--json").stdout)["master"]["alive"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)

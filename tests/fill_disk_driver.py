"""Runs inside a private mount namespace (`unshare -rm`): a small tmpfs holds a real `redcube train` run; the
disk fills up while it trains, then SIGTERM asks for the final checkpoint; then the disk turns read-only and a
resume is tried. Prints what happened as JSON (tests/test_faults.py checks it)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

mnt, cmd = Path(sys.argv[1]), json.loads(sys.argv[2])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
run = mnt / "run"
proc = subprocess.Popen(cmd + ["--out", str(run), "--minutes", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
deadline = time.monotonic() + 180
while not (run / "checkpoint.json").exists() and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.1)
first = json.loads((run / "checkpoint.json").read_text())["step"]
fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)  # the disk fills up while the run trains (unbuffered writes)
try:
    while True:
        os.write(fd, b"\0" * 4096)
except OSError:
    pass
os.close(fd)
time.sleep(1.0)
proc.send_signal(signal.SIGTERM)
_, full_err = proc.communicate(timeout=180)
kept = json.loads((run / "checkpoint.json").read_text())["step"]
tmp_left = [p.name for p in run.glob(".*.tmp")]
subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
ro = subprocess.run(cmd + ["--out", str(run), "--steps", "1", "--resume"], capture_output=True, text=True, timeout=180)
print(json.dumps({"full_rc": proc.returncode, "full_err": full_err, "first_step": first, "kept_step": kept,
                  "tmp_left": tmp_left, "ro_rc": ro.returncode, "ro_err": ro.stderr}))

#!/usr/bin/env python3
"""Kills crash_trainer with SIGKILL at random moments and checks after every
kill that each file in its output folder loads completely (an old or a new
version, never part of one), that the next run removes the temporaries the
killed one left, and that resuming reaches the uninterrupted run's final
weights bit for bit.

usage: crash_test.py CRASH_TRAINER [KILLS]   (PETAL_CRASH_KILLS overrides KILLS,
PETAL_CRASH_SEED fixes the random moments; the seed used is printed)
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

EPOCHS = 24


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def temporaries(folder):
    return sorted(n for n in os.listdir(folder) if ".tmp." in n)


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def check_complete(trainer, folder, when):
    r = run([trainer, "verify", folder])
    if r.returncode != 0:
        fail(f"{when}: a file is incomplete:\n{r.stdout}")


def check_finished(trainer, folder, reference, when):
    check_complete(trainer, folder, when)
    left = temporaries(folder)
    if left:
        fail(f"{when}: temporaries left after a complete run: {left}")
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        if f.read() != reference:
            fail(f"{when}: the final weights differ from the uninterrupted run's")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    trainer = sys.argv[1]
    kills_wanted = int(os.environ.get("PETAL_CRASH_KILLS", sys.argv[2] if len(sys.argv) > 2 else "20"))
    seed = int(os.environ.get("PETAL_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    os.environ.setdefault("PETAL_NUM_THREADS", "2")  # the same thread count for every run: the same sums
    start = time.monotonic()
    root = tempfile.mkdtemp(prefix="petal_crash_")
    try:
        reference_dir = os.path.join(root, "uninterrupted")
        t0 = time.monotonic()
        r = run([trainer, "train", reference_dir, str(EPOCHS)])
        run_seconds = time.monotonic() - t0
        if r.returncode != 0:
            fail(f"the uninterrupted run failed ({r.returncode}):\n{r.stdout}")
        with open(os.path.join(reference_dir, "model.safetensors"), "rb") as f:
            reference = f.read()
        check_finished(trainer, reference_dir, reference, "uninterrupted run")

        work = os.path.join(root, "killed")
        kills = completions = kills_leaving_temporaries = runs = 0
        while kills < kills_wanted:
            runs += 1
            p = subprocess.Popen([trainer, "train", work, str(EPOCHS)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            try:
                out, _ = p.communicate(timeout=rng.uniform(0.0, run_seconds))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.communicate()
                kills += 1
                if not os.path.isdir(work):
                    continue  # killed before it made its folder
                if temporaries(work):
                    kills_leaving_temporaries += 1
                check_complete(trainer, work, f"after kill {kills}")
                continue
            if p.returncode != 0:
                fail(f"run {runs} (resuming after {kills} kills) failed ({p.returncode}):\n{out}")
            completions += 1
            check_finished(trainer, work, reference, f"run {runs}, completed after {kills} kills")
            shutil.rmtree(work)  # the next kills hit a fresh training again

        r = run([trainer, "train", work, str(EPOCHS)])
        if r.returncode != 0:
            fail(f"the last resumed run failed ({r.returncode}):\n{r.stdout}")
        check_finished(trainer, work, reference, "the last resumed run")
        print(f"seed {seed}: {kills} SIGKILLs ({kills_leaving_temporaries} left a temporary) over {runs} runs, "
              f"{completions + 1} completed runs equal to the uninterrupted one bit for bit; "
              f"one run {run_seconds:.2f}s, the test {time.monotonic() - start:.1f}s", flush=True)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

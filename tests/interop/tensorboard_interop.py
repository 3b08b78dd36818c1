#!/usr/bin/env python3
"""petal's TensorBoard event files, read by TensorFlow (and TensorBoard's
EventAccumulator where the `tensorboard` package is importable).

tensorboard_tool runs a short fit() with nn::TensorBoard(update_freq=2) and
writes its History; tf.compat.v1.train.summary_iterator must read every
record of both files (TensorFlow checks the masked CRC32Cs), the first event
must be file_version "brain.Event:2", and each tag's (step, value) series
must equal History's values as float32 (Keras 3's tags: epoch_loss,
epoch_accuracy, epoch_auc, epoch_learning_rate in train/, the val_ figures
without their prefix in validation/).

Usage: tensorboard_interop.py TOOL WORKDIR. Exits 77 when TensorFlow cannot
be imported.
"""
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    import numpy as np
    import tensorflow as tf
except Exception as error:  # any import failure means "not available here"
    print(f"SKIP: tensorflow not importable ({error}); run scripts/install_interop_venv.sh")
    sys.exit(77)

tool, work = sys.argv[1], sys.argv[2]
log_dir = os.path.join(work, "logs")
subprocess.run([tool, log_dir], check=True)
with open(os.path.join(log_dir, "history.json")) as f:
    run = json.load(f)
history, steps = run["history"], run["steps"]
failures = []


def series_tf(path):
    events = list(tf.compat.v1.train.summary_iterator(path))
    if not events or events[0].file_version != "brain.Event:2":
        failures.append(f"{path}: first event is not file_version brain.Event:2")
    out = {}
    for event in events[1:]:
        for value in event.summary.value:
            out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def per_epoch(values):
    return [(e, float(np.float32(v))) for e, v in enumerate(values)]


def expect(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got}, want {want}")


for path in (run["train"], run["validation"]):
    name = os.path.basename(path)
    if not name.startswith("events.out.tfevents."):
        failures.append(f"{path}: not an events.out.tfevents.* name")

train, val = series_tf(run["train"]), series_tf(run["validation"])
for key in ("loss", "accuracy", "auc"):
    expect(f"train epoch_{key}", train.get(f"epoch_{key}"), per_epoch(history[key]))
    expect(f"validation epoch_{key}", val.get(f"epoch_{key}"), per_epoch(history[f"val_{key}"]))
expect("train epoch_learning_rate", train.get("epoch_learning_rate"), per_epoch(history["lr"]))
expect("batch_loss steps", [s for s, _ in train.get("batch_loss", [])], list(range(2, steps + 1, 2)))
expect("evaluation_loss_vs_iterations steps", [s for s, _ in val.get("evaluation_loss_vs_iterations", [])],
       [steps // 3 * (e + 1) for e in range(3)])

try:
    from tensorboard.backend.event_processing import event_accumulator
except Exception:
    event_accumulator = None
    print("note: tensorboard not importable; EventAccumulator check skipped")
if event_accumulator is not None:
    for sub, prefix in (("train", ""), ("validation", "val_")):
        acc = event_accumulator.EventAccumulator(os.path.join(log_dir, sub))
        acc.Reload()
        scalars = acc.Tags().get("scalars", [])
        for key in ("loss", "accuracy"):
            tag = f"epoch_{key}"
            if tag not in scalars:
                failures.append(f"EventAccumulator {sub}: no scalar {tag} (has {scalars})")
                continue
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            expect(f"EventAccumulator {sub} {tag}", got, per_epoch(history[prefix + key]))

if failures:
    print("\n".join(f"FAIL: {f}" for f in failures))
    sys.exit(1)
print(f"OK: {sum(len(v) for v in train.values())} train and {sum(len(v) for v in val.values())} validation "
      f"scalars read by TensorFlow {tf.__version__} equal History's")

#!/usr/bin/env python3
"""Keras <-> petal weight files, checked against real Keras (TensorFlow backend).

1. Keras writes MobileNetV2 weights as Keras 3 .weights.h5 and as the Keras 2
   legacy .h5 layout; petal loads each and must predict what Keras predicts.
2. The lab's model (frozen MobileNetV2 base + Flatten + Dense(5, softmax)) is
   written by Keras as a legacy .h5 (a nested model group); petal loads it.
3. petal makes its own random lab model, saves model.h5; Keras builds the
   lab's model with pretrained_model.trainable = False, loads the file with
   model.load_weights and must predict what petal predicted.

Usage: keras_interop.py TOOL WORKDIR (TOOL = tests/interop/keras_weights_tool).
Exits 77 when TensorFlow/Keras or h5py cannot be imported.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
try:
    import numpy as np
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format
except Exception as error:  # any import failure means "not available here"
    print(f"SKIP: Keras/h5py not importable ({error}); run scripts/install_interop_venv.sh")
    sys.exit(77)
import subprocess

TOLERANCE = 1e-4
tool, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
rng = np.random.default_rng(7)
failures = []


def randomize(model):
    for layer in model.layers:
        values = []
        for w in layer.weights:
            name = w.path.split("/")[-1]
            shape = tuple(w.shape)
            if name in ("gamma", "moving_variance"):
                values.append(rng.uniform(0.5, 1.5, shape))
            elif name in ("kernel", "depthwise_kernel"):
                values.append(rng.normal(0, 1 / np.sqrt(np.prod(shape[:-1])), shape))
            else:
                values.append(rng.normal(0, 0.1, shape))
        if values:
            layer.set_weights([v.astype(np.float32) for v in values])


def petal(args, size, batch, x):
    path_in, path_out = os.path.join(work, "x.raw"), os.path.join(work, "y.raw")
    x.astype(np.float32).tofile(path_in)
    command = [tool, "--size", str(size), "--batch", str(batch), "--input", path_in, "--output", path_out] + args
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return np.fromfile(path_out, dtype=np.float32)


def compare(what, expected, got):
    expected = np.asarray(expected, dtype=np.float32).ravel()
    diff = float(np.max(np.abs(expected - got))) if expected.shape == got.shape else float("inf")
    same_classes = expected.shape == got.shape
    # Outputs near 1/classes everywhere would match whatever the weights.
    spread = float(np.std(expected))
    status = "ok" if diff <= TOLERANCE and spread > 1e-3 else "FAIL"
    print(f"{status}: {what}: max |keras - petal| = {diff:.2e} (outputs' std {spread:.3f}, max {expected.max():.3f})")
    if status != "ok" or not same_classes:
        failures.append(what)


size, batch = 96, 2
x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)

# 1. MobileNetV2 with top, written by Keras in both layouts.
model = keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None, classes=7)
randomize(model)
expected = model.predict(x, verbose=0)
v3 = os.path.join(work, "keras3.weights.h5")
model.save_weights(v3)
compare("MobileNetV2 from Keras 3 .weights.h5",
        expected, petal(["--model", "mobilenet", "--classes", "7", "--weights", v3], size, batch, x))
legacy = os.path.join(work, "keras2.h5")
with h5py.File(legacy, "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
compare("MobileNetV2 from a Keras 2 legacy .h5",
        expected, petal(["--model", "mobilenet", "--classes", "7", "--weights", legacy], size, batch, x))


def lab_model():
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None)
    base.trainable = False
    return keras.Sequential([base, keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")]), base


# 2. The lab's model written by Keras (nested group), read by petal.
lab, base = lab_model()
randomize(base)
randomize(lab)
expected = lab.predict(x, verbose=0)
lab_file = os.path.join(work, "lab_keras.h5")
with h5py.File(lab_file, "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, lab)
compare("lab model (nested base) from a Keras legacy .h5",
        expected, petal(["--model", "lab", "--weights", lab_file], size, batch, x))

# 3. petal's own model.h5 loaded by Keras's model.load_weights.
petal_file = os.path.join(work, "petal_lab.h5")
got = petal(["--model", "lab", "--random", "11", "--save", petal_file], size, batch, x)
lab, _ = lab_model()
lab.load_weights(petal_file)
compare("petal's model.h5 loaded by Keras (lab model, frozen base)", lab.predict(x, verbose=0), got)

print(f"{'FAILED: ' + ', '.join(failures) if failures else 'all interop checks passed'} "
      f"(keras {keras.__version__})")
sys.exit(1 if failures else 0)

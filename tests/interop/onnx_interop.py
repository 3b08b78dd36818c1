#!/usr/bin/env python3
"""petal's ONNX export, run in ONNX Runtime against petal's own forward pass.

For each model (random weights, random preprocessed input), onnx_export_tool
runs petal's forward and writes model.onnx; ONNX Runtime (all graph
optimisations) runs the file on the same input, and the outputs must agree
within 1e-4. One batch size differs from the others, so the symbolic batch
dimension is exercised too. Where the `onnx` package is importable, its
checker (with shape inference) must accept every file as well.

Usage: onnx_interop.py TOOL WORKDIR (TOOL = tests/interop/onnx_export_tool).
Exits 77 when onnxruntime cannot be imported.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import onnxruntime as ort
except Exception as error:  # any import failure means "not available here"
    print(f"SKIP: onnxruntime not importable ({error}); run scripts/install_interop_venv.sh")
    sys.exit(77)

try:
    import onnx
except Exception:
    onnx = None

TOLERANCE = 1e-4
tool, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
rng = np.random.default_rng(17)
failures = []


def check(what, args, size, batch, seed, x=None, reference=None):
    if x is None:
        x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    path_in, path_out = os.path.join(work, "x.raw"), os.path.join(work, "y.raw")
    onnx_path = os.path.join(work, "model.onnx")
    x.tofile(path_in)
    weights = ["--random", str(seed)] if seed is not None else []
    command = [tool, "--size", str(size), "--batch", str(batch), "--input", path_in, "--output", path_out,
               "--onnx", onnx_path] + weights + args
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"FAIL: {what}: {' '.join(command)} failed: {result.stderr.strip()}")
        failures.append(what)
        return
    petal = np.fromfile(path_out, dtype=np.float32)
    if onnx is not None:
        try:
            onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
        except Exception as error:
            print(f"FAIL: {what}: the onnx checker refuses the file: {error}")
            failures.append(what)
            return
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    shape_ok = len(inputs) == 1 and inputs[0].shape == ["N", size, size, 3]
    got = session.run(None, {inputs[0].name: x})[0]
    diff = float(np.max(np.abs(got.ravel() - petal))) if got.size == petal.size else float("inf")
    # Outputs near 1/classes everywhere would match whatever the weights.
    spread = float(np.std(petal))
    ok = diff <= TOLERANCE and spread > 1e-3 and shape_ok
    extra = ""
    if reference is not None:
        reference_diff = float(np.max(np.abs(got.ravel() - reference.ravel())))
        ok = ok and reference_diff <= TOLERANCE and int(np.argmax(got)) == int(np.argmax(reference))
        extra = f"; vs the independent reference {reference_diff:.2e}, class {int(np.argmax(got))}"
    print(f"{'ok' if ok else 'FAIL'}: {what}: max |onnxruntime - petal| = {diff:.2e} over {got.shape} "
          f"(outputs' std {spread:.3f}; input {inputs[0].name} {inputs[0].shape}{extra})")
    if not ok:
        failures.append(what)


check("MobileNetV2 64x64, 7 classes", ["--model", "mobilenet", "--classes", "7"], 64, 3, 1)
check("MobileNetV2 75x75 (odd sizes: padding on both sides)", ["--model", "mobilenet", "--classes", "10"], 75, 1, 5)
check("lab model 96x96 (frozen base, Flatten, Dense(5, softmax))", ["--model", "lab", "--head", "flatten"], 96, 2, 2)
check("lab model 96x96, GlobalAveragePooling2D head", ["--model", "lab", "--head", "gap"], 96, 2, 3)
check("flowers_dense 32x32 (Flatten, Dense 500/50/5)", ["--model", "dense"], 32, 4, 4)
check("Pad, BatchNormalization, Residual, depth multiplier 2, MatMul, GlobalMaxPool", ["--model", "misc"], 21, 3, 6)

# The ImageNet weights on a real photo, against the shared folder's reference
# logits (an independent implementation), when the shared folder is there.
models = os.path.join(os.environ.get("PETAL_SHARED_DIR", ""), "models")
weights = os.path.join(models, "mobilenet_v2_1.0_imagenet.safetensors")
reference_input = os.path.join(models, "reference", "grace_hopper_192_input.bin")
if os.path.isfile(weights) and os.path.isfile(reference_input):
    photo = np.fromfile(reference_input, dtype=np.float32).reshape(1, 192, 192, 3)
    logits = np.fromfile(os.path.join(models, "reference", "grace_hopper_192_logits.bin"), dtype=np.float32)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    check("MobileNetV2 192x192, ImageNet weights, Grace Hopper photo",
          ["--model", "mobilenet", "--weights", weights], 192, 1, None, photo, probabilities)
else:
    print(f"(no {weights}: the ImageNet-weights check is left out)")

print(f"{'FAILED: ' + ', '.join(failures) if failures else 'all ONNX checks passed'} "
      f"(onnxruntime {ort.__version__}, onnx checker {onnx.__version__ if onnx else 'not installed'})")
sys.exit(1 if failures else 0)

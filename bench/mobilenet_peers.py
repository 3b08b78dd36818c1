"""Peer references for bench/mobilenet.cpp: one row, one peer, every standard
fast path of that peer, on the weights and the input that petal wrote.

    mobilenet_peers.py --peer torch|onnxruntime|tensorflow --row ROW --dir D
                       --threads T --repeats R [--no-compile] [--list]

petal (bench/mobilenet) writes into D, per row:
    ROW.safetensors  the model's weights under petal's (Keras) names
    ROW.onnx         inference rows: petal's ONNX export of the same model
    ROW.x.f32        the input batch, float32 NHWC [N, 192, 192, 3]
    ROW.y.f32        inference rows: petal's output [N, classes]
    ROW.loss         training rows: petal's loss of the first step (text)
and this script prints one JSON object per variant it tried:
    {"row", "peer", "variant", "value", "unit", "max_abs_diff", "version", ...}
or, for a variant that failed, {"row", "peer", "variant", "error"}. value is
images/s (MiB for finetune_peak_rss); max_abs_diff is against petal's output
(inference rows) or petal's loss of the first step (training rows).

Rows (the same definitions as petal's side, bench/mobilenet.cpp):
  inference_b64, inference_b1   MobileNetV2 with its top (1000 classes)
  frozen_step_b64               frozen base (BN inference) + Flatten + Dense(5), Adam 1e-3
  finetune_step_b64             flowers_transfer --fine-tune: everything trainable
                                except BN (inference mode, gamma/beta fixed),
                                Flatten + Dense(5), Adam 1e-5
  finetune_trainbn_step_b64     MobileNetV2(classes=5): GAP + Dense(5), BN in
                                training mode, SGD 0.01 momentum 0.9
  dense_step_b64                the lab's dense model (Flatten, 500, 50, 5), Adam 1e-3
  finetune_peak_rss             3 finetune steps; peak resident set (MiB) with
                                the import baseline (after importing the
                                framework, before any model) as import_mib

Variants, per peer (the best is kept by bench/mobilenet, all are reported):
  torch        eager (inference_mode for inference, channels_last),
               optimize_for_inference (frozen TorchScript: BN folded, oneDNN
               prepacked convolutions), compile (torch.compile; skipped with
               --no-compile, recorded as an error when it fails)
  onnxruntime  ort_enable_all (every graph optimisation, intra-op threads = T)
  tensorflow   tf_function (Keras model called inside tf.function), and for
               inference tf_function_xla (jit_compile=True)
The Keras/PyTorch models are the same network as petal's: TensorFlow's
"same" padding (stride 2 pads 0 before and 1 after), BN epsilon 1e-3.
"""
import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time
import warnings

import numpy as np

# torch.jit (trace, freeze, optimize_for_inference) is deprecated in favour of
# torch.compile but still one of the standard fast paths measured here.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="torch")

SIZE = 192
ROWS = ["inference_b64", "inference_b1", "frozen_step_b64", "finetune_step_b64", "finetune_trainbn_step_b64",
        "dense_step_b64", "finetune_peak_rss"]
# MobileNetV2 (alpha 1.0): (expansion, channels, repeats, first stride)
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_seconds(fn, repeats, warmup=2, min_warmup_seconds=0.5):
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < min_warmup_seconds:
        fn()
        done += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load_safetensors(path):
    """{layer: {weight: array}} from petal's file ("prefix/layer/weight" keys)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    layers = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        assert info["dtype"] == "F32", key
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=np.float32).reshape(info["shape"]).copy()
        parts = key.split("/")
        layers.setdefault(parts[-2], {})[parts[-1]] = array
    return layers


def read_f32(path, shape):
    return np.fromfile(path, dtype=np.float32).reshape(shape)


def openblas_core():
    """OpenBLAS's core name in this process (whichever OpenBLAS is loaded), or ''."""
    try:
        with open("/proc/self/maps") as maps:
            libs = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return ""
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for symbol in ("openblas_get_corename", "openblas_get_corename64_", "scipy_openblas_get_corename64_"):
            fn = getattr(handle, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return f"{fn().decode()} ({os.path.basename(lib)})"
    return ""


class Emitter:
    def __init__(self, args, version, extra=None):
        self.args, self.version, self.extra = args, version, extra or {}

    def ok(self, variant, value, unit, diff, **more):
        row = {"row": self.args.row, "peer": self.args.peer, "variant": variant, "value": value, "unit": unit,
               "max_abs_diff": diff, "version": self.version, "threads": self.args.threads,
               "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""), "openblas_core": openblas_core()}
        row.update(self.extra)
        row.update(more)
        print(json.dumps(row), flush=True)

    def error(self, variant, exc):
        text = f"{type(exc).__name__}: {exc}".replace('"', "'").replace("\\", "/").replace("\n", " ")[:300]
        print(json.dumps({"row": self.args.row, "peer": self.args.peer, "variant": variant, "error": text}),
              flush=True)


def row_kind(row):
    if row.startswith("inference"):
        return "inference"
    return row.rsplit("_b", 1)[0] if row != "finetune_peak_rss" else "finetune_step"


# ---------------------------------------------------------------- PyTorch


def torch_rows(args, files):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    import_mib = rss_mib()
    blas = "mkl" if torch.backends.mkl.is_available() else "openblas?"
    emit = Emitter(args, torch.__version__, {"blas": blas})
    W = load_safetensors(files["weights"])

    def conv(layer, stride, groups=1):
        w = W[layer]
        if groups == 1:
            k = torch.from_numpy(w["kernel"].transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
        else:
            k = torch.from_numpy(w["depthwise_kernel"].transpose(2, 3, 0, 1).copy())  # [h,w,C,1] -> [C,1,h,w]
        m = tnn.Conv2d(k.shape[1] * groups, k.shape[0], k.shape[2], stride,
                       (k.shape[2] // 2) if stride == 1 else 0, groups=groups, bias="bias" in w)
        m.weight.data.copy_(k)
        if "bias" in w:
            m.bias.data.copy_(torch.from_numpy(w["bias"]))
        seq = [tnn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
        return seq + [m]

    def bn(layer):
        w = W[layer]
        m = tnn.BatchNorm2d(w["gamma"].shape[0], eps=1e-3, momentum=0.001)
        m.weight.data.copy_(torch.from_numpy(w["gamma"]))
        m.bias.data.copy_(torch.from_numpy(w["beta"]))
        m.running_mean.copy_(torch.from_numpy(w["moving_mean"]))
        m.running_var.copy_(torch.from_numpy(w["moving_variance"]))
        return m

    class Block(tnn.Module):
        def __init__(self, prefix, expand, stride, residual):
            super().__init__()
            layers = []
            if expand:
                layers += conv(prefix + "expand", 1) + [bn(prefix + "expand_BN"), tnn.ReLU6()]
            layers += conv(prefix + "depthwise", stride, groups=W[prefix + "depthwise"]["depthwise_kernel"].shape[2])
            layers += [bn(prefix + "depthwise_BN"), tnn.ReLU6()]
            layers += conv(prefix + "project", 1) + [bn(prefix + "project_BN")]
            self.body = tnn.Sequential(*layers)
            self.residual = residual

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    def base():
        layers = conv("Conv1", 2) + [bn("bn_Conv1"), tnn.ReLU6()]
        cin, index = 32, 0
        for t, c, n, s in SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                prefix = "expanded_conv_" if index == 0 else f"block_{index}_"
                layers.append(Block(prefix, t != 1, stride, stride == 1 and cin == c))
                cin, index = c, index + 1
        layers += conv("Conv_1", 1) + [bn("Conv_1_bn"), tnn.ReLU6()]
        return tnn.Sequential(*layers)

    def linear(layer):
        w = W[layer]
        m = tnn.Linear(*w["kernel"].shape)
        m.weight.data.copy_(torch.from_numpy(w["kernel"].T.copy()))
        m.bias.data.copy_(torch.from_numpy(w["bias"]))
        return m

    class NhwcFlatten(tnn.Module):  # Keras's Flatten order (H, W, C)
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    class Gap(tnn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    x_np = read_f32(files["x"], (-1, SIZE, SIZE, 3))
    n = x_np.shape[0]
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels_last
    kind = row_kind(args.row)

    if kind == "inference":
        model = tnn.Sequential(base(), Gap(), linear("predictions"), tnn.Softmax(dim=1)).eval()
        model = model.to(memory_format=torch.channels_last)
        expected = read_f32(files["y"], (n, -1))
        variants = [("eager", lambda: model)]

        def frozen():
            with torch.inference_mode(False), torch.no_grad():
                traced = torch.jit.trace(model, x)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

        variants.append(("optimize_for_inference", frozen))
        if not args.no_compile:
            variants.append(("compile", lambda: torch.compile(model)))
        for name, make in variants:
            try:
                fn = make()
                with torch.inference_mode():
                    diff = float(np.abs(fn(x).float().numpy() - expected).max())
                    s = median_seconds(lambda: fn(x), args.repeats)
                emit.ok(name, n / s, "img/s", diff)
            except Exception as exc:  # noqa: BLE001 -- record and go on with the other variants
                emit.error(name, exc)
        return

    expected_loss = float(open(files["loss"]).read())
    y = torch.arange(n) % 5
    if kind == "dense_step":
        model = tnn.Sequential(tnn.Flatten(), linear("dense"), tnn.ReLU(), linear("dense_1"), tnn.ReLU(),
                               linear("dense_2"))
        x = torch.from_numpy(x_np)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        frozen_base = None
    elif kind == "finetune_trainbn_step":
        model = tnn.Sequential(base(), Gap(), linear("predictions")).to(memory_format=torch.channels_last).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        frozen_base = None
    else:  # frozen_step, finetune_step: base + Flatten + Dense(5), BN in inference mode
        b = base().to(memory_format=torch.channels_last).eval()
        head = tnn.Sequential(NhwcFlatten(), linear("dense"))
        if kind == "frozen_step":
            for p in b.parameters():
                p.requires_grad_(False)
            frozen_base, model = b, head
            opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        else:
            for m in b.modules():
                if isinstance(m, tnn.BatchNorm2d):
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)
            frozen_base, model = None, tnn.Sequential(b, head)
            opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        if frozen_base is not None:
            with torch.no_grad():
                f = frozen_base(x)
            out = model(f)
        else:
            out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        if not losses:
            losses.append(float(loss.detach()))

    if args.row == "finetune_peak_rss":
        for _ in range(3):
            step()
        emit.ok("eager", rss_mib(), "MiB", abs(losses[0] - expected_loss), import_mib=import_mib)
        return
    s = median_seconds(step, args.repeats, warmup=1, min_warmup_seconds=0)
    emit.ok("eager", n / s, "img/s", abs(losses[0] - expected_loss))


# ------------------------------------------------------------- ONNX Runtime


def onnxruntime_rows(args, files):
    import onnxruntime as ort

    emit = Emitter(args, ort.__version__)
    if row_kind(args.row) != "inference":
        return  # inference only
    x = read_f32(files["x"], (-1, SIZE, SIZE, 3))
    expected = read_f32(files["y"], (x.shape[0], -1))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(files["onnx"], options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        run = lambda: session.run(None, {name: x})[0]  # noqa: E731
        diff = float(np.abs(run() - expected).max())
        emit.ok("ort_enable_all", x.shape[0] / median_seconds(run, args.repeats), "img/s", diff)
    except Exception as exc:  # noqa: BLE001
        emit.error("ort_enable_all", exc)


# --------------------------------------------------------------- TensorFlow


def tensorflow_rows(args, files):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import keras

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import_mib = rss_mib()
    emit = Emitter(args, f"tensorflow {tf.__version__}, keras {keras.__version__}")
    W = load_safetensors(files["weights"])
    kind = row_kind(args.row)

    def set_weights(model):
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                set_weights(layer)
                continue
            if not layer.weights:
                continue
            w = W[layer.name]
            if isinstance(layer, keras.layers.BatchNormalization):
                values = [w["gamma"], w["beta"], w["moving_mean"], w["moving_variance"]]
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                values = [w["depthwise_kernel"]] + ([w["bias"]] if "bias" in w else [])
            else:
                values = [w["kernel"]] + ([w["bias"]] if "bias" in w else [])
            layer.set_weights(values)

    x_np = read_f32(files["x"], (-1, SIZE, SIZE, 3))
    n = x_np.shape[0]
    x = tf.constant(x_np)
    if kind == "inference":
        model = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), weights=None, include_top=True)
        set_weights(model)
        expected = read_f32(files["y"], (n, -1))
        for name, jit in (("tf_function", False), ("tf_function_xla", True)):
            try:
                fn = tf.function(lambda t: model(t, training=False), jit_compile=jit)
                diff = float(np.abs(fn(x).numpy() - expected).max())
                emit.ok(name, n / median_seconds(lambda: fn(x), args.repeats), "img/s", diff)
            except Exception as exc:  # noqa: BLE001
                emit.error(name, exc)
        return

    expected_loss = float(open(files["loss"]).read())
    y = tf.one_hot(np.arange(n) % 5, 5)
    if kind == "dense_step":
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                                  keras.layers.Dense(500, "relu", name="dense"),
                                  keras.layers.Dense(50, "relu", name="dense_1"),
                                  keras.layers.Dense(5, "softmax", name="dense_2")])
        opt = keras.optimizers.Adam(1e-3)
    elif kind == "finetune_trainbn_step":
        model = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), weights=None, include_top=True, classes=5)
        opt = keras.optimizers.SGD(0.01, momentum=0.9)
    else:
        base = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), weights=None, include_top=False)
        model = keras.Sequential([base, keras.layers.Flatten(), keras.layers.Dense(5, "softmax", name="dense")])
        if kind == "frozen_step":
            base.trainable = False
            opt = keras.optimizers.Adam(1e-3)
        else:  # BN layers frozen: Keras then runs them in inference mode
            for layer in base.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
            opt = keras.optimizers.Adam(1e-5)
    set_weights(model)
    loss_fn = keras.losses.CategoricalCrossentropy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    first = float(step())
    if args.row == "finetune_peak_rss":
        for _ in range(2):
            step()
        emit.ok("tf_function", rss_mib(), "MiB", abs(first - expected_loss), import_mib=import_mib)
        return
    s = median_seconds(lambda: step().numpy(), args.repeats, warmup=1, min_warmup_seconds=0)
    emit.ok("tf_function", n / s, "img/s", abs(first - expected_loss))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer", choices=["torch", "onnxruntime", "tensorflow"], required=True)
    parser.add_argument("--row", choices=ROWS, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    files = {k: os.path.join(args.dir, f"{args.row}.{ext}")
             for k, ext in (("weights", "safetensors"), ("onnx", "onnx"), ("x", "x.f32"), ("y", "y.f32"),
                            ("loss", "loss"))}
    try:
        {"torch": torch_rows, "onnxruntime": onnxruntime_rows, "tensorflow": tensorflow_rows}[args.peer](args, files)
    except ImportError as exc:
        print(json.dumps({"row": args.row, "peer": args.peer, "variant": "-",
                          "error": f"not installed: {exc}".replace('"', "'")}), flush=True)
        sys.exit(0)


if __name__ == "__main__":
    main()

"""PyTorch reference for bench/conv.cpp: the same MobileNetV2 layers
(channels_last, float32) timed with the same method (median of repeats after
a warm-up). Each positional argument is one layer:
    name,kind,variant,H,W,Cin,Cout,k,stride,relu6
(kind: conv | depthwise | pointwise | fused; variant for fused blocks:
depthwise | pointwise) and prints one JSON object per layer and pass:
    {"name": ..., "pass": "forward" | "backward" | "inference", "ms": ...}
Usage: conv_torch.py --batch N --threads T --repeats R LAYER...
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


# The same warm-up as bench/conv.cpp (bench::kSteadyWarmupSeconds): at least
# one call and at least 50 ms.
MIN_WARMUP_SECONDS = 0.05


def median_ms(fn, repeats, warmup=1):
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < MIN_WARMUP_SECONDS:
        fn()
        done += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def channels_last(t):
    return t.contiguous(memory_format=torch.channels_last)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("layers", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    for spec in args.layers:
        fields = spec.split(",")
        name, kind, variant = fields[0], fields[1], fields[2]
        h, w, cin, cout, k, stride, relu6 = (int(f) for f in fields[3:10])
        n = args.batch
        depthwise = kind == "depthwise" or (kind == "fused" and variant == "depthwise")
        groups = cin if depthwise else 1
        pad = k // 2  # same output size as TensorFlow's "same" (symmetric, never costlier)
        x = channels_last(torch.randn(n, cin, h, w))
        weight = channels_last(torch.randn(cout, cin // groups, k, k) * 0.1)

        def conv(inp, wt):
            return F.conv2d(inp, wt, None, stride, pad, 1, groups)

        def emit(pass_name, ms):
            print(json.dumps({"name": name, "pass": pass_name, "ms": ms}), flush=True)

        if kind != "fused":
            with torch.no_grad():
                emit("forward", median_ms(lambda: conv(x, weight), args.repeats))
            xg = x.detach().requires_grad_()
            wg = weight.detach().requires_grad_()
            out = conv(xg, wg)
            grad = channels_last(torch.randn_like(out))
            emit("backward", median_ms(lambda: torch.autograd.grad(out, [xg, wg], grad, retain_graph=True),
                                       args.repeats))
            continue

        gamma = torch.rand(cout) + 0.5
        beta = torch.rand(cout)
        running_mean = torch.zeros(cout)
        running_var = torch.ones(cout)

        def block(inp, wt, g, b, training):
            y = F.batch_norm(conv(inp, wt), running_mean, running_var, g, b, training, 0.001, 1e-3)
            return F.hardtanh(y, 0.0, 6.0) if relu6 else y

        with torch.no_grad():
            emit("inference", median_ms(lambda: block(x, weight, gamma, beta, False), args.repeats))
        xg = x.detach().requires_grad_()
        wg = weight.detach().requires_grad_()
        gg = gamma.detach().requires_grad_()
        bg = beta.detach().requires_grad_()
        emit("forward", median_ms(lambda: block(xg, wg, gg, bg, True), args.repeats))
        out = block(xg, wg, gg, bg, True)
        grad = channels_last(torch.randn_like(out))
        emit("backward", median_ms(lambda: torch.autograd.grad(out, [xg, wg, gg, bg], grad, retain_graph=True),
                                   args.repeats))


if __name__ == "__main__":
    main()

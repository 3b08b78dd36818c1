"""PyTorch reference for bench/conv.cpp: the same MobileNetV2 layers
(channels_last, float32) timed with the same method (median of repeats after
a warm-up). Each positional argument is one layer:
    name,kind,variant,H,W,Cin,Cout,k,stride,relu6
(kind: conv | depthwise | pointwise | fused; variant for fused blocks:
depthwise | pointwise) and prints one JSON object per layer, pass and variant:
    {"name": ..., "pass": "forward" | "backward" | "inference", "variant": ..., "ms": ...}
Variants (bench/conv keeps the fastest and names it): "eager" (torch.nn.functional
under no_grad, or autograd for backward) for every pass; for the passes that
run without gradients (forward of a plain layer, inference of a fused block)
also "optimize_for_inference": the layer as a module (Conv2d, + BatchNorm2d in
eval mode + Hardtanh), traced, frozen and optimised by
torch.jit.optimize_for_inference (batch norm folded into the convolution,
oneDNN's prepacked weights), when it works (a failure is reported on stderr).
Usage: conv_torch.py --batch N --threads T --repeats R LAYER...
"""
import argparse
import json
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F

# torch.jit (trace, freeze, optimize_for_inference) is deprecated in favour of
# torch.compile but still one of the standard fast paths measured here.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="torch")


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


def optimized_for_inference(module, example):
    """torch.jit.optimize_for_inference of the traced module, or None."""
    try:
        with torch.no_grad():
            traced = torch.jit.trace(module.eval(), example)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception as exc:  # noqa: BLE001 -- the eager variant still runs
        print(f"conv_torch.py: optimize_for_inference failed: {exc}", file=sys.stderr)
        return None


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

        def emit(pass_name, ms, variant="eager"):
            print(json.dumps({"name": name, "pass": pass_name, "variant": variant, "ms": ms}), flush=True)

        def module(bn_relu6):
            m = torch.nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False)
            m.weight.data.copy_(weight)
            if bn_relu6 is None:
                return m.to(memory_format=torch.channels_last)
            bn = torch.nn.BatchNorm2d(cout, eps=1e-3)
            bn.weight.data.copy_(gamma)
            bn.bias.data.copy_(beta)
            layers = [m, bn] + ([torch.nn.Hardtanh(0.0, 6.0)] if bn_relu6 else [])
            return torch.nn.Sequential(*layers).to(memory_format=torch.channels_last)

        def emit_optimized(pass_name, bn_relu6):
            frozen = optimized_for_inference(module(bn_relu6), x)
            if frozen is not None:
                with torch.no_grad():
                    emit(pass_name, median_ms(lambda: frozen(x), args.repeats), "optimize_for_inference")

        if kind != "fused":
            with torch.no_grad():
                emit("forward", median_ms(lambda: conv(x, weight), args.repeats))
            emit_optimized("forward", None)
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
        emit_optimized("inference", bool(relu6))
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

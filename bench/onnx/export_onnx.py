"""Exports an all-dense dkp-lstm model file as an ONNX one-token step graph, and checks it natively."""

import argparse
import json
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = {"F16": np.float16, "F32": np.float32, "U8": np.uint8, "U16": np.uint16, "I32": np.int32, "I64": np.int64, "I8": np.int8}
OPSET = 17  # Split takes its sizes as an input from 13 on; LogSoftmax works on one axis from 13 on


def read_model(path):
    """(config, {name: f32 array}) of a dkp-lstm safetensors file (docs/format.md)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__")
    if meta.get("format") != "dkp-lstm" or meta.get("format_version") != "1":
        sys.exit(f"{path}: not a dkp-lstm version 1 file")
    base, raw = 8 + n, {}
    for name, t in header.items():
        start, end = t["data_offsets"]
        raw[name] = np.frombuffer(data[base + start : base + end], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    tensors = {}
    for name, a in raw.items():
        if name.endswith(".absmax"):
            continue
        if a.dtype == np.int8:
            # docs/format.md, int8 values: absmax[r] * fl32(q / 127), one f32 product, as the runtime reads it.
            level = a.astype(np.float32) / np.float32(127)
            tensors[name] = raw[name + ".absmax"].astype(np.float32)[:, None] * level
        else:
            tensors[name] = a.astype(np.float32)  # f16 -> f32 is exact
    config = json.loads(meta["config"])
    tokens = config["tokenizer"]["tokens"]
    if isinstance(tokens, str):  # docs/format.md: one string of space-separated tokens, or an array
        config["tokenizer"]["tokens"] = tokens.split(" ")
    return config, tensors


def check_dense(config):
    """Exits with the offending weights unless every matrix is dense (the embedding may be tied)."""
    kinds = {"embedding": config["embedding"]["kind"], "output": config["output"]["kind"]}
    for i, layer in enumerate(config["layers"]):
        for key in ("w", "w_ih", "w_hh"):
            if key in layer:
                kinds[f"layers.{i}.{key}"] = layer[key]["kind"]
    bad = {k: v for k, v in kinds.items() if v != "dense" and not (k == "embedding" and v == "tied")}
    if bad:
        sys.exit("only all-dense models have an ONNX equivalent here; not dense: "
                 + ", ".join(f"{k} ({v})" for k, v in bad.items()))


def gate_weight(layer, i, t):
    """The fused 4H x (I + H) gate matrix applied to [x; h]."""
    if "w" in layer:
        return t[f"layers.{i}.w.weight"]
    return np.concatenate([t[f"layers.{i}.w_ih.weight"], t[f"layers.{i}.w_hh.weight"]], axis=1)


def build_graph(config, t, part="step"):
    """ONNX step: (token, h_l, c_l) -> (logprobs, h_l_out, c_l_out) for every layer l.

    part "lstm" keeps only the LSTM layers (no logprobs output); part "output" only the
    output layer, from an input h_last: the two halves time separately what "step" does.
    """
    V, H_last = len(config["tokenizer"]["tokens"]), config["layers"][-1]["hidden"]
    emb = t["output.weight"] if config["embedding"]["kind"] == "tied" else t["embedding.weight"]
    init, nodes, inputs, outputs, x = [], [], [], [], "h_last"
    if part != "output":
        init.append(numpy_helper.from_array(emb, "embedding"))
        nodes.append(helper.make_node("Gather", ["embedding", "token"], ["x0"], axis=0))  # [1, E]
        inputs.append(helper.make_tensor_value_info("token", TensorProto.INT64, [1]))
        x = "x0"
    else:
        inputs.append(helper.make_tensor_value_info("h_last", TensorProto.FLOAT, [1, H_last]))
    if part != "lstm":
        outputs.append(helper.make_tensor_value_info("logprobs", TensorProto.FLOAT, [1, V]))
    for i, layer in enumerate(config["layers"] if part != "output" else []):
        H = layer["hidden"]
        h, c, p = f"h{i}", f"c{i}", f"l{i}_"
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, H]) for n in (h, c)]
        outputs += [helper.make_tensor_value_info(n + "_out", TensorProto.FLOAT, [1, H]) for n in (h, c)]
        init += [numpy_helper.from_array(gate_weight(layer, i, t), p + "w"),
                 numpy_helper.from_array(t[f"layers.{i}.bias"], p + "bias"),
                 numpy_helper.from_array(np.array([H] * 4, np.int64), p + "split")]
        nodes += [
            helper.make_node("Concat", [x, h], [p + "xh"], axis=1),
            # Gemm with transB keeps the file's row-major 4H x (I + H) layout: z = [x; h] W^T + b
            helper.make_node("Gemm", [p + "xh", p + "w", p + "bias"], [p + "z"], transB=1),
            helper.make_node("Split", [p + "z", p + "split"], [p + g for g in "ifgo"], axis=1),  # PyTorch order
            helper.make_node("Sigmoid", [p + "i"], [p + "si"]),
            helper.make_node("Sigmoid", [p + "f"], [p + "sf"]),
            helper.make_node("Tanh", [p + "g"], [p + "tg"]),
            helper.make_node("Sigmoid", [p + "o"], [p + "so"]),
            helper.make_node("Mul", [p + "sf", c], [p + "fc"]),
            helper.make_node("Mul", [p + "si", p + "tg"], [p + "ig"]),
            helper.make_node("Add", [p + "fc", p + "ig"], [c + "_out"]),
            helper.make_node("Tanh", [c + "_out"], [p + "tc"]),
            helper.make_node("Mul", [p + "so", p + "tc"], [h + "_out"]),
        ]
        x = h + "_out"
    if part != "lstm":
        init += [numpy_helper.from_array(t["output.weight"], "out_w"), numpy_helper.from_array(t["output.bias"], "out_b")]
        nodes += [helper.make_node("Gemm", [x, "out_w", "out_b"], ["logits"], transB=1),
                  helper.make_node("LogSoftmax", ["logits"], ["logprobs"], axis=-1)]
    graph = helper.make_graph(nodes, f"dkp_lstm_{part}", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dkp-lstm bench/onnx")
    model.ir_version = 8  # what onnxruntime-web and onnxruntime both read for opset 17
    onnx.checker.check_model(model, full_check=True)
    return model


def reference_step(config, t, token, state):
    """The step of docs/format.md in float64 numpy: (logprobs, new state)."""
    emb = t["output.weight"] if config["embedding"]["kind"] == "tied" else t["embedding.weight"]
    x, new = emb[token].astype(np.float64), []
    sig = lambda v: 1 / (1 + np.exp(-v))
    for i, layer in enumerate(config["layers"]):
        h, c = state[i]
        z = gate_weight(layer, i, t).astype(np.float64) @ np.concatenate([x, h]) + t[f"layers.{i}.bias"]
        zi, zf, zg, zo = np.split(z, 4)
        c = sig(zf) * c + sig(zi) * np.tanh(zg)
        x = h = sig(zo) * np.tanh(c)
        new.append((h, c))
    logits = t["output.weight"].astype(np.float64) @ x + t["output.bias"]
    m = logits.max()
    return logits - m - np.log(np.exp(logits - m).sum()), new


def native_check(config, t, path, text_path, n, tolerance=1e-4, nll_tolerance=None):
    """Runs the graph with native onnxruntime on the first n PTB tokens against the float64 reference.

    Exits unless every log-prob is within `tolerance`, or, with `nll_tolerance` (for a
    quantised graph, whose log-probs move more), unless the mean NLL per token is."""
    import onnxruntime as ort

    vocab = {w: i for i, w in enumerate(config["tokenizer"]["tokens"])}
    eos = vocab[config["tokenizer"]["eos"]]
    ids = [eos]  # scoring starts from a state fed the boundary token
    for line in open(text_path):
        ids += [vocab[w] for w in line.split()] + [eos]
        if len(ids) > n:
            break
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    L = len(config["layers"])
    feeds = {f"{k}{i}": np.zeros((1, config["layers"][i]["hidden"]), np.float32) for i in range(L) for k in "hc"}
    ref = [(np.zeros(l["hidden"]), np.zeros(l["hidden"])) for l in config["layers"]]
    worst, nll, nll_ref = 0.0, 0.0, 0.0
    for tok, nxt in zip(ids[:n], ids[1 : n + 1]):
        lp_ref, ref = reference_step(config, t, tok, ref)
        out = sess.run(None, {"token": np.array([tok], np.int64), **feeds})
        worst = max(worst, float(np.abs(out[0][0] - lp_ref).max()))
        nll, nll_ref = nll - float(out[0][0][nxt]), nll_ref - float(lp_ref[nxt])
        feeds = {name: out[1 + j] for j, name in enumerate(f"{k}{i}" for i in range(L) for k in "hc")}
    m = min(n, len(ids) - 1)
    print(f"native onnxruntime {ort.__version__} vs float64 reference, {m} positions: max |dlogprob| = {worst:.3g}, "
          f"NLL/token {nll / m:.5f} vs {nll_ref / m:.5f}")
    if (worst > tolerance) if nll_tolerance is None else (abs(nll - nll_ref) / m > nll_tolerance):
        sys.exit("the ONNX graph disagrees with the reference step")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="dkp-lstm .safetensors file, all dense")
    ap.add_argument("out", help="the .onnx file to write; with --parts also OUT-lstm.onnx and OUT-output.onnx")
    ap.add_argument("--parts", action="store_true", help="also write the LSTM-only and output-only graphs")
    ap.add_argument("--check-text", help="PTB text for the native check (skipped if absent)")
    ap.add_argument("--check-tokens", type=int, default=50)
    ap.add_argument("--int8", metavar="OUT_Q8",
                    help="also write onnxruntime's own int8 version of the step graph (quantize_dynamic: "
                         "int8 weights per tensor, activations quantised per call, MatMulInteger)")
    args = ap.parse_args()
    config, tensors = read_model(args.model)
    check_dense(config)
    onnx.save(build_graph(config, tensors), args.out)
    print(f"wrote {args.out}")
    for part in ("lstm", "output") if args.parts else ():
        path = args.out.removesuffix(".onnx") + f"-{part}.onnx"
        onnx.save(build_graph(config, tensors, part), path)
        print(f"wrote {path}")
    if args.check_text:
        native_check(config, tensors, args.out, args.check_text, args.check_tokens)
    if args.int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(args.out, args.int8, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["Gemm", "MatMul"])
        print(f"wrote {args.int8}")
        if args.check_text:
            # Quantisation moves single log-probs by up to ~0.5: this checks that the graph still
            # computes the model (mean NLL within 0.02 nats, 2 % of perplexity).
            native_check(config, tensors, args.int8, args.check_text, args.check_tokens, nll_tolerance=0.02)


if __name__ == "__main__":
    main()

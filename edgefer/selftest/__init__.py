"""`edgefer selftest`: one command that checks a machine's backends against ONNX Runtime on the CPU.

`edgefer selftest --gpu --report R.json` is the first thing to run on an NVIDIA machine (a Jetson or
a desktop GPU): it builds TensorRT engines from the shipped ONNX models with the project's own
builder, checks every GPU backend against ONNX Runtime CPU on real face crops cut from the
project's videos, times them, runs the pipeline with the TensorRT backend and writes one report.
Without `--gpu` the same checks run with ONNX Runtime CPU alone, which is how the command itself is
tested on machines without a GPU.

`checks` holds everything that runs anywhere (crops, metrics, timing, pipeline runs, the report and
its table); `gpu` holds the TensorRT and CUDA parts; `cli` wires them into the command.
"""

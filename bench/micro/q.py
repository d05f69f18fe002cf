import onnx
from onnxruntime.quantization import quantize_dynamic, QuantType
D={"DefaultTensorType": onnx.TensorProto.FLOAT}
quantize_dynamic("/tmp/perf/eager_opt.onnx", "/tmp/perf/q_pc.onnx", weight_type=QuantType.QInt8, per_channel=True, extra_options=D)
quantize_dynamic("/tmp/perf/eager_opt.onnx", "/tmp/perf/q_mm.onnx", weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], extra_options=D)
quantize_dynamic("/tmp/perf/eager_opt.onnx", "/tmp/perf/q_mm_pc.onnx", weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"], extra_options=D)
quantize_dynamic("/tmp/perf/eager_opt.onnx", "/tmp/perf/q_u8.onnx", weight_type=QuantType.QUInt8, extra_options=D)

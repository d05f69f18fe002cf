import time, onnx
from onnxruntime.transformers import optimizer
from onnxruntime.quantization import quantize_dynamic, QuantType
t=time.time()
m=optimizer.optimize_model("/tmp/perf/model.onnx", model_type="bert", num_heads=12, hidden_size=384, opt_level=1 )
print("opt", time.time()-t, m.get_fused_operator_statistics())
t=time.time()
quantize_dynamic("/tmp/perf/model_opt.onnx", "/tmp/perf/model_opt_int8.onnx", weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
print("quant opt", time.time()-t)
quantize_dynamic("/tmp/perf/model.onnx", "/tmp/perf/model_int8.onnx", weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
print("quant", time.time()-t)

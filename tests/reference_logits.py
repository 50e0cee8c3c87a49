# Loads a t6 export into the official PyTorch model with load_state_dict(strict=True) and compares its
# logits on a fixture's input with the fixture's own. Used by tests/test_t6_ckpt.cpp when torch is there.
# Usage: python3 reference_logits.py MODEL.py EXPORT.safetensors FIXTURE.safetensors
# Prints "max_abs_diff=<x> largest=<y>" on success; any failure (a missing or unexpected key
# included) raises, so the exit status is non-zero.
import importlib.util, json, math, struct, sys, types

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """Every tensor of a safetensors file (F32, I32, BF16) and its metadata, without the safetensors package."""
    dtypes = {"F32": torch.float32, "I32": torch.int32, "BF16": torch.bfloat16, "I64": torch.int64}
    with open(path, "rb") as file:
        header_size = struct.unpack("<Q", file.read(8))[0]
        header = json.loads(file.read(header_size))
        data = bytearray(file.read())
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(data[begin:end], dtype=dtypes[entry["dtype"]]) if end > begin else torch.empty(0)
        tensors[name] = flat.reshape(entry["shape"]).clone()
    return tensors, metadata


def install_stand_ins():
    """The few things the model files import that torch 1.13 lacks: the transformers base classes
    (plain nn.Module and a keyword bag), F.rms_norm (eps = the dtype's epsilon, as torch >= 2.4) and
    causal scaled-dot-product attention with a scale."""
    if "transformers" not in sys.modules:
        try:
            import transformers  # noqa: F401
        except ImportError:
            class Config:
                def __init__(self, **kwargs):
                    self.__dict__.update(kwargs)

            class Model(nn.Module):
                def __init__(self, config=None):
                    super().__init__()

            for name in ("transformers", "transformers.configuration_utils", "transformers.modeling_utils"):
                module = types.ModuleType(name)
                module.PreTrainedModel, module.PretrainedConfig = Model, Config
                sys.modules[name] = module
    if not hasattr(F, "rms_norm"):
        def rms_norm(x, shape, weight=None, eps=None):
            eps = torch.finfo(x.dtype).eps if eps is None else eps
            y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
            return y if weight is None else y * weight
        F.rms_norm = rms_norm
    if not hasattr(F, "scaled_dot_product_attention"):
        def attention(q, k, v, is_causal=False, scale=None):
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)) if scale is None else scale)
            if is_causal:
                length = q.size(-2)
                scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
            return torch.softmax(scores, dim=-1) @ v
        F.scaled_dot_product_attention = attention


def main(model_file, export_file, fixture_file):
    install_stand_ins()
    spec = importlib.util.spec_from_file_location("reference_model", model_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fixture, metadata = read_safetensors(fixture_file)
    config_keys = ("n_layer", "n_embd", "n_head", "head_dim", "q_rank", "rank", "group_size", "qk_rope_head_dim",
                   "q_lora_rank", "kv_lora_rank", "v_head_dim", "vocab_size")
    config = {key: int(metadata[key]) for key in config_keys if key in metadata}
    model = module.GPT(module.GPTConfig(block_size=int(metadata["seq_len"]), **config)).float()
    exported, _ = read_safetensors(export_file)
    model.load_state_dict({name: tensor.float() for name, tensor in exported.items()}, strict=True)
    with torch.no_grad():
        logits, _ = model(fixture["input.idx"].long(), output_all_seq=True)
    expected = fixture["out.logits"]
    print(f"max_abs_diff={(logits.float() - expected).abs().max().item():.9g} largest={expected.abs().max().item():.9g}")


if __name__ == "__main__":
    main(*sys.argv[1:4])

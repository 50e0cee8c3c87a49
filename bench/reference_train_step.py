#!/usr/bin/python3
"""The official PyTorch model's training step on this CPU (fp32, eager), for bench_train_step's
side-by-side figure. It imports the model from a clone of the official repository
(git clone https://github.com/tensorgi/T6 DIR) and never ships or copies its code.

  python3 bench/reference_train_step.py DIR kind=T6 n_layer=4 n_embd=256 n_head=8 head_dim=64 \
      q_rank=6 rank=2 vocab_size=50304 batch=8 seq=256 steps=5 threads=2

kind picks DIR/model/<file>: T6.py, T6_kvonly.py, llama-mha.py, llama-gqa.py or llama-mla.py; every
other key=value but batch, seq, steps and threads goes to its GPTConfig as an integer. The step is
what t6 times: forward, backward, global-norm clip at 1.0, AdamW (0.9, 0.95, wd 0.1). The last line
ends "<ms> ms/step, <tokens> tokens/s". Needs Debian's python3-torch (with libopenblas0-pthread).
"""
import importlib.util
import os
import sys
import time
import types

MODEL_FILES = {"T6": "T6.py", "T6_kvonly": "T6_kvonly.py", "llama_mha": "llama-mha.py", "llama_gqa": "llama-gqa.py",
               "llama_mla": "llama-mla.py"}


def fail(message):
    print("reference_train_step: error: " + message, file=sys.stderr)
    sys.exit(1)


def stand_in_for_transformers(nn):
    """The model files subclass two transformers base classes and use nothing else of it."""
    try:
        import transformers  # noqa: F401
        return
    except ImportError:
        pass

    class Config:
        def __init__(self, **settings):
            self.__dict__.update(settings)

    class Model(nn.Module):
        def __init__(self, config=None):
            super().__init__()

    for name in ("transformers", "transformers.configuration_utils", "transformers.modeling_utils"):
        module = types.ModuleType(name)
        module.PretrainedConfig, module.PreTrainedModel = Config, Model
        sys.modules[name] = module


def backport_functional(torch, functional):
    """Debian 12's torch 1.13 lacks two functions the model files call; the same maths written out."""
    if not hasattr(functional, "rms_norm"):
        def rms_norm(x, shape, weight=None, eps=None):
            eps = torch.finfo(x.dtype).eps if eps is None else eps
            y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
            return y if weight is None else y * weight
        functional.rms_norm = rms_norm
    if not hasattr(functional, "scaled_dot_product_attention"):
        def attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
            scores = (q @ k.transpose(-2, -1)) * (q.size(-1) ** -0.5 if scale is None else scale)
            if is_causal:
                length = q.size(-2)
                scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
            return torch.softmax(scores, dim=-1) @ v
        functional.scaled_dot_product_attention = attention


def main():
    if len(sys.argv) < 2 or "=" in sys.argv[1]:
        fail("usage: reference_train_step.py REFERENCE_DIR key=value ...")
    reference = sys.argv[1]
    settings = dict(argument.split("=", 1) for argument in sys.argv[2:])
    kind = settings.pop("kind", "T6")
    if kind not in MODEL_FILES:
        fail("kind=%s: one of %s" % (kind, ", ".join(MODEL_FILES)))
    path = os.path.join(reference, "model", MODEL_FILES[kind])
    if not os.path.isfile(path):
        fail("%s: missing (is %s a clone of github.com/tensorgi/T6?)" % (path, reference))
    batch, seq = int(settings.pop("batch", 8)), int(settings.pop("seq", 256))
    steps, threads = int(settings.pop("steps", 5)), int(settings.pop("threads", 2))

    import torch
    import torch.nn as nn
    import torch.nn.functional as functional
    stand_in_for_transformers(nn)
    backport_functional(torch, functional)
    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("reference_" + kind, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    config = {key: int(value) for key, value in settings.items()}
    model = module.GPT(module.GPTConfig(block_size=seq, **config)).float()
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    tokens = torch.randint(0, config["vocab_size"], (batch, seq + 1))
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def train_step():
        _, loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    train_step()  # warm-up, as t6's bench does
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    seconds = (time.perf_counter() - start) / steps
    parameters = sum(p.numel() for p in model.parameters())
    print("reference %s fp32 eager, torch %s, %d threads, %.2fM params, B%d x T%d: %.0f ms/step, %.0f tokens/s"
          % (kind, torch.__version__, torch.get_num_threads(), parameters / 1e6, batch, seq, seconds * 1e3,
             batch * seq / seconds))


if __name__ == "__main__":
    main()

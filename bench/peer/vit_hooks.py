"""The usual Python way of the job BlockLens does, for `npm run bench:peer`.

A PyTorch ViT-small with the bench model's exact weights (read from one .npy per ONNX
initializer), forward hooks on every block collecting CLS-pooled outputs, linear CKA between all
blocks (torch), block redundancy 1 - cos(in, out), and one RBA fit: the least-squares linear map
from a span's input to its output over all tokens (torch.linalg.lstsq).

    /usr/bin/python3 bench/peer/vit_hooks.py WEIGHTS_DIR INPUTS.npy --threads N --batch B \
        --span I J [--json OUT]

Prints one JSON line with the phase times (seconds) and a few numbers to cross-check.
"""
import argparse
import json
import os
import sys
import time

T0 = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402

T_IMPORT = time.perf_counter() - T0


def load(weights_dir, name):
    return torch.from_numpy(np.load(os.path.join(weights_dir, name.replace('/', '_') + '.npy')))


class Block(torch.nn.Module):
    def __init__(self, w, i, d, heads):
        super().__init__()
        p = f'blocks.{i}'
        self.heads = heads
        self.norm1 = torch.nn.LayerNorm(d, eps=1e-6)
        self.norm2 = torch.nn.LayerNorm(d, eps=1e-6)
        for ln, n in ((self.norm1, 'norm1'), (self.norm2, 'norm2')):
            ln.weight.data = w(f'{p}.{n}.weight')
            ln.bias.data = w(f'{p}.{n}.bias')
        # ONNX MatMul weights are [in, out]; nn.Linear keeps [out, in].
        def linear(name, i_, o_):
            lin = torch.nn.Linear(i_, o_)
            lin.weight.data = w(f'{p}.{name}.weight').t().contiguous()
            lin.bias.data = w(f'{p}.{name}.bias')
            return lin
        self.q = linear('attn.q', d, d)
        self.k = linear('attn.k', d, d)
        self.v = linear('attn.v', d, d)
        self.proj = linear('attn.proj', d, d)
        self.fc1 = linear('mlp.fc1', d, w(f'{p}.mlp.fc1.weight').shape[1])
        self.fc2 = linear('mlp.fc2', w(f'{p}.mlp.fc2.weight').shape[0], d)
        self.scale = float(w(f'{p}.attn.scale'))

    def forward(self, x):
        n, t, d = x.shape
        h = self.heads
        a = self.norm1(x)
        q = self.q(a).reshape(n, t, h, d // h).transpose(1, 2)
        k = self.k(a).reshape(n, t, h, d // h).transpose(1, 2)
        v = self.v(a).reshape(n, t, h, d // h).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-1, -2)) * self.scale, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.proj(o)
        return x + self.fc2(torch.relu(self.fc1(self.norm2(x))))


class Vit(torch.nn.Module):
    def __init__(self, weights_dir, heads=6):
        super().__init__()
        w = lambda n: load(weights_dir, n)  # noqa: E731
        pw = w('patch_embed.proj.weight')
        d, _, patch, _ = pw.shape
        self.patch = torch.nn.Conv2d(3, d, patch, stride=patch)
        self.patch.weight.data = pw
        self.patch.bias.data = w('patch_embed.proj.bias')
        self.cls = w('cls_token')
        self.pos = w('pos_embed')
        layers = 0
        while os.path.exists(os.path.join(weights_dir, f'blocks.{layers}.norm1.weight.npy')):
            layers += 1
        self.blocks = torch.nn.ModuleList([Block(w, i, d, heads) for i in range(layers)])
        self.norm = torch.nn.LayerNorm(d, eps=1e-6)
        self.norm.weight.data = w('norm.weight')
        self.norm.bias.data = w('norm.bias')
        self.head = torch.nn.Linear(d, w('head.weight').shape[1])
        self.head.weight.data = w('head.weight').t().contiguous()
        self.head.bias.data = w('head.bias')

    def forward(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def linear_cka(x, y):
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    hsic = (x.T @ y).pow(2).sum()
    return (hsic / ((x.T @ x).pow(2).sum().sqrt() * (y.T @ y).pow(2).sum().sqrt())).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('weights')
    ap.add_argument('inputs')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--span', type=int, nargs=2, default=[4, 5])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    times = {'import': T_IMPORT}

    t = time.perf_counter()
    model = Vit(args.weights).eval()
    data = torch.from_numpy(np.load(args.inputs))
    times['load'] = time.perf_counter() - t

    # The usual hooks: pooled (CLS) outputs for every block, plus the full token tensors of the
    # span's input and output for the RBA fit.
    t = time.perf_counter()
    pooled = {i: [] for i in range(len(model.blocks))}
    block_in = []
    span_in, span_out = [], []
    i0, j0 = args.span
    if i0 < 1 or j0 < i0:
        raise SystemExit('--span I J needs 1 <= I <= J')

    def hook(i):
        def f(_m, inputs, out):
            if i == 0:
                block_in.append(inputs[0][:, 0].clone())
            pooled[i].append(out[:, 0].clone())
            if i == i0 - 1:
                span_in.append(out.reshape(-1, out.shape[-1]).clone())
            if i == j0:
                span_out.append(out.reshape(-1, out.shape[-1]).clone())
        return f

    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(model.blocks)]
    for s in range(0, data.shape[0], args.batch):
        model(data[s:s + args.batch])
    for h in handles:
        h.remove()
    times['forward'] = time.perf_counter() - t

    t = time.perf_counter()
    reps = [torch.cat(block_in).double()] + [torch.cat(pooled[i]).double() for i in range(len(model.blocks))]
    L = len(reps)
    cka = [[linear_cka(reps[a], reps[b]) for b in range(L)] for a in range(L)]
    br = [1 - torch.nn.functional.cosine_similarity(reps[i], reps[i + 1], dim=1).mean().item() for i in range(L - 1)]
    times['metrics'] = time.perf_counter() - t

    t = time.perf_counter()
    xin = torch.cat(span_in).double()
    yout = torch.cat(span_out).double()
    ones = torch.ones(xin.shape[0], 1, dtype=xin.dtype)
    sol = torch.linalg.lstsq(torch.cat([xin, ones], 1), yout).solution
    resid = (torch.cat([xin, ones], 1) @ sol - yout).pow(2).mean().item() / yout.var().item()
    times['rba_fit'] = time.perf_counter() - t
    times['total'] = time.perf_counter() - T0
    finite = lambda v: v if v == v else None  # noqa: E731  (NaN: a constant representation)
    print(json.dumps({'times': times, 'tokens': xin.shape[0], 'cka_1_last': finite(cka[1][L - 1]), 'br': [finite(v) for v in br[:3]], 'rba_relative_mse': resid}))


if __name__ == '__main__':
    sys.exit(main())

"""build_models(): G and D of a Config from ARCHS, initialised from per-layer seeds, with spectral norm where
the Config puts it; layer tables of a model."""
from __future__ import annotations

from typing import Any
import torch
import torch.nn as nn

from .registry import ARCHS
from .device import eval_mode
from .config import Config
from .tables import format_table
from .layers import apply_spectral_norm, named_seed

__all__ = ['build_models', 'count_parameters', 'layer_table', 'format_layer_table']


def _init_weights(model: nn.Module, init: str, seed: int) -> None:
    """"normal": N(0, 0.02) weights, N(1, 0.02) BN scales (DCGAN, Radford 2016). "orthogonal" (BigGAN).
    Every layer draws from named_seed(seed, its name): same seed and name, same initial weights."""
    for name, m in model.named_modules():
        gen = torch.Generator().manual_seed(named_seed(seed, name))
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init == "normal":
                nn.init.normal_(m.weight, 0.0, 0.02, generator=gen)
            else:
                nn.init.orthogonal_(m.weight, generator=gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine and init == "normal":
            nn.init.normal_(m.weight, 1.0, 0.02, generator=gen)
    # D's class projection starts small (an N(0, 1) default would swamp the logits); G's CBN gains stay 1
    # and its label embedding N(0, 1), on the scale of z
    if isinstance(getattr(model, "embed", None), nn.Embedding):
        gen = torch.Generator().manual_seed(named_seed(seed, "embed"))
        if init == "normal":
            nn.init.normal_(model.embed.weight, 0.0, 0.02, generator=gen)
        else:
            nn.init.xavier_uniform_(model.embed.weight, generator=gen)


def build_models(cfg: Config) -> tuple[nn.Module, nn.Module]:
    """(G, D) for `cfg` from ARCHS, initialised, with spectral norm where cfg.spectral_norm puts it; on the
    CPU. Each model keeps cfg as `model.config` (sample() and checkpoints read it)."""
    cfg.validate()
    arch = ARCHS[cfg.arch]
    # every weight comes from named_seed; the global RNG (data order, latents) is left as it was
    with torch.random.fork_rng(devices=[]):
        G, D = arch.generator(cfg), arch.discriminator(cfg)
    for model, sn in ((G, cfg.spectral_norm == "gd"), (D, cfg.spectral_norm in ("d", "gd"))):
        _init_weights(model, arch.init, cfg.seed)
        if sn:
            apply_spectral_norm(model, cfg.seed)
    return G, D


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_table(model: nn.Module) -> list[dict[str, Any]]:
    """G's or D's stages in the order a forward pass runs them (the model's children, ModuleLists opened;
    identity placeholders left out): name, type, output shape (C, H, W) of one sample and parameters, from
    one forward pass on two dummy inputs. For the report's and notebooks' architecture tables."""
    cfg, stages = model.config, []
    for name, child in model.named_children():
        for i, m in enumerate(child) if isinstance(child, nn.ModuleList) else [(None, child)]:
            if not isinstance(m, nn.Identity):
                stages.append((name if i is None else f"{name}.{i}", m))
    rows: list[dict[str, Any]] = []

    def kind(module: nn.Module) -> str:      # "Conv2d + SN", "SelfAttention x 2", "GBlock"
        if isinstance(module, nn.Sequential):
            names = sorted({kind(m) for m in module})
            return names[0] + (f" × {len(module)}" if len(module) > 1 else "") if len(names) == 1 else "Sequential"
        name = type(module).__name__
        return name.removeprefix("Parametrized") + " + SN" if name.startswith("Parametrized") else name

    def record(name: str, module: nn.Module, out: Any) -> None:
        out = out[0] if isinstance(out, tuple) else out
        rows.append({"layer": name, "type": kind(module), "output": tuple(out.shape[1:]),
                     "params": count_parameters(module)})

    hooks = [m.register_forward_hook(lambda mod, _, out, name=name: record(name, mod, out)) for name, m in stages]
    labels = torch.arange(2) % cfg.cond_classes if cfg.cond_classes else None
    try:
        with eval_mode(model), torch.no_grad():
            if isinstance(model, tuple(a.generator for a in ARCHS.values())):
                model(torch.zeros(2, cfg.latent_dim), labels)
            else:
                heads = {"with_classes": getattr(model, "classifier", None) is not None,
                         "with_codes": getattr(model, "q_head", None) is not None}
                pair = {"z": torch.zeros(2, cfg.z_dim)} if getattr(model, "joint", None) is not None else {}
                model(torch.zeros(2, 3, cfg.img_size, cfg.img_size), labels,
                      **{k: v for k, v in heads.items() if v}, **pair)
    finally:
        for h in hooks:
            h.remove()
    return rows


def format_layer_table(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """layer_table() rows as a table (format_table), with the total parameter count as the last row."""
    body = [[r["layer"], r["type"], " × ".join(map(str, r["output"])), f"{r['params']:,}"] for r in rows]
    total = sum(r["params"] for r in rows)
    return format_table(["stage", "type", "output shape", "parameters"], [*body, ["total", "", "", f"{total:,}"]],
                        fmt, align="llrr")

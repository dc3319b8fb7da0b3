"""StyleGAN2 family (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), pure PyTorch.

G: z -> mapping network (equalized MLP at 0.01x G's learning rate, `OptimizerSpec.lr_mult`) -> w; a learned
constant at the lowest resolution; per resolution two modulated/demodulated 3x3 convs with per-pixel noise and
a ToImage (skip architecture: the images of all resolutions are summed) or residual blocks with one ToImage
at the end. Every layer has its own w (`num_ws` of them), which is what style mixing and the crossover grid of
`ganforge style-mix` act on. D: residual blocks down to the lowest resolution, minibatch stddev, conv, two fc
layers (projection on a label embedding when conditional). Equalized learning rate everywhere.

Training phases (StyleGAN2's four, each with its own interval):
  D      the config's loss (non-saturating by default) on real vs G(z), style mixing on the fakes
  Dreg   lazy R1 on reals every `r1_interval` steps, weight gamma/2 * interval
  G      the config's loss against D, style mixing with probability `style_mixing_prob`; w_avg tracked here
  Greg   lazy path-length regularization every `pl_interval` steps on batch/`pl_batch_shrink`, x interval
Both optimizers get StyleGAN2's lazy-regularization correction: lr * c and betas ** c, c = k / (k + 1).

Sampling: `StyleSampler` (truncation psi towards the tracked w_avg, `to_w`/`from_w` for w-space work) with the
fixed noise maps saved with the weights, so the same seed gives the same images.

With `progressive.enabled` (see ganforge.models.growing) the same networks grow from the lowest resolution:
each stage adds a synthesis block whose image is faded in over the upsampled image of the stage below, and a D
block whose features are faded in over the input-layer features of the downsampled image (skip G only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError, GanforgeError
from ganforge.models.base import FAMILIES, DataSpec, Family, ModelConfig, NoiseInputs
from ganforge.models.growing import (
    GrowingSampler,
    ProgressiveConfig,
    StageModule,
    real_batch,
    set_stage_on_step,
    stage_batch_size,
    stage_d_loss,
    stage_sizes,
    stage_widths,
    upsample_to,
    validate_growing_model,
)
from ganforge.nn.progressive import downsample_to, fade_in
from ganforge.nn.style import (
    ConstantInput,
    DBlock,
    DEpilogue,
    EqualizedConv2d,
    MappingNetwork,
    PathLengthPenalty,
    SynthesisBlock,
    lazy_regularization_correction,
    mix_styles,
    random_crossover,
    upsample2x,
)
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec


@dataclass
class StyleGAN2Config(ModelConfig):
    family: str = "stylegan2"  # StyleGAN2: mapping network, modulated convs, noise, lazy R1 + path length
    latent_dim: int = 128  # size of z
    w_dim: int = 128  # size of w (the intermediate latent each layer's style is an affine map of)
    mapping_layers: int = 4  # depth of the mapping MLP (8 in the paper; 2-4 suffice for small data)
    mapping_lr_mult: float = 0.01  # the mapping network learns at this fraction of G's rate (paper: 0.01)
    channels: int = 32  # G and D width at full resolution; doubles per halving of resolution
    max_channels: int = 256  # cap on any layer's width
    architecture: str = "skip"  # G output: "skip" (sum of per-resolution images) or "resnet" (residual blocks)
    use_noise: bool = True  # per-pixel noise inputs (stochastic detail)
    style_mixing_prob: float = 0.9  # chance a training batch mixes two w's at a random crossover layer
    w_avg_beta: float = 0.995  # decay of the running average of w (what truncation pulls towards)
    truncation_cutoff: int | None = None  # truncate only the first N layers' w (None: all layers)
    r1_gamma: float = 1.0  # R1 weight gamma (penalty gamma/2 * |grad D(real)|^2); 0 disables
    r1_interval: int = 16  # lazy R1: every this many steps (1: every step)
    pl_weight: float = 2.0  # path-length regularization weight; 0 disables
    pl_interval: int = 4  # lazy path-length: every this many steps
    pl_batch_shrink: int = 2  # the path-length batch is the batch divided by this
    pl_decay: float = 0.01  # 1 - beta of the running mean path length
    mbstd_group_size: int = 4  # minibatch stddev group size in D (any batch works: largest divisor used)
    progressive: ProgressiveConfig = field(default_factory=ProgressiveConfig)  # grow from low resolution

    def validate(self) -> None:
        super().validate()
        for name in ("w_dim", "mapping_layers", "channels", "max_channels", "r1_interval", "pl_interval",
                     "pl_batch_shrink", "mbstd_group_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.architecture not in ("skip", "resnet"):
            raise ConfigError(f"model.architecture must be 'skip' or 'resnet', got {self.architecture!r}")
        if not self.mapping_lr_mult > 0:
            raise ConfigError(f"model.mapping_lr_mult must be > 0, got {self.mapping_lr_mult}")
        for name in ("style_mixing_prob", "w_avg_beta", "pl_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise ConfigError("model.r1_gamma and model.pl_weight must be >= 0")
        if self.truncation_cutoff is not None and self.truncation_cutoff < 1:
            raise ConfigError(f"model.truncation_cutoff must be >= 1 or null, got {self.truncation_cutoff}")
        if self.progressive.enabled and self.architecture != "skip":
            raise ConfigError("model.progressive needs model.architecture: skip (every resolution has a ToImage)")
        validate_growing_model(self, "stylegan2")


def _check_image(spec: DataSpec, family: str) -> None:
    if not spec.is_image:
        raise ConfigError(f"the {family} family needs image data; use model.family=mlp for points")


class StyleGenerator(NoiseInputs, StageModule):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, C, H, W) in about [-1, 1]; any C, square or not."""

    def __init__(self, *, config: StyleGAN2Config, spec: DataSpec) -> None:
        super().__init__()
        _check_image(spec, "stylegan2")
        self.config, self.spec = config, spec
        self.latent_dim = config.latent_dim
        self.num_classes = spec.num_classes if config.conditional else 0
        channels, height, width = spec.shape
        self.sizes = stage_sizes(spec)  # per block, lowest first
        widths = stage_widths(config.channels, config.max_channels, len(self.sizes))
        # Its reduced learning rate is a param group of G's optimizer (`OptimizerSpec.lr_mult`), not inside the
        # layers: with Adam the two are the same, and the optimizer is where a rate belongs.
        self.mapping = MappingNetwork(z_dim=config.latent_dim, w_dim=config.w_dim, num_layers=config.mapping_layers,
                                      lr_mul=1.0, num_classes=self.num_classes)
        self.const = ConstantInput(channels=widths[0], size=self.sizes[0])
        blocks = []
        for i, size in enumerate(self.sizes):
            blocks.append(SynthesisBlock(
                in_channels=widths[max(i - 1, 0)], out_channels=widths[i], w_dim=config.w_dim, img_channels=channels,
                architecture=config.architecture, first=i == 0, is_last=i == len(self.sizes) - 1,
                use_noise=config.use_noise, noise_size=size))
        self.blocks = nn.ModuleList(blocks)
        # Block i reads ws[starts[i] : starts[i] + num_ws]: its convs' w, then its ToImage's (the next block's first)
        self.starts = [sum(b.num_conv for b in blocks[:i]) for i in range(len(blocks))]
        self.num_ws = sum(b.num_conv for b in blocks) + 1
        self._init_stage(len(self.sizes))

    # --- the two halves

    def to_w(self, z: Tensor, labels: Tensor | None = None, truncation: float | Tensor = 1.0) -> Tensor:
        """z (B, latent_dim) -> w (B, w_dim), pulled towards w_avg by truncation psi (a number or (B,))."""
        w = self.mapping(z, labels if self.num_classes else None)
        return self.truncate(w, truncation)

    def truncate(self, w: Tensor, psi: float | Tensor) -> Tensor:
        """w (B, w_dim) or (B, num_ws, w_dim) pulled towards w_avg: w_avg + psi (w - w_avg); psi a number or (B,)."""
        if not isinstance(psi, Tensor) and psi == 1.0:
            return w
        cutoff = self.config.truncation_cutoff
        if cutoff is not None and w.dim() == 2:
            w = w.unsqueeze(1).expand(-1, self.num_ws, -1)  # only the first `cutoff` layers are truncated
        if isinstance(psi, Tensor):
            psi = psi.to(w.dtype).view(-1, *([1] * (w.dim() - 1)))  # one psi per sample
        return self.mapping.truncate(w, psi, cutoff)

    def synthesis(self, ws: Tensor, *, noise_mode: str = "random") -> Tensor:
        """ws (B, w_dim) or (B, num_ws, w_dim) -> images at the current stage's resolution (faded in)."""
        if ws.dim() == 2:
            ws = ws.unsqueeze(1).expand(-1, self.num_ws, -1)
        stage, alpha = self.current()
        x = self.const(ws.shape[0])
        img = previous = None
        for i in range(stage + 1):
            block = self.blocks[i]
            previous = img
            x, img = block(x, img, ws[:, self.starts[i]: self.starts[i] + block.num_ws], noise_mode=noise_mode)
        if self.config.architecture == "resnet" and stage == len(self.blocks) - 1:
            return img
        if previous is not None and alpha < 1.0:
            # alpha 0: exactly the stage below, upsampled as the skip architecture upsamples its images
            return torch.lerp(upsample2x(previous), img, alpha)
        return img

    def forward(self, z: Tensor, labels: Tensor | None = None, *, truncation: float | Tensor = 1.0,
                mix_z: Tensor | None = None, crossover: int | None = None, noise_mode: str | None = None,
                stage_output: bool = False, track_w_avg: bool = False, return_ws: bool = False):
        """Images (B, C, H, W) at the data's size (a lower stage is upsampled, nearest), or with `stage_output`
        at the current stage's size. `mix_z` + `crossover`: layers >= crossover take mix_z's w (style mixing).
        `track_w_avg`: fold this batch's w into w_avg (training). `return_ws`: also the (B, num_ws, w_dim)
        the images were made from (path-length regularization differentiates through them). `noise_mode`
        None: fresh noise in training, the fixed maps in eval mode (so a loaded G is deterministic)."""
        if noise_mode is None:
            noise_mode = "random" if self.training else "const"
        w = self.mapping(z, labels if self.num_classes else None)  # (B, w_dim)
        if track_w_avg and self.training:
            self.mapping.update_w_avg(w, self.config.w_avg_beta)
        ws = self.truncate(w, truncation)
        if mix_z is not None and crossover is not None and crossover < self.num_ws:
            w2 = self.truncate(self.mapping(mix_z, labels if self.num_classes else None), truncation)
            ws = mix_styles(ws, w2, crossover, self.num_ws)
        if ws.dim() == 2:
            ws = ws.unsqueeze(1).expand(-1, self.num_ws, -1)  # (B, num_ws, w_dim)
        img = self.synthesis(ws, noise_mode=noise_mode)
        if not stage_output:
            img = upsample_to(img, self.spec.shape[1:])
        return (img, ws) if return_ws else img


    def layer_groups(self) -> dict[str, tuple[int, int]]:
        """w indices [start, stop) of the coarse / middle / fine layers (lowest third of resolutions, ...)."""
        n = len(self.blocks)
        cut1, cut2 = max(1, round(n / 3)), max(1, round(2 * n / 3))
        bounds = [0, self.starts[cut1] if cut1 < n else self.num_ws, self.starts[cut2] if cut2 < n else self.num_ws,
                  self.num_ws]
        return {"coarse": (bounds[0], bounds[1]), "middle": (bounds[1], bounds[2]), "fine": (bounds[2], bounds[3])}


class StyleDiscriminator(StageModule):
    """Images (B, C, H, W) [+ labels] -> logits (B,): residual blocks, minibatch stddev, fc head.

    Images larger than the current stage are averaged down to it first (reals at the data's size work too).
    """

    def __init__(self, *, config: StyleGAN2Config, spec: DataSpec) -> None:
        super().__init__()
        _check_image(spec, "stylegan2")
        self.config, self.spec = config, spec
        self.num_classes = spec.num_classes if config.conditional else 0
        self.sizes = stage_sizes(spec)
        widths = stage_widths(config.channels, config.max_channels, len(self.sizes))
        n = len(self.sizes)
        grows = config.progressive.enabled
        # One input layer per stage when growing; else only the full-resolution one.
        self.from_images = nn.ModuleList(
            EqualizedConv2d(in_channels=spec.shape[0], out_channels=widths[i], kernel_size=1, activation="lrelu")
            if grows or i == n - 1 else nn.Identity() for i in range(n))
        # blocks[i] takes resolution i down to i - 1 (blocks[0] unused: the epilogue works at resolution 0)
        self.blocks = nn.ModuleList(
            [nn.Identity()] + [DBlock(in_channels=widths[i], out_channels=widths[i - 1]) for i in range(1, n)])
        cmap_dim = widths[0] if self.num_classes else 0
        self.embed = nn.Embedding(self.num_classes, cmap_dim) if self.num_classes else None
        self.epilogue = DEpilogue(in_channels=widths[0], size=self.sizes[0], mbstd_group_size=config.mbstd_group_size,
                                  cmap_dim=cmap_dim)
        self._init_stage(n)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        stage, alpha = self.current()
        size = self.sizes[stage]
        if tuple(x.shape[-2:]) != size:
            x = downsample_to(x, size)
        h = self.from_images[stage](x)
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1.0:  # fade in: the new block's features over the stage below's, from the downsampled image
                low = self.from_images[stage - 1](downsample_to(x, self.sizes[stage - 1]))
                h = fade_in(low, h, alpha)
        for i in range(stage - 1, 0, -1):
            h = self.blocks[i](h)
        cmap = None
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            cmap = self.embed(labels)
        return self.epilogue(h, cmap).squeeze(1)  # (B,)


class StyleSampler(GrowingSampler):
    """Noise (and labels) -> images with the truncation trick; w-space access for interpolation and mixing.

    Sampling uses the fixed noise maps stored with the weights (noise_mode "const"), so the same seed always
    gives the same images.
    """

    supports_truncation = True

    def forward(self, z: Tensor, labels: Tensor | None = None, *, truncation: float | Tensor = 1.0,
                **controls) -> Tensor:
        if controls:
            raise GanforgeError(f"this model takes no {', '.join(sorted(controls))}")
        check_truncation(truncation)
        return self.G(z, labels, truncation=truncation, noise_mode="const")

    def to_w(self, z: Tensor, labels: Tensor | None = None, truncation: float | Tensor = 1.0) -> Tensor:
        """z (B, latent_dim) -> w (B, w_dim) (truncated towards the tracked average w by psi)."""
        check_truncation(truncation)
        return self.G.to_w(z, labels, truncation)

    def from_w(self, w: Tensor) -> Tensor:
        """w (B, w_dim) or per-layer ws (B, num_ws, w_dim) -> model-space images at the data's size."""
        return upsample_to(self.G.synthesis(w, noise_mode="const"), self.spec.shape[1:])

    @property
    def num_ws(self) -> int:
        return self.G.num_ws


def check_truncation(psi: float | Tensor) -> None:
    """psi must be finite (psi 1: none; 0: the average w; > 1 extrapolates, allowed up to 2)."""
    values = psi.detach().float() if isinstance(psi, Tensor) else torch.tensor(float(psi))
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()) or bool((values > 2).any()):
        raise GanforgeError(f"truncation psi must be in [0, 2], got {psi if not isinstance(psi, Tensor) else values}")


# --------------------------------------------------------------------------------------------- training


def _mixing(ctx: PhaseContext, n: int) -> dict:
    """Style-mixing arguments for G: a second z and a crossover (num_ws: none) from the global RNG."""
    G = ctx.nets.eager["G"]
    crossover = random_crossover(G.num_ws, prob=ctx.config.model.style_mixing_prob)
    if crossover >= G.num_ws:
        return {}
    return {"mix_z": ctx.shard(G.sample_latent(n, device=ctx.device)), "crossover": crossover}


def style_phases(cfg) -> list[PhaseSpec]:
    m, t = cfg.model, cfg.train

    def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = real_batch(ctx, step)
        real, labels = batch["x"], batch.get("y")
        ctx.scratch["real"] = batch  # R1 and G's phase use the same reals
        n = stage_batch_size(ctx, step)
        z, fake_labels = ctx.sample_inputs(n)
        with torch.no_grad(), ctx.autocast():
            fake = ctx.nets.train["G"](z, fake_labels, stage_output=True, **_mixing(ctx, n))
        return stage_d_loss(ctx, step, measure, real, labels, fake, fake_labels)

    def r1_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = ctx.scratch.get("real") or real_batch(ctx, step)
        real = ctx.augment(batch["x"], step).detach().requires_grad_(True)
        logits = ctx.nets.eager["D"](real, batch.get("y"))  # eager: double backward
        (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = grad.square().sum(dim=(1, 2, 3)).mean()
        ctx.stats.report("reg_d/r1", penalty)
        # gamma/2 * |grad|^2, times the interval: one lazy step stands for `interval` ordinary ones. The
        # 0 * logits term keeps every D parameter in the graph (as the official code does for DDP).
        return penalty * (m.r1_gamma / 2) * m.r1_interval + logits.mean() * 0

    def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = ctx.scratch.get("real") or real_batch(ctx, step)
        n = stage_batch_size(ctx, step)
        D = ctx.nets.call["D"]
        with ctx.autocast():
            z, fake_labels = ctx.sample_inputs(n)
            fake = ctx.nets.train["G"](z, fake_labels, stage_output=True, track_w_avg=True, **_mixing(ctx, n))
            fake_logits = D(ctx.augment(fake, step), fake_labels).float()
            real_logits = D(ctx.augment(batch["x"], step), batch.get("y")).float() if ctx.loss.g_needs_real \
                else fake_logits.detach()
            loss = ctx.loss.g(real_logits, fake_logits)
        return loss

    def pl_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        n = max(1, stage_batch_size(ctx, step) // m.pl_batch_shrink)
        z, fake_labels = ctx.sample_inputs(n)
        G = ctx.nets.train["G"]
        images, ws = G(z, fake_labels, stage_output=True, return_ws=True, **_mixing(ctx, n))
        penalty = ctx.state["path_length"](images, ws)  # weight * mean (length - running mean)^2
        ctx.stats.report("reg_g/path_length", penalty)
        ctx.stats.report("pl_mean", ctx.state["path_length"].pl_mean)
        return penalty * m.pl_interval

    phases = [PhaseSpec("D", optimizer="D", loss=d_loss, repeats=t.n_critic)]
    if m.r1_gamma > 0:
        phases.append(PhaseSpec("Dreg", optimizer="D", loss=r1_loss, interval=m.r1_interval))
    phases.append(PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",), repeats=t.n_gen))
    if m.pl_weight > 0:
        phases.append(PhaseSpec("Greg", optimizer="G", loss=pl_loss, interval=m.pl_interval))
    return phases


class StyleGAN2Family(Family):
    name = "stylegan2"
    config_class = StyleGAN2Config
    description = "StyleGAN2: mapping net, modulated convs, noise, style mixing, lazy R1 + path length, truncation"
    ema_networks = ("G",)
    sampler = StyleSampler

    def networks(self, model: StyleGAN2Config, spec: DataSpec):
        return {"G": lambda: StyleGenerator(config=model, spec=spec),
                "D": lambda: StyleDiscriminator(config=model, spec=spec)}

    def optimizers(self, cfg) -> dict[str, OptimizerSpec]:
        m, t = cfg.model, cfg.train
        specs = {}
        for name, lr, betas, reg, interval in (
                ("G", t.lr_g, t.betas_g, m.pl_weight, m.pl_interval),
                ("D", t.lr_d, t.betas_d, m.r1_gamma, m.r1_interval)):
            if reg > 0:  # StyleGAN2 App. B: a lazily regularized optimizer sees interval+1 steps per interval
                lr, betas = lazy_regularization_correction(lr, tuple(betas), interval)
            lr_mult = {"G.mapping": m.mapping_lr_mult} if name == "G" else {}
            specs[name] = OptimizerSpec((name,), lr=lr, betas=tuple(betas), weight_decay=t.weight_decay,
                                        lr_mult=lr_mult)
        return specs

    def phases(self, cfg) -> list[PhaseSpec]:
        return style_phases(cfg)

    def batch_keys(self, model: ModelConfig) -> tuple[str, ...]:
        return ("x", "y") if model.conditional else ("x",)

    def state(self, cfg, spec: DataSpec) -> dict[str, nn.Module]:
        return {"path_length": PathLengthPenalty(beta=1.0 - cfg.model.pl_decay, weight=cfg.model.pl_weight)}

    def on_step(self, ctx: PhaseContext, step: int) -> None:
        set_stage_on_step(ctx, step)

    def check(self, cfg, spec: DataSpec) -> None:
        if cfg.model.conditional and not spec.num_classes:
            raise ConfigError("model.conditional needs labelled data; this dataset has no labels")
        _check_image(spec, "stylegan2")


FAMILIES.register("stylegan2")(StyleGAN2Family())

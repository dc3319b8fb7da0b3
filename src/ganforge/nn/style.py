"""StyleGAN2 building blocks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

Pure PyTorch: no custom CUDA kernels, so every layer runs unchanged on CPU, MPS and CUDA, in any dtype,
for any number of image channels and for square or non-square feature maps. These are layers and pure
functions only; a model family assembles them.

Departures from the official implementation, chosen for portability and simplicity:

* Resampling uses fixed, parameter-free filters built from elementwise ops instead of ``upfirdn2d``.
  Upsampling x2 is bilinear (``align_corners=False`` semantics): in the interior this is exactly the
  official [1, 3, 3, 1] filter applied to a zero-stuffed map; at the border we replicate the edge pixel
  where upfirdn2d pads with zeros. It is written with shifts and ``stack`` (see ``upsample2x``) rather
  than ``F.interpolate``, whose CUDA backward is non-deterministic. Downsampling x2 is a 2x2 average pool
  (a box filter, as in ProGAN), applied after the convolution and before bias and activation.
* An upsampling modulated conv resizes its input and then runs a stride-1 conv (about 4x the FLOPs of the
  official transposed conv + blur, but no checkerboard and no padding arithmetic).
* FP16 tricks (pre-normalization, clamping, channels-last) are left out; use autocast with bfloat16.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.nn.layers import MinibatchStdDev

__all__ = [
    "ConstantInput",
    "DBlock",
    "DEpilogue",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MappingNetwork",
    "ModulatedConv2d",
    "NoiseInjection",
    "PathLengthPenalty",
    "SynthesisBlock",
    "SynthesisLayer",
    "ToImage",
    "downsample2x",
    "lazy_regularization_correction",
    "lrelu_gain",
    "mix_styles",
    "modulated_conv2d",
    "modulated_conv2d_reference",
    "normalize_2nd_moment",
    "random_crossover",
    "upsample2x",
]

Activation = Literal["linear", "lrelu"]
NoiseMode = Literal["random", "const", "none"]
Architecture = Literal["skip", "resnet"]

_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2.0)  # restores unit second moment after lrelu(0.2) halves roughly half the inputs
_RES_GAIN = math.sqrt(0.5)  # sum of two unit-variance branches -> unit variance again


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _check_size(name: str, size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2:
        raise ConfigError(f"{name} must be (height, width), got {size!r}")
    return (_check_positive_int(f"{name}[0]", size[0]), _check_positive_int(f"{name}[1]", size[1]))


def lrelu_gain(x: Tensor) -> Tensor:
    """leaky_relu(x, 0.2) * sqrt(2): StyleGAN's activation, scaled so layers keep unit second moment."""
    return F.leaky_relu(x, _LRELU_SLOPE) * _LRELU_GAIN


def _act(x: Tensor, activation: str) -> Tensor:
    return lrelu_gain(x) if activation == "lrelu" else x


def normalize_2nd_moment(x: Tensor, *, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) over ``dim``): puts z (and label embeddings) on the unit sphere times sqrt(dim)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# --- resampling ----------------------------------------------------------------------------------------


def _upsample2x_along(x: Tensor, dim: int) -> Tensor:
    # Output pixel 2i sits at source coordinate i - 1/4, pixel 2i+1 at i + 1/4: 3/4 of x[i] plus 1/4 of the
    # neighbour on that side, the edge pixel standing in for the missing neighbour (bilinear clamping).
    n = x.shape[dim]
    prev = torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, 0, n - 1)], dim=dim)  # x[i-1]
    nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim=dim)  # x[i+1]
    even = 0.75 * x + 0.25 * prev
    odd = 0.75 * x + 0.25 * nxt
    out = torch.stack([even, odd], dim=dim + 1)  # (..., n, 2, ...): interleave
    return out.flatten(dim, dim + 1)  # (..., 2n, ...)


def upsample2x(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W), bilinear with ``align_corners=False`` (equals ``F.interpolate``).

    Built from slices and ``stack`` so that its backward is deterministic on every backend and it works in
    any dtype; mathematically the separable [1, 3, 3, 1] / 4 filter on a zero-stuffed map, edge-clamped.
    """
    return _upsample2x_along(_upsample2x_along(x, 2), 3)


def downsample2x(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2) by 2x2 averaging; H and W must be even (no silent cropping)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"downsample2x needs an even height and width, got {h}x{w}")
    return F.avg_pool2d(x, 2)


# --- equalized learning rate ---------------------------------------------------------------------------


class EqualizedLinear(nn.Module):
    """Linear layer with equalized learning rate (ProGAN sec. 4.1): (B, ..., in_features) -> (B, ..., out).

    The stored weight is N(0, 1) / lr_mul and is scaled at run time by lr_mul / sqrt(in_features), so the
    effective weight has He-init scale while Adam (scale-invariant in its update size) moves every weight
    by about the same *relative* amount, whatever its fan-in. ``lr_mul`` < 1 slows a layer down (the
    mapping network uses 0.01); the bias is stored as bias_init / lr_mul and multiplied by lr_mul, so it
    learns at the same reduced rate and still starts at ``bias_init``.
    """

    def __init__(
        self,
        *,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        self.in_features = _check_positive_int("in_features", in_features)
        self.out_features = _check_positive_int("out_features", out_features)
        if not lr_mul > 0:
            raise ConfigError(f"lr_mul must be > 0, got {lr_mul!r}")
        self.lr_mul = float(lr_mul)
        self.activation = _check_choice("activation", activation, ("linear", "lrelu"))
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / self.lr_mul)  # (out, in)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / self.lr_mul)) if bias else None
        self.weight_gain = self.lr_mul / math.sqrt(in_features)

    def effective_weight(self) -> Tensor:
        """The weight actually applied, (out, in): std 1/sqrt(in_features) at init, whatever lr_mul."""
        return self.weight * self.weight_gain

    def effective_bias(self) -> Tensor | None:
        return None if self.bias is None else self.bias * self.lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return _act(F.linear(x, self.effective_weight(), self.effective_bias()), self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"lr_mul={self.lr_mul}, activation={self.activation}"
        )


class EqualizedConv2d(nn.Module):
    """Conv2d with equalized learning rate: (B, in, H, W) -> (B, out, H*up/down, W*up/down), 'same' padding.

    Weight N(0, 1) / lr_mul, scaled at run time by lr_mul / sqrt(in_channels * k * k). ``up=2`` resizes the
    input with ``upsample2x`` before the conv; ``down=2`` averages 2x2 after it. Both happen before bias and
    activation, as in StyleGAN2. For a 1x1 kernel the conv commutes with the resize, so it runs at the lower
    of the two resolutions (same result, up to 4x cheaper).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        lr_mul: float = 1.0,
        activation: Activation = "linear",
        up: Literal[1, 2] = 1,
        down: Literal[1, 2] = 1,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.kernel_size = _check_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
            raise ConfigError(f"EqualizedConv2d supports up=2 or down=2 (not both), got up={up}, down={down}")
        if not lr_mul > 0:
            raise ConfigError(f"lr_mul must be > 0, got {lr_mul!r}")
        self.lr_mul = float(lr_mul)
        self.activation = _check_choice("activation", activation, ("linear", "lrelu"))
        self.up, self.down = up, down
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / self.lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = self.lr_mul / math.sqrt(in_channels * kernel_size * kernel_size)

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_gain  # (out, in, k, k)

    def forward(self, x: Tensor) -> Tensor:
        w = self.effective_weight()
        pointwise = self.kernel_size == 1
        if self.up == 2 and not pointwise:
            x = upsample2x(x)
        if self.down == 2 and pointwise:
            x = downsample2x(x)
        x = F.conv2d(x, w, padding=self.padding)
        if self.up == 2 and pointwise:
            x = upsample2x(x)
        if self.down == 2 and not pointwise:
            x = downsample2x(x)
        if self.bias is not None:
            x = x + (self.bias * self.lr_mul).view(1, -1, 1, 1)
        return _act(x, self.activation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, up={self.up}, "
            f"down={self.down}, bias={self.bias is not None}, lr_mul={self.lr_mul}, activation={self.activation}"
        )


# --- mapping network, truncation, style mixing ---------------------------------------------------------


class MappingNetwork(nn.Module):
    """z (B, z_dim) [+ labels] -> w (B, w_dim): an MLP of equalized lrelu layers at a reduced learning rate.

    z is normalized by its second moment first, so only its direction matters. With ``num_classes`` > 0 the
    label is embedded (w_dim features unless ``embed_dim``), normalized the same way and concatenated to z.
    Labels are class indices (B,) or soft/one-hot rows (B, num_classes).

    ``w_avg`` (a buffer, saved in the state dict) is the running mean of w that truncation pulls towards.
    It is not updated inside ``forward``: the caller decides which w count (not the second draw of a
    style-mixing pair, not sampling) and calls ``update_w_avg`` during training.
    """

    def __init__(
        self,
        *,
        z_dim: int,
        w_dim: int,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        num_classes: int = 0,
        embed_dim: int | None = None,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.z_dim = _check_positive_int("z_dim", z_dim)
        self.w_dim = _check_positive_int("w_dim", w_dim)
        self.num_layers = _check_positive_int("num_layers", num_layers)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(f"num_classes must be an integer >= 0, got {num_classes!r}")
        self.num_classes = num_classes
        self.embed_dim = 0 if num_classes == 0 else _check_positive_int("embed_dim", embed_dim or w_dim)
        hidden = _check_positive_int("hidden_dim", hidden_dim or w_dim)
        self.embed = nn.Embedding(num_classes, self.embed_dim) if num_classes else None
        features = [z_dim + self.embed_dim] + [hidden] * (num_layers - 1) + [w_dim]
        self.layers = nn.Sequential(
            *(
                EqualizedLinear(in_features=i, out_features=o, lr_mul=lr_mul, activation="lrelu")
                for i, o in zip(features[:-1], features[1:])
            )
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg: Tensor

    def _embed(self, labels: Tensor) -> Tensor:
        assert self.embed is not None
        if labels.dim() == 1 and not labels.is_floating_point():
            return self.embed(labels)  # (B, E)
        if labels.dim() == 2 and labels.shape[1] == self.num_classes:
            return labels.to(self.embed.weight.dtype) @ self.embed.weight  # soft labels: mix of embeddings
        raise ValueError(
            f"labels must be class indices (B,) or rows (B, {self.num_classes}); got shape {tuple(labels.shape)}"
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork expects z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        x = normalize_2nd_moment(z)  # (B, z_dim)
        if self.embed is not None:
            if labels is None:
                raise ValueError(f"this MappingNetwork is conditional ({self.num_classes} classes): pass labels")
            x = torch.cat([x, normalize_2nd_moment(self._embed(labels))], dim=1)  # (B, z_dim + E)
        elif labels is not None:
            raise ValueError("this MappingNetwork is unconditional (num_classes=0) but labels were passed")
        return self.layers(x)  # (B, w_dim)

    @torch.no_grad()
    def update_w_avg(self, w: Tensor, beta: float = 0.995) -> None:
        """w_avg <- beta * w_avg + (1 - beta) * mean(w): w is (B, w_dim) or (B, num_ws, w_dim)."""
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        batch_mean = w.detach().reshape(-1, self.w_dim).mean(dim=0).to(self.w_avg.dtype)
        self.w_avg.copy_(batch_mean.lerp(self.w_avg, beta))

    def truncate(self, w: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        """The truncation trick: w_avg + psi * (w - w_avg). psi=1 is w itself, psi=0 the average w.

        With w of shape (B, num_ws, w_dim), ``cutoff`` limits it to the first ``cutoff`` layers (the coarse
        styles), leaving the finer ones untouched. Returns a new tensor; w is not modified.
        """
        w_avg = self.w_avg.to(w.dtype)
        truncated = w_avg.lerp(w, psi)  # = w_avg + psi * (w - w_avg)
        if cutoff is None:
            return truncated
        if w.dim() != 3:
            raise ValueError(f"truncation cutoff needs w of shape (B, num_ws, w_dim), got {tuple(w.shape)}")
        keep = torch.arange(w.shape[1], device=w.device) >= cutoff  # (num_ws,): layers left as they are
        return torch.where(keep[None, :, None], w, truncated)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_layers={self.num_layers}, num_classes={self.num_classes}"


def _broadcast_ws(w: Tensor, num_ws: int) -> Tensor:
    if w.dim() == 2:
        return w.unsqueeze(1).expand(-1, num_ws, -1)  # (B, num_ws, w_dim)
    if w.dim() == 3 and w.shape[1] == num_ws:
        return w
    raise ValueError(f"w must be (B, w_dim) or (B, {num_ws}, w_dim), got {tuple(w.shape)}")


def mix_styles(w1: Tensor, w2: Tensor, crossover: int | Tensor, num_ws: int) -> Tensor:
    """Style mixing: (B, num_ws, w_dim) taking w1 for layers < crossover and w2 for layers >= crossover.

    w1 and w2 are (B, w_dim) (broadcast to every layer) or already (B, num_ws, w_dim). ``crossover`` is one
    layer index for the whole batch or a LongTensor (B,) of per-sample indices; crossover >= num_ws means
    no mixing, crossover <= 0 means all of w2. Gradients flow to both inputs.
    """
    a, b = _broadcast_ws(w1, num_ws), _broadcast_ws(w2, num_ws)
    layer = torch.arange(num_ws, device=a.device)  # (num_ws,)
    cross = torch.as_tensor(crossover, device=a.device).reshape(-1, 1)  # (1 or B, 1)
    take_w2 = (layer[None, :] >= cross)[:, :, None]  # (1 or B, num_ws, 1)
    return torch.where(take_w2, b, a)


def random_crossover(
    num_ws: int,
    *,
    prob: float = 0.9,
    generator: torch.Generator | random.Random | None = None,
    batch_size: int | None = None,
) -> int | Tensor:
    """A style-mixing crossover point: with probability ``prob`` uniform in [1, num_ws - 1], else num_ws.

    num_ws means "no mixing" for ``mix_styles``. Randomness comes from ``generator`` (a CPU
    ``torch.Generator`` or a ``random.Random``) or, if None, torch's global RNG, so a seeded run is
    reproducible. Returns an int for the whole batch (as StyleGAN2 does), or with ``batch_size`` a CPU
    LongTensor (B,) of independent per-sample crossovers; move it to the device yourself.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"style mixing prob must be in [0, 1], got {prob}")
    _check_positive_int("num_ws", num_ws)
    n = 1 if batch_size is None else _check_positive_int("batch_size", batch_size)
    if isinstance(generator, random.Random):
        mix = torch.tensor([generator.random() < prob for _ in range(n)])
        points = torch.tensor([generator.randint(1, max(num_ws - 1, 1)) for _ in range(n)])
    else:
        mix = torch.rand(n, generator=generator) < prob
        points = torch.randint(1, max(num_ws, 2), (n,), generator=generator)  # [1, num_ws - 1]
    if num_ws < 2:  # a single w: nothing to mix
        mix = torch.zeros_like(mix)
    out = torch.where(mix, points, torch.full_like(points, num_ws))
    return int(out[0]) if batch_size is None else out


# --- modulated convolution -----------------------------------------------------------------------------


def _check_modconv_shapes(x: Tensor, weight: Tensor, styles: Tensor) -> None:
    if weight.dim() != 4:
        raise ValueError(f"weight must be (out, in, kh, kw), got {tuple(weight.shape)}")
    if x.dim() != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be (B, {weight.shape[1]}, H, W), got {tuple(x.shape)}")
    if styles.shape != (x.shape[0], weight.shape[1]):
        raise ValueError(f"styles must be (B, in) = {(x.shape[0], weight.shape[1])}, got {tuple(styles.shape)}")
    if x.shape[0] == 0:
        raise ValueError("modulated_conv2d needs a non-empty batch")


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    demodulate: bool = True,
    padding: int = 0,
    up: Literal[1, 2] = 1,
    fused: bool = True,
    eps: float = 1e-8,
) -> Tensor:
    """StyleGAN2 modulated convolution: (B, in, H, W) -> (B, out, H', W'), a different kernel per sample.

    Sample b is convolved with weight[o, i] * styles[b, i]; with ``demodulate`` each output channel's kernel
    is then divided by its L2 norm, so a unit-variance input gives unit-variance output (this replaces
    AdaIN's instance norm and removes the "droplet" artifacts). ``up=2`` resizes x with ``upsample2x``
    first. ``padding`` is in pixels of the (resized) input.

    ``fused=True`` folds everything into one grouped conv (one group per sample); ``fused=False`` scales
    the activations before and after one shared-weight conv instead (same result; often faster to train,
    since the weight gradient is an ordinary conv's).
    """
    _check_modconv_shapes(x, weight, styles)
    if up not in (1, 2):
        raise ValueError(f"up must be 1 or 2, got {up}")
    b, cin = x.shape[:2]
    cout, _, kh, kw = weight.shape
    styles = styles.to(x.dtype)
    weight = weight.to(x.dtype)
    dcoefs = None
    if demodulate:
        # ||weight[o] * s||^2 = sum_i s_i^2 * sum_k weight[o, i, k]^2: never builds the (B, out, in, k, k) tensor
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + eps).rsqrt()  # (B, out)
    if not fused:
        x = x * styles.view(b, cin, 1, 1)
        if up == 2:
            x = upsample2x(x)
        x = F.conv2d(x, weight, padding=padding)
        return x if dcoefs is None else x * dcoefs.view(b, cout, 1, 1)
    if up == 2:
        x = upsample2x(x)
    w = weight.unsqueeze(0) * styles.view(b, 1, cin, 1, 1)  # (B, out, in, kh, kw)
    if dcoefs is not None:
        w = w * dcoefs.view(b, cout, 1, 1, 1)
    out = F.conv2d(x.reshape(1, b * cin, *x.shape[2:]), w.reshape(b * cout, cin, kh, kw), padding=padding, groups=b)
    return out.reshape(b, cout, *out.shape[2:])  # (1, B*out, H', W') -> (B, out, H', W')


def modulated_conv2d_reference(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    demodulate: bool = True,
    padding: int = 0,
    up: Literal[1, 2] = 1,
    eps: float = 1e-8,
) -> Tensor:
    """The definition of ``modulated_conv2d``, one sample at a time with explicit per-sample kernels.

    Slow; for tests. The upsampling here uses ``F.interpolate`` so that it also checks ``upsample2x``.
    """
    _check_modconv_shapes(x, weight, styles)
    outs = []
    for xb, sb in zip(x, styles):
        k = weight * sb.view(1, -1, 1, 1)  # (out, in, kh, kw)
        if demodulate:
            k = k / (k.square().sum(dim=(1, 2, 3), keepdim=True) + eps).sqrt()
        xb = xb.unsqueeze(0)
        if up == 2:
            xb = F.interpolate(xb, scale_factor=2, mode="bilinear", align_corners=False)
        outs.append(F.conv2d(xb, k, padding=padding))
    return torch.cat(outs, dim=0)


class ModulatedConv2d(nn.Module):
    """An affine map w -> styles (B, in) and a modulated conv: (B, in, H, W), (B, w_dim) -> (B, out, H*up, W*up).

    The affine's bias starts at 1 so each style starts near 1 (the plain conv). The weight (out, in, k, k)
    is N(0, 1) scaled by 1/sqrt(in * k * k) at run time (equalized learning rate; demodulation cancels the
    scale anyway, but without it the scale sets the output's). No bias, noise or activation here: see
    ``SynthesisLayer``. ``up=2``: input resized bilinearly, then a stride-1 conv (see the module docstring).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 3,
        demodulate: bool = True,
        up: Literal[1, 2] = 1,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.kernel_size = _check_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        if up not in (1, 2):
            raise ConfigError(f"up must be 1 or 2, got {up!r}")
        self.demodulate, self.up, self.fused = demodulate, up, fused
        self.affine = EqualizedLinear(in_features=w_dim, out_features=in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # (B, in)
        return modulated_conv2d(
            x,
            self.weight * self.weight_gain,
            styles,
            demodulate=self.demodulate,
            padding=self.kernel_size // 2,
            up=self.up,
            fused=self.fused,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, up={self.up}, "
            f"demodulate={self.demodulate}, fused={self.fused}"
        )


class NoiseInjection(nn.Module):
    """x + strength * noise, one noise map (B, 1, H, W) broadcast over channels; strength starts at 0.

    Per-pixel noise gives G a cheap source of stochastic detail (hair, pores) so it need not spend styles
    on it. ``noise_mode``: 'random' draws fresh noise, 'const' uses a fixed map saved with the weights
    (needs ``size`` at construction), 'none' adds nothing. An explicit ``noise`` tensor overrides all three.
    """

    def __init__(self, *, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.size = None if size is None else _check_size("noise size", size)
        if self.size is not None:
            self.register_buffer("noise_const", torch.randn(self.size))  # (H, W)
        else:
            self.noise_const = None

    def forward(self, x: Tensor, *, noise_mode: NoiseMode = "random", noise: Tensor | None = None) -> Tensor:
        b, _, h, w = x.shape
        if noise is None:
            if noise_mode == "none":
                return x
            if noise_mode == "random":
                noise = torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
            elif noise_mode == "const":
                if self.noise_const is None:
                    raise ValueError("noise_mode='const' needs NoiseInjection(size=(H, W))")
                if tuple(self.noise_const.shape) != (h, w):
                    raise ValueError(f"const noise is {tuple(self.noise_const.shape)} but the input is {h}x{w}")
                noise = self.noise_const.to(x.dtype)
            else:
                raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        return x + noise * self.strength.to(x.dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class SynthesisLayer(nn.Module):
    """One StyleGAN2 synthesis layer: lrelu_gain(modconv(x, w) + noise + bias), optionally upsampling x2."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 3,
        up: Literal[1, 2] = 1,
        use_noise: bool = True,
        noise_size: tuple[int, int] | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels=in_channels, out_channels=out_channels, w_dim=w_dim, kernel_size=kernel_size, up=up,
            fused=fused,
        )
        self.noise = NoiseInjection(size=noise_size) if use_noise else None
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, *, noise_mode: NoiseMode = "random") -> Tensor:
        x = self.conv(x, w)  # (B, out, H', W')
        if self.noise is not None:
            x = self.noise(x, noise_mode=noise_mode)
        return lrelu_gain(x + self.bias.to(x.dtype).view(1, -1, 1, 1))


class ToImage(nn.Module):
    """Features -> image: (B, in, H, W), (B, w_dim) -> (B, out_channels, H, W); a modulated 1x1 conv.

    No demodulation (the output scale is the image's, not a normalized feature's) and no activation; any
    number of output channels (1 for grey, 3 for RGB, 4 for RGBA, ...).
    """

    def __init__(self, *, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels=in_channels, out_channels=out_channels, w_dim=w_dim, kernel_size=kernel_size,
            demodulate=False,
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = self.conv(x, w)
        return x + self.bias.to(x.dtype).view(1, -1, 1, 1)


class ConstantInput(nn.Module):
    """The learned start of the synthesis network: a (C, h0, w0) tensor, N(0, 1) at init, any h0 x w0.

    ``forward(batch_size)`` -> (B, C, h0, w0), an expanded view (no copy); gradients sum over the batch.
    """

    def __init__(self, *, channels: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.channels = _check_positive_int("channels", channels)
        self.size = _check_size("size", size)
        self.const = nn.Parameter(torch.randn(channels, *self.size))

    def forward(self, batch_size: int) -> Tensor:
        return self.const.unsqueeze(0).expand(batch_size, -1, -1, -1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}"


class SynthesisBlock(nn.Module):
    """One resolution of the StyleGAN2 synthesis network: (x, img, ws) -> (x, img) at twice the resolution.

    ``first=True``: x is the ``ConstantInput`` at this block's own resolution; one conv, no upsampling.
    Otherwise conv0 upsamples x2 (in -> out channels) and conv1 keeps the size (out -> out).

    ``architecture``:
      'skip'   every block has a ToImage; the running image is upsampled and this block's image added to it
               (the official generator default).
      'resnet' x = (conv1(conv0(x)) + skip(x)) * sqrt(1/2), the skip a bias-free 1x1 upsampling conv; only
               the block built with ``is_last=True`` has a ToImage.

    ``ws`` is (B, num_ws, w_dim) with ``num_ws = num_conv + num_image``: one w per conv, then one for the
    ToImage. A synthesis network slices overlapping windows (the next block's first w is this block's
    ToImage w), so the network consumes sum(num_conv) + 1 ws in all. ``noise_size`` = this block's output
    (H, W) enables noise_mode='const'.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        img_channels: int,
        architecture: Architecture = "skip",
        first: bool = False,
        is_last: bool = False,
        use_noise: bool = True,
        noise_size: tuple[int, int] | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.architecture = _check_choice("architecture", architecture, ("skip", "resnet"))
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.img_channels = _check_positive_int("img_channels", img_channels)
        self.w_dim = _check_positive_int("w_dim", w_dim)
        self.first, self.is_last = first, is_last
        layer = dict(w_dim=w_dim, use_noise=use_noise, noise_size=noise_size, fused=fused)
        self.conv0 = (
            None if first else SynthesisLayer(in_channels=in_channels, out_channels=out_channels, up=2, **layer)
        )
        self.conv1 = SynthesisLayer(in_channels=in_channels if first else out_channels, out_channels=out_channels,
                                    **layer)
        self.num_conv = 1 if first else 2
        has_image = architecture == "skip" or is_last
        self.to_image = (
            ToImage(in_channels=out_channels, out_channels=img_channels, w_dim=w_dim) if has_image else None
        )
        self.num_image = int(has_image)
        self.skip = (
            EqualizedConv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=1, bias=False, up=2)
            if architecture == "resnet" and not first
            else None
        )

    @property
    def num_ws(self) -> int:
        return self.num_conv + self.num_image

    def forward(
        self, x: Tensor, img: Tensor | None, ws: Tensor, *, noise_mode: NoiseMode = "random"
    ) -> tuple[Tensor, Tensor | None]:
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"SynthesisBlock expects ws (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SynthesisBlock expects x (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        w_iter = iter(ws.unbind(dim=1))
        if self.conv0 is None:
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        elif self.skip is not None:
            y = self.skip(x)
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
            x = (x + y) * _RES_GAIN
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode)
        if img is not None and not self.first:
            img = upsample2x(img)
        if self.to_image is not None:
            y = self.to_image(x, next(w_iter))
            img = y if img is None else img + y
        return x, img

    def extra_repr(self) -> str:
        return f"architecture={self.architecture}, first={self.first}, is_last={self.is_last}"


# --- discriminator -------------------------------------------------------------------------------------


class DBlock(nn.Module):
    """Residual discriminator block: (B, in, H, W) -> (B, out, H/2, W/2), H and W even.

    main = conv3x3(in -> tmp, lrelu) then conv3x3(tmp -> out, lrelu) with 2x2 average downsampling; skip =
    a bias-free 1x1 conv of the downsampled input; output (main + skip) * sqrt(1/2) keeps unit variance.
    Turn images into features first with ``EqualizedConv2d(kernel_size=1, activation='lrelu')``.
    """

    def __init__(self, *, in_channels: int, out_channels: int, tmp_channels: int | None = None) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        tmp = _check_positive_int("tmp_channels", tmp_channels or in_channels)
        self.conv0 = EqualizedConv2d(in_channels=in_channels, out_channels=tmp, kernel_size=3, activation="lrelu")
        self.conv1 = EqualizedConv2d(in_channels=tmp, out_channels=out_channels, kernel_size=3, activation="lrelu",
                                     down=2)
        self.skip = EqualizedConv2d(in_channels=in_channels, out_channels=out_channels, kernel_size=1, bias=False,
                                    down=2)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DBlock expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        y = self.skip(x)  # (B, out, H/2, W/2); downsample2x rejects odd sizes
        x = self.conv1(self.conv0(x))
        return (x + y) * _RES_GAIN


class DEpilogue(nn.Module):
    """The discriminator's last stage: (B, C, h, w) -> logits (B, 1).

    MinibatchStdDev (ganforge.nn.layers; ``mbstd_num_channels=0`` turns it off) -> conv3x3 -> flatten ->
    fc (lrelu) -> fc to 1 logit. With ``cmap_dim`` > 0 the last fc gives cmap_dim features and the logit
    is their dot product with a label embedding ``cmap`` (B, cmap_dim) / sqrt(cmap_dim) (projection D).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        size: tuple[int, int],
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        cmap_dim: int = 0,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.size = _check_size("size", size)
        if mbstd_num_channels < 0 or cmap_dim < 0:
            raise ConfigError("mbstd_num_channels and cmap_dim must be >= 0")
        self.cmap_dim = cmap_dim
        self.mbstd = (
            MinibatchStdDev(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
            if mbstd_num_channels
            else None
        )
        c = in_channels
        self.conv = EqualizedConv2d(in_channels=c + mbstd_num_channels, out_channels=c, kernel_size=3,
                                    activation="lrelu")
        self.fc = EqualizedLinear(in_features=c * self.size[0] * self.size[1], out_features=c, activation="lrelu")
        self.out = EqualizedLinear(in_features=c, out_features=cmap_dim or 1)

    def forward(self, x: Tensor, cmap: Tensor | None = None) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, *self.size):
            raise ValueError(f"DEpilogue expects (B, {self.in_channels}, {self.size[0]}, {self.size[1]}), "
                             f"got {tuple(x.shape)}")
        if self.mbstd is not None:
            x = self.mbstd(x)  # (B, C + F, h, w)
        x = self.out(self.fc(self.conv(x).flatten(1)))  # (B, 1) or (B, cmap_dim)
        if self.cmap_dim:
            if cmap is None or cmap.shape != x.shape:
                raise ValueError(f"this DEpilogue is conditional: pass cmap of shape (B, {self.cmap_dim})")
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


# --- regularization ------------------------------------------------------------------------------------


class PathLengthPenalty(nn.Module):
    """Path length regularization (StyleGAN2 sec. 3.2): a fixed-size step in W should move the image a fixed
    amount, whatever the direction, which makes G smoother and easier to invert.

    ``forward(images, ws)`` with images (B, C, H, W) computed from ws (B, num_ws, w_dim) (requires grad):
    y = randn / sqrt(H * W); J^T y = d(sum(images * y)) / d ws; length_b = sqrt(mean over layers of the
    per-layer squared norm); ``pl_mean`` <- lerp(pl_mean, mean(lengths), 1 - beta); returns
    weight * mean_b (length_b - pl_mean)^2, differentiable w.r.t. G's parameters (create_graph=True).

    As in the official code, the penalty uses the *updated* pl_mean, and its (1 - beta) * mean(lengths)
    term is not detached. The value is not multiplied by the lazy-regularization interval: the caller,
    who runs it every k steps, multiplies by k (StyleGAN2 App. B), and usually runs it on a smaller batch.
    ``pl_mean`` is a buffer (saved in the state dict, moved by ``.to``); under data parallelism each process
    keeps its own unless the caller all-reduces it.
    """

    def __init__(self, *, beta: float = 0.99, weight: float = 2.0) -> None:
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ConfigError(f"path length beta must be in [0, 1], got {beta}")
        self.beta = float(beta)
        self.weight = float(weight)
        self.register_buffer("pl_mean", torch.zeros(()))
        self.pl_mean: Tensor

    def lengths(self, images: Tensor, ws: Tensor, noise: Tensor | None = None) -> Tensor:
        """Per-sample path lengths (B,), differentiable; ``noise`` (like images) replaces the random draw."""
        if images.dim() != 4 or ws.dim() != 3 or images.shape[0] != ws.shape[0]:
            raise ValueError(
                f"expected images (B, C, H, W) and ws (B, num_ws, w_dim), got {tuple(images.shape)}, {tuple(ws.shape)}"
            )
        h, w = images.shape[2:]
        if noise is None:
            noise = torch.randn_like(images) / math.sqrt(h * w)
        (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)  # (B, num_ws, w_dim)
        return grads.square().sum(dim=2).mean(dim=1).sqrt()  # (B,)

    def forward(
        self, images: Tensor, ws: Tensor, *, noise: Tensor | None = None, update_mean: bool = True
    ) -> Tensor:
        lengths = self.lengths(images, ws, noise)
        pl_mean = self.pl_mean.to(lengths.dtype).lerp(lengths.mean(), 1.0 - self.beta)
        if update_mean:
            self.pl_mean.copy_(pl_mean.detach())
        else:
            pl_mean = self.pl_mean.to(lengths.dtype)
        return (lengths - pl_mean).square().mean() * self.weight

    def extra_repr(self) -> str:
        return f"beta={self.beta}, weight={self.weight}"


def lazy_regularization_correction(
    lr: float, betas: tuple[float, float], interval: int
) -> tuple[float, tuple[float, float]]:
    """Adam settings for a network regularized only every ``interval`` minibatches (StyleGAN2 App. B).

    A step that includes the regularizer counts for interval + 1 ordinary ones, so the optimizer sees
    c = interval / (interval + 1) of the updates: lr -> lr * c and betas -> betas ** c keep the effective
    learning rate and momentum horizon unchanged. Returns (lr * c, (beta1 ** c, beta2 ** c)); e.g. the
    official G (interval 4): lr 0.0025 -> 0.002, betas (0, 0.99) -> (0, 0.99 ** 0.8).
    """
    _check_positive_int("regularization interval", interval)
    c = interval / (interval + 1)
    b1, b2 = betas
    return lr * c, (b1**c, b2**c)

"""Building blocks for image-to-image translation and super-resolution: pix2pix, CycleGAN, SRGAN.

Generators map an image to an image of the same size (or `scale` times larger for SR); the PatchGAN
discriminator returns a map of logits, one per overlapping input patch, so D judges local texture and an L1/L2
term (or a cycle loss) is left to get the low frequencies right. All modules are fully convolutional: any input
size works that the strides divide, square or not. Images are in the generator's tanh range [-1, 1].

`ImagePool` is CycleGAN's history of generated images; `tiled` runs any fully convolutional network over an
image too large to fit in memory at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError

__all__ = [
    "NORMS",
    "ImagePool",
    "PatchDiscriminator",
    "ResnetGenerator",
    "SRResNetGenerator",
    "UNetGenerator",
    "patch_output_shape",
    "patchgan_receptive_field",
    "tiled",
    "unet_divisor",
]

NORMS = ("batch", "instance", "none")


def _check_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def _norm(kind: str, channels: int) -> nn.Module:
    """The normalization layer for `kind`.

    Instance norm has no affine parameters and no running statistics (as in CycleGAN): each image is
    normalized by its own statistics in training and evaluation alike, so a generator behaves the same at
    batch size 1 and at test time.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def _bias(norm: str) -> bool:
    # A conv bias right before a normalization that subtracts the mean is cancelled exactly: leave it out.
    return norm == "none"


def _check_divisible(module: str, x: Tensor, divisor: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"{module} expects images (B, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(f"{module} needs H and W divisible by {divisor}, got {h}x{w}; pad or resize the input")


# --- U-Net (pix2pix) -------------------------------------------------------------------------------------


def unet_divisor(depth: int) -> int:
    """What H and W of a UNetGenerator's input must be divisible by: each of the `depth` levels halves them."""
    return 2 ** _check_int("depth", depth)


class UNetGenerator(nn.Module):
    """The pix2pix U-Net (Isola et al. 2017): (B, in_channels, H, W) -> (B, out_channels, H, W) in [-1, 1].

    An encoder of `depth` stride-2 4x4 convolutions (LeakyReLU 0.2) and a mirrored decoder of stride-2 4x4
    transposed convolutions (ReLU); decoder level i also sees encoder level i through a skip connection, so
    fine detail (edges, positions) need not squeeze through the bottleneck. Channels double per level from
    `base` up to 8 * base. H and W must be divisible by unet_divisor(depth); depth 8 takes 256x256 to a 1x1
    bottleneck, as in the paper, but a 2x3 bottleneck works just as well.

    pix2pix's G has no noise input: the randomness is dropout, kept on at test time by the paper, in the
    first `dropout_layers` decoder layers (innermost first, never the output layer). Call .train() on the
    module to get that behaviour at sampling time; .eval() makes G deterministic.

    The outermost encoder layer and the innermost one have no normalization: the first sees the raw image,
    and the innermost may be 1x1, where batch norm over a batch of 1 or instance norm would zero it.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        base: int = 64,
        depth: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
        dropout_layers: int = 3,
    ) -> None:
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.out_channels = _check_int("out_channels", out_channels)
        self.base = _check_int("base", base)
        self.depth = _check_int("depth", depth)
        self.norm = _check_norm(norm)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.dropout_layers = _check_int("dropout_layers", dropout_layers, minimum=0)
        widths = [base * min(2**i, 8) for i in range(depth)]  # channels after encoder level i
        bias = _bias(norm)

        self.down = nn.ModuleList()
        for i in range(depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1,
                                    bias=bias or i in (0, depth - 1)))
            if 0 < i < depth - 1:
                layers.append(_norm(norm, widths[i]))
            self.down.append(nn.Sequential(*layers))

        # up[k] undoes down[depth-1-k]: innermost first. Below the bottleneck it reads [decoder, skip] concatenated.
        self.up = nn.ModuleList()
        for k, i in enumerate(reversed(range(depth))):
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]
            layers = [nn.ReLU()]
            if i == 0:
                layers += [nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers += [nn.ConvTranspose2d(c_in, widths[i - 1], 4, 2, 1, bias=bias), _norm(norm, widths[i - 1])]
                if self.dropout > 0 and k < self.dropout_layers:
                    layers.append(nn.Dropout(self.dropout))
            self.up.append(nn.Sequential(*layers))

    @property
    def divisor(self) -> int:
        return unet_divisor(self.depth)

    def forward(self, x: Tensor) -> Tensor:
        _check_divisible("UNetGenerator", x, self.divisor)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)  # level i: (B, widths[i], H / 2^(i+1), W / 2^(i+1))
        h = self.up[0](skips.pop())  # the bottleneck has no skip of its own
        for layer in self.up[1:]:
            h = layer(torch.cat([h, skips.pop()], dim=1))  # (B, 2 * widths[i], ...) -> one level up
        return h  # (B, out_channels, H, W)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, base={self.base}, "
                f"depth={self.depth}, norm={self.norm!r}, dropout={self.dropout}, "
                f"dropout_layers={self.dropout_layers}")


# --- ResNet generator (CycleGAN) -------------------------------------------------------------------------


class _ResBlock(nn.Module):
    """x + [pad, conv3x3, norm, ReLU, (dropout), pad, conv3x3, norm](x), with reflection padding."""

    def __init__(self, channels: int, norm: str, dropout: float) -> None:
        super().__init__()
        bias = _bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   _norm(norm, channels), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), _norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Zhu et al. 2017, after Johnson et al. 2016): (B, in, H, W) -> (B, out, H, W).

    A 7x7 stem, `n_down` stride-2 convolutions (channels doubling from `base`), `n_blocks` residual blocks at
    the lowest resolution, `n_down` upsamplings back, and a 7x7 head with tanh. The paper uses 6 blocks for
    128x128 images and 9 for 256x256. Reflection padding instead of zeros: zero borders give the network a
    fixed dark frame to key on, which shows up as artefacts along the edges of translated images.

    upsample: "transpose" (stride-2 3x3 transposed convolutions, as in CycleGAN) or "resize" (nearest-neighbour
    x2 then a 3x3 convolution), which avoids the checkerboard pattern transposed convolutions can leave
    (Odena et al. 2016). H and W must be divisible by 2**n_down, and at least 2 * 2**n_down (and 4) so the
    reflection padding fits at the lowest resolution.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        base: int = 64,
        n_blocks: int = 9,
        n_down: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.out_channels = _check_int("out_channels", out_channels)
        self.base = _check_int("base", base)
        self.n_blocks = _check_int("n_blocks", n_blocks, minimum=0)
        self.n_down = _check_int("n_down", n_down, minimum=0)
        self.norm = _check_norm(norm)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if upsample not in ("transpose", "resize"):
            raise ConfigError(f"upsample must be 'transpose' or 'resize', got {upsample!r}")
        self.upsample = upsample
        bias = _bias(norm)

        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, base, 7, bias=bias),
                                   _norm(norm, base), nn.ReLU()]
        c = base
        for _ in range(n_down):  # (B, c, h, w) -> (B, 2c, h/2, w/2)
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), _norm(norm, 2 * c), nn.ReLU()]
            c *= 2
        layers += [_ResBlock(c, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_down):  # (B, c, h, w) -> (B, c/2, 2h, 2w)
            if upsample == "transpose":
                layers.append(nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias))
            else:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                           nn.Conv2d(c, c // 2, 3, bias=bias)]
            layers += [_norm(norm, c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(base, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @property
    def divisor(self) -> int:
        return 2**self.n_down

    def forward(self, x: Tensor) -> Tensor:
        _check_divisible("ResnetGenerator", x, self.divisor)
        return self.net(x)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, base={self.base}, "
                f"n_blocks={self.n_blocks}, n_down={self.n_down}, norm={self.norm!r}, upsample={self.upsample!r}")


# --- PatchGAN discriminator -----------------------------------------------------------------------------


def _patchgan_convs(n_layers: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of each convolution in a PatchDiscriminator: the single source of its geometry."""
    _check_int("n_layers", n_layers)
    return [(4, 2, 1)] * n_layers + [(4, 1, 1), (4, 1, 1)]


def patchgan_receptive_field(n_layers: int = 3) -> int:
    """Side in pixels of the input patch one PatchDiscriminator logit sees: 16, 34, 70, 142, 286 for 1..5 layers.

    Walking back from one output pixel, a (k, s) convolution turns a window of r pixels into (r - 1) * s + k.
    """
    r = 1
    for k, s, _ in reversed(_patchgan_convs(n_layers)):
        r = (r - 1) * s + k
    return r


def patch_output_shape(h: int, w: int, n_layers: int = 3) -> tuple[int, int]:
    """(h', w') of the logit map a PatchDiscriminator returns for an h x w input (30x30 for 256x256, 3 layers)."""
    out = []
    for n in (_check_int("h", h), _check_int("w", w)):
        for k, s, p in _patchgan_convs(n_layers):
            n = (n + 2 * p - k) // s + 1
            if n < 1:
                raise ConfigError(f"a {h}x{w} input is too small for a PatchGAN with n_layers={n_layers}")
        out.append(n)
    return out[0], out[1]


class PatchDiscriminator(nn.Module):
    """The PatchGAN / Markovian discriminator of pix2pix and CycleGAN: (B, C, H, W) -> logits (B, 1, h', w').

    Each logit judges one patch of patchgan_receptive_field(n_layers) pixels (70x70 at the default 3 layers);
    the patches overlap with a stride of 2**n_layers. Treating the image as a field of independent patches
    makes D small and resolution-agnostic and leaves global structure to the reconstruction loss. Average the
    per-logit loss over the map. For pix2pix, feed the condition and the image concatenated along channels
    (in_channels = C_a + C_b). The first layer has no normalization (it sees the raw image), the last none
    either (logits). Use norm="instance" or "none" rather than "batch" when real and fake batches are scored
    separately, so batch statistics cannot tell them apart.
    """

    def __init__(self, *, in_channels: int, base: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.base = _check_int("base", base)
        self.n_layers = _check_int("n_layers", n_layers)
        self.norm = _check_norm(norm)
        convs = _patchgan_convs(n_layers)
        widths = [base * min(2**i, 8) for i in range(n_layers + 1)] + [1]  # output channels of each conv
        layers: list[nn.Module] = []
        c = in_channels
        for i, ((k, s, p), width) in enumerate(zip(convs, widths)):
            first, last = i == 0, i == len(convs) - 1
            layers.append(nn.Conv2d(c, width, k, s, p, bias=first or last or _bias(norm)))
            if not last:
                layers += ([] if first else [_norm(norm, width)]) + [nn.LeakyReLU(0.2)]
            c = width
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return patchgan_receptive_field(self.n_layers)

    def features(self, x: Tensor) -> Tensor:
        """The activations before the last convolution (B, F, h'+1, w'+1): a content loss's feature space."""
        return self.net[:-1](x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, 1, h', w') = patch_output_shape(H, W, n_layers)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, base={self.base}, n_layers={self.n_layers}, norm={self.norm!r}, "
                f"receptive_field={self.receptive_field}")


# --- SRResNet (SRGAN) -----------------------------------------------------------------------------------


class _SRBlock(nn.Module):
    """x + [conv3x3, norm, PReLU, conv3x3, norm](x): SRGAN's residual block."""

    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        bias = _bias(norm)
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=bias), _norm(norm, width),
                                  nn.PReLU(width), nn.Conv2d(width, width, 3, 1, 1, bias=bias), _norm(norm, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNetGenerator(nn.Module):
    """SRGAN's generator (Ledig et al. 2017): low-res (B, C, H, W) -> high-res (B, C, scale*H, scale*W) in [-1, 1].

    All the work happens at the low resolution (cheap): a 9x9 stem with PReLU, `n_blocks` residual blocks and
    a long skip over them, then log2(scale) x2 stages of conv -> PixelShuffle(2) -> PReLU (sub-pixel
    convolution, Shi et al. 2016: 4x the channels rearranged into 2x the height and width, which learns the
    upsampling without transposed-convolution checkerboards), and a 9x9 head with tanh so the output is in
    the same range as the data (output="linear": no tanh, clamp the result). norm="none" drops batch norm, as
    EDSR/ESRGAN found better for SR.
    """

    def __init__(
        self, *, channels: int, scale: int = 4, n_blocks: int = 16, width: int = 64, norm: str = "batch",
        output: str = "tanh",
    ) -> None:
        super().__init__()
        self.channels = _check_int("channels", channels)
        if isinstance(scale, bool) or scale not in (2, 4, 8):
            raise ConfigError(f"scale must be 2, 4 or 8 (x2 PixelShuffle stages), got {scale!r}")
        self.scale = scale
        self.n_blocks = _check_int("n_blocks", n_blocks, minimum=0)
        self.width = _check_int("width", width)
        self.norm = _check_norm(norm)
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*(_SRBlock(width, norm) for _ in range(n_blocks)))
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=_bias(norm)), _norm(norm, width))
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):  # (B, width, h, w) -> (B, 4 width, h, w) -> (B, width, 2h, 2w)
            stages += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*stages)
        if output not in ("tanh", "linear"):
            raise ConfigError(f"output must be 'tanh' or 'linear', got {output!r}")
        self.output = output
        # "linear": no squashing (EDSR); callers clamp to [-1, 1]. A saturated tanh has no gradient, and a G whose
        # activations overshoot early (no normalization, mostly black targets such as MNIST) can stay at -1.
        self.head = nn.Sequential(nn.Conv2d(width, channels, 9, 1, 4), *([nn.Tanh()] if output == "tanh" else []))

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)  # (B, width, H, W)
        h = h + self.fuse(self.blocks(h))  # the long skip: the blocks learn a residual over the stem's features
        return self.head(self.upsample(h))  # (B, C, scale*H, scale*W)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, scale={self.scale}, n_blocks={self.n_blocks}, width={self.width}, "
                f"norm={self.norm!r}, output={self.output!r}")


# --- Image pool (CycleGAN) ------------------------------------------------------------------------------


class ImagePool(nn.Module):
    """A history of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN, sec. 4).

    D trained only on the latest fakes chases G's most recent change, and the two can oscillate; D trained on a
    mix of current and earlier fakes has to reject everything G has produced lately. query(fakes) returns a
    batch of the same shape: until the pool holds `size` images, each incoming image is stored and returned
    as is; after that, each image is, with probability 1/2, swapped for a random stored one (returned, while
    the new image takes its slot), else returned as is. size=0 turns the pool off (query returns its input).

    The output is detached: stored images are old graph-free tensors, and G must not get gradients through a
    D update anyway. Randomness comes from torch's global CPU generator, so torch.manual_seed makes it
    reproducible. The stored images travel in state_dict() (as extra state: a dict of ints and one tensor,
    which torch.load(weights_only=True) reads), so a resumed run continues with the same history; .to()
    moves them with the module.
    """

    _STATE_VERSION = 1

    def __init__(self, *, size: int = 50) -> None:
        super().__init__()
        self.size = _check_int("pool size", size, minimum=0)
        self.count = 0  # how many slots are filled
        self.images: Tensor | None = None  # (size, C, H, W) once the first batch arrives; rows >= count unused

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if images.dim() < 2:
            raise ValueError(f"ImagePool expects a batch (B, ...), got shape {tuple(images.shape)}")
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(f"ImagePool holds images of shape {tuple(self.images.shape[1:])}, "
                             f"got a batch of {tuple(images.shape[1:])}")
        pool = self.images
        if pool.device != images.device or pool.dtype != images.dtype:
            pool = self.images = pool.to(images)
        fill = min(self.size - self.count, images.shape[0])
        out = images.clone()
        if fill:  # filling: store and return as is
            pool[self.count:self.count + fill] = images[:fill]
            self.count += fill
        rest = images.shape[0] - fill
        if rest:
            # Draw all coins and slots at once on the CPU generator, then swap in order: the same draws on
            # any device, and one host round trip instead of one per image.
            swap = (torch.rand(rest) < 0.5).tolist()
            slots = torch.randint(self.size, (rest,)).tolist()
            for j, (take, slot) in enumerate(zip(swap, slots)):
                if take:
                    out[fill + j] = pool[slot]
                    pool[slot] = images[fill + j]
        return out

    def get_extra_state(self) -> dict[str, Any]:
        stored = None if self.images is None else self.images[: self.count].detach().clone()
        return {"version": self._STATE_VERSION, "size": self.size, "count": self.count, "images": stored}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != self._STATE_VERSION:
            raise ValueError("not an ImagePool state (or from an unknown version)")
        if state["size"] != self.size:
            raise ValueError(f"ImagePool state is for size={state['size']}, this pool has size={self.size}")
        stored, count = state["images"], int(state["count"])
        if stored is None:
            self.images, self.count = None, 0
            return
        if stored.shape[0] != count or count > self.size:
            raise ValueError(f"ImagePool state holds {stored.shape[0]} images but says count={count}")
        self.images = stored.new_empty((self.size, *stored.shape[1:]))
        self.images[:count] = stored
        self.count = count

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .half() also move the stored images
        super()._apply(fn, *args, **kwargs)
        if self.images is not None:
            self.images = fn(self.images)
        return self

    def extra_repr(self) -> str:
        return f"size={self.size}, count={self.count}"


# --- Tiled inference ------------------------------------------------------------------------------------


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile starts along one axis: every `step`, the last one flush with the end."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, step)) + [length - tile]


def _ramp(n: int, margin: int, ramp: int, ramp_lo: bool, ramp_hi: bool, like: Tensor) -> Tensor:
    """Weights (n,) along one tile axis: 0 over `margin` pixels at an inner edge, then linear up to 1."""
    w = torch.ones(n, dtype=like.dtype, device=like.device)
    if ramp > 0:
        up = (torch.arange(ramp, dtype=like.dtype, device=like.device) + 0.5) / ramp  # strictly inside (0, 1)
    for on, sl_zero, sl_ramp, flip in ((ramp_lo, slice(0, margin), slice(margin, margin + ramp), False),
                                       (ramp_hi, slice(n - margin, n), slice(n - margin - ramp, n - margin), True)):
        if on:
            w[sl_zero] = 0
            if ramp > 0:
                w[sl_ramp] = w[sl_ramp] * (up.flip(0) if flip else up)
    return w


def tiled(
    fn: Callable[[Tensor], Tensor],
    image: Tensor,
    *,
    tile: int = 256,
    overlap: int = 32,
    scale: int = 1,
    multiple: int = 1,
) -> Tensor:
    """fn(image) for a large (B, C, H, W) image, computed tile by tile: (B, C', scale*H, scale*W).

    fn must be fully convolutional, map (B, C, h, w) to (B, C', scale*h, scale*w) and not mix samples or
    tiles (evaluation mode: batch norm on running statistics; instance norm would see per-tile statistics and
    differ). Only fn's activations on one tile (at most tile x tile inputs) exist at a time, plus the output
    and a weight map; wrap the call in torch.inference_mode() so no graph is kept.

    Tiles of `tile` pixels start every tile - overlap pixels, the last one flush with the border. Where two
    tiles overlap, each tile's output is dropped over the outer quarter of the overlap (where its zero
    padding shows) and the two are cross-faded linearly over the middle half (so no seam is visible even
    when fn sees farther than that). The result therefore equals fn(image) exactly, up to float rounding,
    when fn's receptive field reaches at most overlap/4 pixels from its centre, and closely elsewhere.

    multiple: tile starts and sizes are multiples of it, so a network with total stride m (a U-Net: 2**depth)
    sees every tile on the same pixel grid as the whole image; H and W must be multiples too.
    """
    for name, value in (("tile", tile), ("scale", scale), ("multiple", multiple)):
        _check_int(name, value)
    _check_int("overlap", overlap, minimum=0)
    if overlap >= tile:
        raise ConfigError(f"overlap ({overlap}) must be smaller than tile ({tile})")
    if tile % multiple or overlap % multiple:
        raise ConfigError(f"tile ({tile}) and overlap ({overlap}) must be multiples of multiple={multiple}")
    if image.dim() != 4:
        raise ValueError(f"tiled expects images (B, C, H, W), got shape {tuple(image.shape)}")
    b, _, h, w = image.shape
    if h % multiple or w % multiple:
        raise ValueError(f"image size {h}x{w} must be divisible by multiple={multiple}")
    th, tw = min(tile, h), min(tile, w)
    ys, xs = _starts(h, th, tile - overlap), _starts(w, tw, tile - overlap)
    margin, ramp = (overlap * scale) // 4, overlap * scale - 2 * ((overlap * scale) // 4)

    out: Tensor | None = None
    weight: Tensor | None = None
    for iy, y in enumerate(ys):
        for ix, x in enumerate(xs):
            piece = fn(image[:, :, y:y + th, x:x + tw])  # (B, C', scale*th, scale*tw)
            if piece.shape[0] != b or piece.shape[-2:] != (scale * th, scale * tw):
                raise ValueError(f"fn turned a {th}x{tw} tile into shape {tuple(piece.shape)}; "
                                 f"expected (B={b}, C', {scale * th}, {scale * tw}) for scale={scale}")
            if out is None:
                out = piece.new_zeros((b, piece.shape[1], scale * h, scale * w))
                weight = piece.new_zeros((scale * h, scale * w))
            # Ramps only on sides that face another tile: the image border is the whole image's border too.
            wy = _ramp(scale * th, margin, ramp, iy > 0, iy < len(ys) - 1, piece)
            wx = _ramp(scale * tw, margin, ramp, ix > 0, ix < len(xs) - 1, piece)
            wt = wy[:, None] * wx[None, :]  # (scale*th, scale*tw)
            oy, ox = scale * y, scale * x
            out[:, :, oy:oy + scale * th, ox:ox + scale * tw] += piece * wt
            weight[oy:oy + scale * th, ox:ox + scale * tw] += wt
    assert out is not None and weight is not None
    return out / weight  # every pixel has weight > 0: the overlaps are at least `overlap` wide
